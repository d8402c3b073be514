"""A GPU latch: the GPU waits, whole, until the host says the timed call is fully enqueued.

The start event must not fire before the host has enqueued the whole call, or the call's launch
latency is timed as kernel time. ``timing.Hold`` spins the GPU for a guessed time (a margin over
recent enqueue times), which wastes the margin on every call and still misses the slow ones.
The latch waits exactly as long as needed: a kernel polls a flag in pinned host memory and exits
when the host writes the call's ticket there, after ``fn`` returned and the stop event was
recorded. A call the host did not finish enqueueing within ``limit_ms`` (a solution that
synchronizes inside its call would otherwise wait on itself forever) releases the stream anyway
and is reported as not held.

The latch fills every SM (as many 1024-thread blocks as the device holds at once), and the host
calls the solution only once every block is resident. While the timed stream waits, nothing else
can run on the SMs, so work a solution puts on a stream of its own, not ordered after the timed
one, cannot finish before the start event: it runs after it, where the device-wide end marker
(``timing.measure_cuda``) sees it. A one-thread latch left the GPU idle for exactly such work.

The kernels are PTX loaded through the driver API (``libcuda`` via ctypes): nothing to compile
ahead, nothing beyond torch needed, a few milliseconds to load once per worker.
"""

from __future__ import annotations

import ctypes
import time

from .cuda_driver import DriverError, check as _check, libcuda

# Thread 0 of each block counts its block in; the block that completes the count tells the host
# (``ready``). Then thread 0 polls until word - ticket >= 0 (signed: tickets wrap) or the time
# limit passes: block 0 polls the host's flag (volatile, so every read goes to host memory), the
# other blocks the device-side gate, which block 0 opens once it is done (past the time limit it
# first writes the ticket to the `missed` word). The other threads wait at the block's barrier
# (non-aligned: warp 0 diverges), holding their SM's slots.
# ``fib_probe`` marks a host word when it runs: the self-test's other-stream kernel.
_PTX = b"""
.version 7.0
.target sm_70
.address_size 64

.visible .entry fib_latch(.param .u64 p_flag, .param .u32 p_ticket, .param .u64 p_limit,
                          .param .u64 p_missed, .param .u64 p_ready, .param .u64 p_gate,
                          .param .u64 p_count, .param .u32 p_expect)
{
    .reg .pred %p<5>;
    .reg .b32 %r<8>;
    .reg .b64 %rd<12>;
    mov.u32 %r0, %tid.x;
    setp.ne.u32 %p0, %r0, 0;
    @%p0 bra WAIT;
    ld.param.u64 %rd1, [p_flag];
    ld.param.u32 %r1, [p_ticket];
    ld.param.u64 %rd2, [p_limit];
    ld.param.u64 %rd3, [p_missed];
    ld.param.u64 %rd7, [p_ready];
    ld.param.u64 %rd8, [p_gate];
    ld.param.u64 %rd9, [p_count];
    ld.param.u32 %r4, [p_expect];
    mov.u64 %rd4, %globaltimer;
    atom.global.add.u32 %r5, [%rd9], 1;
    add.u32 %r5, %r5, 1;
    setp.ne.u32 %p3, %r5, %r4;
    @%p3 bra COUNTED;
    st.volatile.u32 [%rd7], %r1;
COUNTED:
    mov.u32 %r6, %ctaid.x;
    setp.eq.u32 %p4, %r6, 0;
    selp.b64 %rd10, %rd1, %rd8, %p4;
POLL:
    ld.volatile.u32 %r2, [%rd10];
    sub.s32 %r3, %r2, %r1;
    setp.ge.s32 %p1, %r3, 0;
    @%p1 bra SEEN;
    mov.u64 %rd5, %globaltimer;
    sub.u64 %rd6, %rd5, %rd4;
    setp.lt.u64 %p2, %rd6, %rd2;
    @%p2 bra POLL;
    @%p4 st.volatile.u32 [%rd3], %r1;
SEEN:
    @%p4 st.volatile.u32 [%rd8], %r1;
WAIT:
    barrier.sync 0;
    ret;
}

.visible .entry fib_probe(.param .u64 p_word)
{
    .reg .b32 %r<2>;
    .reg .b64 %rd<2>;
    ld.param.u64 %rd1, [p_word];
    mov.u32 %r1, 1;
    st.volatile.u32 [%rd1], %r1;
    ret;
}
\x00"""

_THREADS = 1024
_SM_COUNT = 16  # CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT


class LatchError(DriverError):
    pass


