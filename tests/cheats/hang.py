# Never returns.
# expect-status: TIMEOUT
# expect-flag: worker_replaced
# expect-caught-by: the parent's per-evaluation timeout kills the worker; the run continues
import time


def run(x, weight):
    while True:
        time.sleep(1)
