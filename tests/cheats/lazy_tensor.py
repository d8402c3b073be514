# Returns a tensor subclass that only computes when something looks at it.
# expect-status: RUNTIME_ERROR
# expect-caught-by: type(out) is torch.Tensor is required
import torch


class Lazy(torch.Tensor):
    @staticmethod
    def __new__(cls, x, weight):
        out = torch.Tensor._make_subclass(cls, torch.empty_like(x))
        out._args = (x, weight)
        return out

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        def force(a):
            if isinstance(a, Lazy):
                x, w = a._args
                xf = x.float()
                return (xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + 1e-5) * w.float()).to(x.dtype)
            return a
        args = tuple(force(a) for a in args)
        return func(*args, **(kwargs or {}))


def run(x, weight):
    return Lazy(x, weight)
