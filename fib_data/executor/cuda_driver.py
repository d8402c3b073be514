"""The CUDA driver API through ctypes, for the two things torch does not expose: opening the
device's context while the worker is still importing torch, and the timing latch (``latch.py``).
Nothing here needs a toolkit or a compiler: only ``libcuda``, which any CUDA install has."""

from __future__ import annotations

import ctypes
import threading

_lib = None


class DriverError(RuntimeError):
    pass


def libcuda():
    """The driver library with the signatures this package calls (raises ``DriverError``)."""
    global _lib
    if _lib is None:
        try:
            lib = ctypes.CDLL("libcuda.so.1")
        except OSError as exc:
            raise DriverError(f"no CUDA driver library: {exc}") from exc
        p, u, i = ctypes.c_void_p, ctypes.c_uint, ctypes.c_int
        lib.cuInit.argtypes = [u]
        lib.cuDeviceGet.argtypes = [p, i]
        lib.cuDevicePrimaryCtxRetain.argtypes = [p, i]
        lib.cuLaunchKernel.argtypes = [p, u, u, u, u, u, u, u, p, p, p]
        lib.cuModuleLoadData.argtypes = [p, ctypes.c_char_p]
        lib.cuModuleGetFunction.argtypes = [p, p, ctypes.c_char_p]
        lib.cuMemHostGetDevicePointer_v2.argtypes = [p, p, u]
        lib.cuCtxGetDevice.argtypes = [p]
        lib.cuDeviceGetAttribute.argtypes = [p, i, i]
        lib.cuOccupancyMaxActiveBlocksPerMultiprocessor.argtypes = [p, p, i, ctypes.c_size_t]
        _lib = lib
    return _lib


def check(result: int, what: str) -> None:
    if result != 0:
        raise DriverError(f"{what} failed with CUresult {result}")


def open_context_early(index: int) -> threading.Thread:
    """Create the device's primary context on a thread, while the caller imports torch (seconds
    of Python that hold the GIL; the driver's part releases it). torch then finds the context
    open and uses it. Failures are left to torch to report in its own words."""
    def work():
        try:
            lib = libcuda()
            device = ctypes.c_int()
            check(lib.cuInit(0), "cuInit")
            check(lib.cuDeviceGet(ctypes.byref(device), index), "cuDeviceGet")
            check(lib.cuDevicePrimaryCtxRetain(ctypes.byref(ctypes.c_void_p()), device.value),
                  "cuDevicePrimaryCtxRetain")
        except Exception:
            pass

    thread = threading.Thread(target=work, name="fib-cuda-context", daemon=True)
    thread.start()
    return thread
