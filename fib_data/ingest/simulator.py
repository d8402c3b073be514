"""A small continuous-batching scheduler: requests -> the prefill and decode steps an engine runs.

The model follows SGLang's default scheduler (no mixed chunks), one step at a time:

1. Requests whose arrival time has come join the waiting queue (FIFO).
2. If a request is part-way through a chunked prefill, or some are waiting and fewer than
   ``max_running_requests`` run, the step is a prefill step: first the unfinished chunk, then
   waiting requests in order while running + new < ``max_running_requests``, the KV pool has room
   for their whole context (``kv_capacity`` tokens, counted in pages of ``page_size``) and the
   ``chunked_prefill_size`` token budget lasts. A request that does not fit the budget gets a
   chunk of what is left and finishes its prefill in later steps. Its cached prefix (leading
   ``hash_ids`` blocks already in the prefix cache, ``block_size`` tokens each, at most
   input - 1) is not recomputed: q = the new tokens, kv = prefix + everything prefilled so far.
   Finishing the prefill samples the first output token and adds the request's blocks to the
   prefix cache (unbounded: nothing is evicted).
3. Otherwise, if requests run, the step decodes all of them: q = 1 each, kv = prompt + tokens
   generated so far; a request leaves after ``output_len`` tokens (output_len - 1 decode steps).
4. Time advances by ``step_s`` per step, or jumps to the next arrival when idle.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .batches import Batch
from .request_traces import Request


@dataclass(frozen=True)
class SimulatorOptions:
    max_running_requests: int = 256
    chunked_prefill_size: int = 8192
    page_size: int = 1
    kv_capacity: int | None = None
    block_size: int = 512
    step_s: float = 0.02


@dataclass
class _Seq:
    req: Request
    cached: int = 0
    prefilled: int = 0
    generated: int = 0
    pages: int = 0


@dataclass
class _State:
    options: SimulatorOptions
    waiting: deque = field(default_factory=deque)
    running: list = field(default_factory=list)
    partial: _Seq | None = None
    cache: set = field(default_factory=set)
    used_pages: int = 0


def simulate(requests: list[Request], options: SimulatorOptions | None = None, source: str = "") -> list[Batch]:
    options = options or SimulatorOptions()
    arrivals = deque(sorted(requests, key=lambda r: r.arrival_s))
    state = _State(options)
    batches: list[Batch] = []
    now = 0.0
    while arrivals or state.waiting or state.running or state.partial:
        while arrivals and arrivals[0].arrival_s <= now + 1e-9:
            state.waiting.append(_Seq(arrivals.popleft()))
        step = _prefill(state) or _decode(state)
        if step is None:
            if not arrivals:
                raise RuntimeError("simulator stalled: a request can never fit the KV capacity")
            now = max(now, arrivals[0].arrival_s)
            continue
        batches.append(Batch(step[0], len(step[1]), sum(step[1]), sum(step[2]), q_lens=tuple(step[1]),
                             kv_lens=tuple(step[2]), where=f"{source}:step{len(batches)}", measured=()))
        now += options.step_s
    return batches


def _prefill(state: _State):
    o = state.options
    budget = o.chunked_prefill_size
    q_lens, kv_lens = [], []
    if state.partial is not None:
        seq, state.partial = state.partial, None
        budget = _chunk(state, seq, budget, q_lens, kv_lens)
    while state.waiting and budget > 0 and len(state.running) + (state.partial is not None) < o.max_running_requests:
        seq = state.waiting[0]
        pages = -(-(seq.req.input_len + seq.req.output_len) // o.page_size)
        if o.kv_capacity is not None and (state.used_pages + pages) * o.page_size > o.kv_capacity:
            break
        state.waiting.popleft()
        seq.pages = pages
        state.used_pages += pages
        seq.cached = min(_cached_blocks(state.cache, seq.req.hash_ids) * o.block_size, seq.req.input_len - 1)
        seq.prefilled = seq.cached
        budget = _chunk(state, seq, budget, q_lens, kv_lens)
    return ("prefill", q_lens, kv_lens) if q_lens else None


def _chunk(state: _State, seq: _Seq, budget: int, q_lens: list, kv_lens: list) -> int:
    take = min(budget, seq.req.input_len - seq.prefilled)
    seq.prefilled += take
    q_lens.append(take)
    kv_lens.append(seq.prefilled)
    if seq.prefilled < seq.req.input_len:
        state.partial = seq
    else:
        seq.generated = 1
        state.cache.update(seq.req.hash_ids)
        if seq.generated >= seq.req.output_len:
            state.used_pages -= seq.pages
        else:
            state.running.append(seq)
    return budget - take


def _decode(state: _State):
    if not state.running:
        return None
    kv_lens = [seq.req.input_len + seq.generated for seq in state.running]
    still = []
    for seq in state.running:
        seq.generated += 1
        if seq.generated < seq.req.output_len:
            still.append(seq)
        else:
            state.used_pages -= seq.pages
    state.running = still
    return "decode", [1] * len(kv_lens), kv_lens


def _cached_blocks(cache: set, hash_ids: tuple[int, ...]) -> int:
    n = 0
    for h in hash_ids:
        if h not in cache:
            break
        n += 1
    return n