class Latch:
    """``arm(stream)`` (``launch`` then ``wait_ready``) before the start event, ``release()``
    after the stop event, ``covered()`` after the sync. Same role as ``timing.Hold``; raises
    ``LatchError`` where the driver cannot load it or its self-test fails (the caller falls back
    to the spin)."""

    #: After this long the stream goes on without the host: the call is then not held.
    LIMIT_MS = 2.0
    #: How long the host waits for every block to be resident (what is queued before the latch,
    #: the L2 flush and fresh outputs' poison, runs first) before it gives up on holding the call.
    READY_WAIT_MS = 100.0

    def __init__(self, stream: int, sync, limit_ms: float = LIMIT_MS):
        """``stream``: a raw ``cudaStream_t`` for the self-test; ``sync``: a device-wide sync."""
        import torch

        self._cuda = libcuda()
        # Host words, pinned and mapped for the device: [flag, missed, ready, probe].
        self._words = torch.zeros(4, dtype=torch.int32, pin_memory=True)
        base = self._words.data_ptr()
        host = ctypes.c_uint64()
        _check(self._cuda.cuMemHostGetDevicePointer_v2(ctypes.byref(host), ctypes.c_void_p(base), 0),
               "cuMemHostGetDevicePointer")  # fails unless the pinned words are mapped for the device
        self._flag, self._missed, self._ready, self._probed = (ctypes.c_int32.from_address(base + 4 * k)
                                                               for k in range(4))
        self._device_words = torch.zeros(2, dtype=torch.int32, device=torch.cuda.current_device())  # [gate, count]
        module = ctypes.c_void_p()
        _check(self._cuda.cuModuleLoadData(ctypes.byref(module), _PTX), "cuModuleLoadData")
        self._module = module
        self._function, self._probe = (self._get(name) for name in (b"fib_latch", b"fib_probe"))
        self.blocks = self._blocks_to_fill()
        self._ticket = self._arrivals = 0
        self._armed_ready = False
        gate = self._device_words.data_ptr()
        self._args = (ctypes.c_uint64(host.value), ctypes.c_uint32(0), ctypes.c_uint64(int(limit_ms * 1e6)),
                      ctypes.c_uint64(host.value + 4), ctypes.c_uint64(host.value + 8), ctypes.c_uint64(gate),
                      ctypes.c_uint64(gate + 4), ctypes.c_uint32(0))
        self._params = _pointers(self._args)
        self._probe_args = (ctypes.c_uint64(host.value + 12),)
        self._self_test(stream, sync)

    def _get(self, name: bytes) -> ctypes.c_void_p:
        function = ctypes.c_void_p()
        _check(self._cuda.cuModuleGetFunction(ctypes.byref(function), self._module, name), "cuModuleGetFunction")
        return function

    def _blocks_to_fill(self) -> int:
        """Blocks of ``_THREADS`` that fill every SM at once (all of an H100's 2,048 threads per SM)."""
        device, per_sm, sms = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        _check(self._cuda.cuCtxGetDevice(ctypes.byref(device)), "cuCtxGetDevice")
        _check(self._cuda.cuDeviceGetAttribute(ctypes.byref(sms), _SM_COUNT, device.value), "cuDeviceGetAttribute")
        _check(self._cuda.cuOccupancyMaxActiveBlocksPerMultiprocessor(ctypes.byref(per_sm), self._function,
                                                                      _THREADS, 0), "cuOccupancy")
        if per_sm.value < 1 or sms.value < 1:
            raise LatchError(f"the latch cannot fill the device ({per_sm.value} blocks per SM, {sms.value} SMs)")
        return per_sm.value * sms.value

    def _self_test(self, stream: int, sync) -> None:
        """Released at once it must count as held; never released it must let go by itself; while
        it holds, a kernel on another stream must not run."""
        import torch

        other = torch.cuda.Stream()
        self.arm(stream)
        _check(self._cuda.cuLaunchKernel(self._probe, 1, 1, 1, 1, 1, 1, 0, ctypes.c_void_p(other.cuda_stream),
                                         _pointers(self._probe_args), None), "cuLaunchKernel")
        until = time.perf_counter() + 3e-4  # well inside the time limit (a sleep may overshoot it)
        while time.perf_counter() < until:
            pass
        ran_early = self._probed.value != 0
        self.release()
        sync()
        released, probed = self.covered(), self._probed.value != 0
        self.arm(stream)
        sync()
        if not released or self.covered() or ran_early or not probed:
            raise LatchError(f"latch self-test failed (released: {released}, timed out: {not self.covered()}, "
                             f"other stream held back: {not ran_early and probed})")

    def arm(self, stream_handle: int) -> None:
        self.launch(stream_handle)
        self.wait_ready()

    def launch(self, stream_handle: int) -> None:
        """Enqueue the wait for the next ticket on the stream (a raw ``cudaStream_t``)."""
        self._ticket = (self._ticket + 1) & 0x7FFFFFFF
        self._arrivals = (self._arrivals + self.blocks) & 0xFFFFFFFF
        self._args[1].value, self._args[7].value = self._ticket, self._arrivals
        _check(self._cuda.cuLaunchKernel(self._function, self.blocks, 1, 1, _THREADS, 1, 1, 0,
                                         ctypes.c_void_p(stream_handle), self._params, None), "cuLaunchKernel")

    def wait_ready(self) -> None:
        """Return once the launched latch holds every SM (what is queued before it, such as the
        L2 flush, runs first): only then may the timed call be enqueued."""
        deadline = time.perf_counter() + self.READY_WAIT_MS / 1e3
        ready, ticket = self._ready, self._ticket
        while ready.value != ticket and time.perf_counter() < deadline:
            pass
        self._armed_ready = ready.value == ticket

    def release(self) -> None:
        self._flag.value = self._ticket

    def covered(self) -> bool:
        """After the sync: whether the last call was enqueued while the latch held the whole
        device and released by the host, not by the time limit."""
        return self._armed_ready and self._missed.value != self._ticket


def _pointers(args: tuple) -> ctypes.Array:
    """``cuLaunchKernel``'s ``kernelParams``: one pointer per argument."""
    return (ctypes.c_void_p * len(args))(*[ctypes.cast(ctypes.pointer(a), ctypes.c_void_p) for a in args])
