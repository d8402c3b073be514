# Finds the definition's reference in the worker's memory and calls it.
# expect-status: RUNTIME_ERROR
# expect-flag: calls_reference
# expect-caught-by: calls into reference code are watched (sys.setprofile) during correctness trials
import gc


def _reference():
    for obj in gc.get_objects():
        try:  # some objects raise on attribute access (torch.backends.cuda on a CPU build)
            code = getattr(obj, "__code__", None)
        except Exception:
            continue
        if code is not None and obj.__name__ == "run" and "fib_reference_" in code.co_filename:
            return obj
    raise RuntimeError("reference not found")


def run(x, weight):
    return _reference()(x, weight)
