"""The SGLang byte path's parts (SWAR numbers, byte scans, shape merging) against plain Python,
and the byte path against the polars path on many mutated lines."""

import random
import re
from collections import defaultdict

import numpy as np
import pytest

from fib_data.ingest import sglang, sglang_shapes
from fib_data.ingest.fields import equal_bytes, last_flagged, read_ints
from fib_data.ingest.report import IngestReport
from fib_data.ingest.scan import has_pair, positions_of

PAD = b" " * 64


def test_read_ints_matches_a_regex_on_random_text():
    rng = random.Random(0)
    data = bytes(rng.choice(b"0123456789  -,)%\n:.ax") for _ in range(20000)) + PAD
    buf = np.frombuffer(data, dtype=np.uint8)
    offsets = np.arange(20000)
    values, ok = read_ints(buf, offsets)
    number = re.compile(rb"( {0,3})(-?)(\d{1,12})[, \n)%]")
    for at in range(20000):
        m = number.match(data, at)
        assert ok[at] == bool(m), data[at:at + 24]
        assert values[at] == (int(m.group(2) + m.group(3)) if m else 0), data[at:at + 24]
    assert ok.sum() > 1000  # the text is not all failures


def test_byte_helpers():
    rng = random.Random(1)
    for _ in range(300):
        word = bytes(rng.choice(b",: a\x00\xff") for _ in range(8))
        flags = equal_bytes(np.frombuffer(word, dtype=np.uint64), ord(","))
        assert last_flagged(flags)[0] == word.rfind(b",")
    for size in range(0, 40):
        text = bytes(rng.choice(b"abc") for _ in range(size))
        buf = np.frombuffer(text, dtype=np.uint8)
        assert has_pair(buf, b"cc") == (b"cc" in text)
        assert positions_of(text, b"ac").tolist() == [i for i, c in enumerate(text) if c in b"ac"]


def _part(rows):
    cols = {c: np.array([r[i] for r in rows], dtype=np.int64) for i, c in enumerate(sglang_shapes.PART)}
    return cols


@pytest.mark.parametrize("collide", [False, True])
def test_shapes_merge_exactly(monkeypatch, collide):
    """Distinct shapes with summed weights, earliest time and first line, whatever the key:
    packed (small numbers), hashed (large ones) or colliding hashes (a zero hash mix)."""
    if collide:
        monkeypatch.setattr(sglang_shapes, "_MIX", np.zeros(5, dtype=np.uint64))
    monkeypatch.setattr(sglang_shapes, "_MERGE_ROWS", 50)
    rng = random.Random(2)
    shapes = sglang_shapes.Shapes()
    want = defaultdict(lambda: [0, 2**62, 2**62])
    loc = 0
    for _ in range(40):
        rows = []
        for _ in range(rng.randint(0, 30)):
            shape = (rng.randint(0, 1), rng.choice([1, 3, 5000]), rng.choice([3, 40000]),
                     rng.choice([7, 30_000_000]), rng.choice([0, 2, 3000]))
            loc += 1
            rows.append((*shape, rng.choice([1, 40]), rng.randint(0, 99), loc))
            w = want[shape]
            w[0], w[1], w[2] = w[0] + rows[-1][5], min(w[1], rows[-1][6]), min(w[2], loc)
        shapes.add(_part(rows) if rows else sglang_shapes.EMPTY)
    got = shapes.result()
    rows = {tuple(int(got[c][i]) for c in sglang_shapes.SHAPE): (int(got["weight"][i]), int(got["stamp"][i]),
                                                                 int(got["loc"][i])) for i in range(len(got["loc"]))}
    assert len(rows) == len(got["loc"]) == len(want)
    assert rows == {k: tuple(v) for k, v in want.items()}
    assert (np.diff(got["key"].astype(np.float64)) >= 0).all()  # kept in key order for lookups


KEYS = ["#new-seq: {a}", "#new-token: {b}", "#cached-token: {c}", "#running-req: {a}", "#token: {b}",
        "#full token: {b}", "token usage: 0.{a}", "#queue-req: {c}", "accept len: 1.5", "cuda graph: True"]
HEADS = ["[2026-05-20 08:0{s}:1{s} TP0] ", "[2026-05-20 08:0{s}:1{s} DP1 TP4 EP4] ", "sglang-1  | [2026-05-20T08:00:0{s}] ",
         "", "x[20 ", "[2026-13-20 0x:00:00 TP0] ", "[2026-05-20 08:00:0{s} PP0 ATTN_CP0 TP0 MOE_EP0 EXTRA_TAG9] "]
STAGES = ["Prefill batch. ", "Decode batch, ", "Prefill batch(mixed #running-req: {a}). ", "Decode batch"]


def _line(rng: random.Random) -> str:
    # (Known difference, kept from before: a value followed by a space and more text, or by a
    # tab, is read by the byte path and not by the polars path, which wants the text up to the
    # next ',' to be the number; such lines are left out here.)
    nums = {"a": rng.choice([0, 1, 3, 12, -2]), "b": rng.choice([5, 17, 123456789, 6.5]), "c": rng.choice([0, 9]),
            "s": rng.randint(0, 9)}
    keys = rng.sample(KEYS, rng.randint(0, 6))
    line = rng.choice(HEADS) + rng.choice(STAGES) + ", ".join(keys)
    line = line.format(**nums)
    cut = rng.random()
    if cut < 0.2:
        line = line[:rng.randint(0, len(line))]
    elif cut < 0.3:
        line += rng.choice([",", ":", "  ", ", #queue"])
    elif cut < 0.35:
        line += ", " + _line(rng)
    return line


def _parse(path, **options):
    report = IngestReport()
    frame = sglang.parse([path], report, sglang.SGLangOptions(**options))
    return frame, report


def test_byte_path_agrees_with_polars_path_on_mutated_lines(tmp_path):
    rng = random.Random(3)
    lines = [sglang_caps()] + [_line(rng) for _ in range(3000)]
    plain = tmp_path / "plain.log"
    plain.write_text("\n".join(lines) + "\n")
    utf8 = tmp_path / "utf8.log"
    utf8.write_text("\n".join(["pod-é"] + lines) + "\n")  # one chunk, not ASCII: the polars path
    frame, report = _parse(plain)
    other, other_report = _parse(utf8)
    assert report.batches_found > 2000 and len(report.skipped) >= 6
    shift = {w: f"{plain}:{int(w.rsplit(':', 1)[1]) - 1}" for w in other["where"]}
    assert frame.to_dicts() == other.with_columns(other["where"].replace_strict(shift)).to_dicts()
    assert report.skipped == other_report.skipped and report.dropped == other_report.dropped
    assert report.notes == other_report.notes
    # Small chunks (many buffers, lines cut at every boundary) give the same result.
    small, small_report = _parse(plain, chunk_bytes=1024)
    assert small.to_dicts() == frame.to_dicts() and small_report.skipped == report.skipped


def sglang_caps() -> str:
    return ("[2026-05-20 08:00:00] max_total_num_tokens=980344, chunked_prefill_size=16384, "
            "max_prefill_tokens=16384, max_running_requests=3063, context_len=163840")
