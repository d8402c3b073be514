"""A GPU latch: the stream waits until the host says the timed call is fully enqueued.

The start event must not fire before the host has enqueued the whole call, or the call's launch
latency is timed as kernel time. ``timing.Hold`` spins the GPU for a guessed time (a margin over
recent enqueue times), which wastes the margin on every call and still misses the slow ones.
The latch waits exactly as long as needed: a one-thread kernel polls a flag in pinned host
memory and exits when the host writes the call's ticket there, after ``fn`` returned and the
stop event was recorded. A call the host did not finish enqueueing within ``limit_ms`` (a
solution that synchronizes inside its call would otherwise wait on itself forever) releases the
stream anyway and is reported as not held.

The kernel is PTX loaded through the driver API (``libcuda`` via ctypes): nothing to compile
ahead, nothing beyond torch needed, a few milliseconds to load once per worker.
"""

from __future__ import annotations

import ctypes

from .cuda_driver import DriverError, check as _check, libcuda

# Loop: read the flag (volatile, so every read goes to host memory), done once flag - ticket >= 0
# (signed: tickets wrap); past the time limit write the ticket to the `missed` word and exit.
_PTX = b"""
.version 7.0
.target sm_70
.address_size 64

.visible .entry fib_latch(.param .u64 p_flag, .param .u32 p_ticket, .param .u64 p_limit, .param .u64 p_missed)
{
    .reg .pred %p<3>;
    .reg .b32 %r<4>;
    .reg .b64 %rd<8>;
    ld.param.u64 %rd1, [p_flag];
    ld.param.u32 %r1, [p_ticket];
    ld.param.u64 %rd2, [p_limit];
    ld.param.u64 %rd3, [p_missed];
    mov.u64 %rd4, %globaltimer;
LOOP:
    ld.volatile.u32 %r2, [%rd1];
    sub.s32 %r3, %r2, %r1;
    setp.ge.s32 %p1, %r3, 0;
    @%p1 bra DONE;
    mov.u64 %rd5, %globaltimer;
    sub.u64 %rd6, %rd5, %rd4;
    setp.lt.u64 %p2, %rd6, %rd2;
    @%p2 bra LOOP;
    st.volatile.u32 [%rd3], %r1;
DONE:
    ret;
}
\x00"""


class LatchError(DriverError):
    pass


class Latch:
    """``arm(stream)`` before the start event, ``release()`` after the stop event, ``covered()``
    after the sync. Same role as ``timing.Hold``; raises ``LatchError`` where the driver cannot
    load it (the caller falls back to the spin)."""

    #: After this long the stream goes on without the host: the call is then not held.
    LIMIT_MS = 2.0

    def __init__(self, stream: int, sync, limit_ms: float = LIMIT_MS):
        """``stream``: a raw ``cudaStream_t`` for the self-test; ``sync``: a device-wide sync."""
        import torch

        self._cuda = libcuda()
        self._words = torch.zeros(2, dtype=torch.int32, pin_memory=True)  # [flag, missed]
        base, device = self._words.data_ptr(), ctypes.c_uint64()
        _check(self._cuda.cuMemHostGetDevicePointer_v2(ctypes.byref(device), ctypes.c_void_p(base), 0),
               "cuMemHostGetDevicePointer")  # fails unless the pinned words are mapped for the device
        self._flag = ctypes.c_int32.from_address(base)
        self._missed = ctypes.c_int32.from_address(base + 4)
        module, self._function = ctypes.c_void_p(), ctypes.c_void_p()
        _check(self._cuda.cuModuleLoadData(ctypes.byref(module), _PTX), "cuModuleLoadData")
        _check(self._cuda.cuModuleGetFunction(ctypes.byref(self._function), module, b"fib_latch"),
               "cuModuleGetFunction")
        self._module = module
        self._ticket = 0
        self._args = (ctypes.c_uint64(device.value), ctypes.c_uint32(0), ctypes.c_uint64(int(limit_ms * 1e6)),
                      ctypes.c_uint64(device.value + 4))
        self._params = (ctypes.c_void_p * 4)(*[ctypes.cast(ctypes.pointer(a), ctypes.c_void_p) for a in self._args])
        self._self_test(stream, sync)

    def _self_test(self, stream: int, sync) -> None:
        """Released at once it must count as held; never released it must let go by itself."""
        self.arm(stream)
        self.release()
        sync()
        released = self.covered()
        self.arm(stream)
        sync()
        if not released or self.covered():
            raise LatchError(f"latch self-test failed (released: {released}, timed out: {not self.covered()})")

    def arm(self, stream_handle: int) -> None:
        """Enqueue the wait for the next ticket on the stream (a raw ``cudaStream_t``)."""
        self._ticket = (self._ticket + 1) & 0x7FFFFFFF
        self._args[1].value = self._ticket
        _check(self._cuda.cuLaunchKernel(self._function, 1, 1, 1, 1, 1, 1, 0,
                                         ctypes.c_void_p(stream_handle), self._params, None), "cuLaunchKernel")

    def release(self) -> None:
        self._flag.value = self._ticket

    def covered(self) -> bool:
        """After the sync: whether the last call was released by the host, not by the time limit."""
        return self._missed.value != self._ticket
