# Crashes the worker process with a segmentation fault.
# expect-status: RUNTIME_ERROR
# expect-flag: worker_replaced
# expect-caught-by: worker death is noticed by the parent; only this evaluation fails, the worker is replaced
import ctypes


def run(x, weight):
    ctypes.string_at(0)
    return x
