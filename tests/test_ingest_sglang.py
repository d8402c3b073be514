"""SGLang scheduler-log parser: real fixture lines, every drift variant, prefixes, ranks, bad lines."""

from pathlib import Path

import pytest

from fib_data.ingest import sglang
from fib_data.ingest.report import IngestReport

CAPS = ("[2026-05-09 11:59:00] max_total_num_tokens=980344, chunked_prefill_size=16384, "
        "max_prefill_tokens=16384, max_running_requests=3063, context_len=163840")


def parse(tmp_path: Path, *lines: str, **options):
    path = tmp_path / "server.log"
    path.write_text("\n".join(lines) + "\n")
    report = IngestReport()
    frame = sglang.parse([path], report, sglang.SGLangOptions(**options))
    rows = sorted(frame.drop("where", "observed_at").iter_rows(), key=str)
    return rows, report, frame


def test_fixture_lines(fixtures_dir):
    report = IngestReport()
    frame = sglang.parse([fixtures_dir / "serving-logs" / "sglang_scheduler_2025.log"], report)
    got = {(r["stage"], r["batch_size"], r["q_tokens"], r["kv_tokens"], r["weight"]) for r in frame.iter_rows(named=True)}
    # Prefill: batch = #new-seq, q = #new-token, kv = #new-token + #cached-token; decode: kv = #token.
    assert got == {("prefill", 1, 7, 7, 1), ("prefill", 2, 8191, 8191, 1), ("prefill", 1, 2192, 2227, 1),
                   ("decode", 1, 1, 2266, 40)}
    assert report.lines_read == 4 and report.batches_found == 4 and not report.skipped
    first = frame.filter(frame["q_tokens"] == 2192).row(0, named=True)
    assert first["observed_at"] == "2025-07-18T15:32:52" and first["where"].endswith("sglang_scheduler_2025.log:3")


@pytest.mark.parametrize("line, expected", [
    # 2024: cache hit rate, '.' separator
    ("[2025-01-23 19:35:28 TP0] Prefill batch. #new-seq: 1, #new-token: 7, #cached-token: 3, cache hit rate: 30.00%, "
     "token usage: 0.00, #running-req: 0, #queue-req: 0", ("prefill", 1, 7, 10, 0, 1)),
    # 2026: ',' separator, full token usage, extra counters
    ("[2026-05-09 12:00:00 DP0 TP0 EP0] Prefill batch, #new-seq: 2, #new-token: 8192, #cached-token: 0, "
     "full token usage: 0.10, #running-req: 0, #queue-req: 0, #prealloc-req: 0, #inflight-req: 0, "
     "input throughput (token/s): 1000.0", ("prefill", 2, 8192, 8192, 0, 1)),
    # swa token usage, #pending-token, cuda graph on prefill, timestamp suffix; fields reordered
    ("[2026-05-09 12:00:00 TP0] Prefill batch, #cached-token: 12, #pending-token: 100, #new-token: 300, "
     "#new-seq: 3, swa token usage: 0.10, cuda graph: False, #running-req: 0, #queue-req: 0, "
     "timestamp: 2026-05-09T12:00:00.5", ("prefill", 3, 300, 312, 0, 1)),
    # mixed chunk: decode rows ride along
    ("[2025-03-01 10:00:00 TP0] Prefill batch(mixed #running-req: 3). #new-seq: 1, #new-token: 100, "
     "#cached-token: 28, token usage: 0.01, #running-req: 3, #queue-req: 0", ("prefill", 1, 100, 128, 3, 1)),
    # decode: 2025 with cuda graph and timestamp
    ("[2025-07-18 15:32:54 TP0] Decode batch. #running-req: 4, #token: 2266, token usage: 0.00, cuda graph: True, "
     "gen throughput (token/s): 3.13, #queue-req: 0, timestamp: 2025-07-18T15:32:54.159394", ("decode", 4, 4, 2266, 0, 40)),
    # decode: PP/ATTN_CP tags, ',' separator
    ("[2026-05-20 08:02:44 PP0 ATTN_CP0 TP0] Decode batch, #running-req: 4, #token: 477376, token usage: 0.90, "
     "cuda graph: True, gen throughput (token/s): 199.95, #queue-req: 6", ("decode", 4, 4, 477376, 0, 40)),
    # decode: hybrid model's #full token, spec decoding accept len
    ("[2026-05-20 08:02:46 TP0] Decode batch. #running-req: 5, #full token: 5000, full token usage: 0.01, "
     "swa token usage: 0.00, accept len: 2.50, cuda graph: True, gen throughput (token/s): 10.00, #queue-req: 0",
     ("decode", 5, 5, 5000, 0, 40)),
    # docker compose prefix, no rank tag, decode without cuda graph (older)
    ("sglang-1  | [2024-11-02 01:02:03] Decode batch. #running-req: 2, #token: 90, token usage: 0.00, "
     "gen throughput (token/s): 1.00, #queue-req: 0", ("decode", 2, 2, 90, 0, 40)),
    # k8s / containerd prefix
    ("2026-05-20T08:02:45.123456789Z stdout F [2026-05-20 08:02:45 TP0] Decode batch, #running-req: 7, "
     "#token: 700, token usage: 0.01, #queue-req: 0", ("decode", 7, 7, 700, 0, 40)),
])
def test_each_variant(tmp_path, line, expected):
    rows, report, _ = parse(tmp_path, CAPS, line)
    assert rows == [expected]
    assert not report.skipped


def test_decode_interval_sets_weight(tmp_path):
    rows, _, _ = parse(tmp_path, "[2025-07-18 15:32:54 TP0] Decode batch. #running-req: 4, #token: 100, "
                                 "token usage: 0.00, #queue-req: 0", decode_log_interval=10)
    assert rows == [("decode", 4, 4, 100, 0, 10)]


BAD = {
    "missing #cached-token": "[2026-05-20 08:02:48 TP0] Prefill batch, #new-seq: 1, #new-token: 64, #token: 3, "
                             "token usage: 0.00, #running-req: 0, #queue-req: 0",
    "missing #token": "[2026-05-20 08:02:48 TP0] Decode batch, #running-req: 4, token usage: 0.90, #queue-req: 0",
    "non-integer #new-token": "[2026-05-20 08:02:48 TP0] Prefill batch, #new-seq: 1, #new-token: 6.5, "
                              "#cached-token: 0, token usage: 0.00, #running-req: 0, #queue-req: 0",
    "truncated line": "[2026-05-20 08:02:48 TP0] Decode batch, #running-req: 4, #token: 477376, token usage: 0.90, #queue",
    "interleaved lines": "[2026-05-20 08:02:48 TP0] Decode batch, #running-req: 4, #token: 4, token usage: 0.90, "
                         "#queue-req: [2026-05-20 08:02:48 TP0] Decode batch, #running-req: 4, #token: 47, "
                         "token usage: 0.90, #queue-req: 0",
    "impossible value (#new-seq < 1, #new-token < #new-seq or #cached-token < 0)":
        "[2026-05-20 08:02:48 TP0] Prefill batch, #new-seq: 0, #new-token: 64, #cached-token: 0, "
        "token usage: 0.00, #running-req: 0, #queue-req: 0",
    "impossible value (#running-req < 1 or #token < #running-req)":
        "[2026-05-20 08:02:48 TP0] Decode batch, #running-req: -4, #token: 4770, token usage: 0.90, #queue-req: 0",
    "above startup capacity (max_running_requests=3063)":
        "[2026-05-20 08:02:48 TP0] Decode batch, #running-req: 4000, #token: 4770, token usage: 0.90, #queue-req: 0",
    "above startup capacity (chunked_prefill_size=16384)":
        "[2026-05-20 08:02:48 TP0] Prefill batch, #new-seq: 1, #new-token: 20000, #cached-token: 0, "
        "token usage: 0.00, #running-req: 0, #queue-req: 0",
}


def test_bad_lines_are_skipped_with_samples(tmp_path):
    good = "[2026-05-20 08:02:49 TP0] Decode batch, #running-req: 2, #token: 20, token usage: 0.00, #queue-req: 0"
    rows, report, _ = parse(tmp_path, CAPS, *BAD.values(), good)
    assert rows == [("decode", 2, 2, 20, 0, 40)]
    assert dict(report.skipped) == {reason: 1 for reason in BAD}
    for i, reason in enumerate(BAD, start=2):
        assert report.samples[reason][0].startswith(f"{tmp_path / 'server.log'}:{i}: ")
    # a missing count is never read as 0: the line with no #token produced no batch at all
    assert report.batches_found == len(BAD) + 1


def test_one_rank_kept_per_dp_group_and_warmup_dropped(tmp_path):
    lines = [
        "[2026-05-09 11:59:30 TP0] Prefill batch, #new-seq: 1, #new-token: 6, #cached-token: 0, #running-req: 0, #queue-req: 0",
        "[2026-05-09 11:59:40] The server is fired up and ready to roll!",
        "[2026-05-09 12:00:00 DP0 TP0 EP0] Prefill batch, #new-seq: 2, #new-token: 80, #cached-token: 0, #running-req: 0, #queue-req: 0",
        "[2026-05-09 12:00:00 DP1 TP4 EP4] Prefill batch, #new-seq: 3, #new-token: 300, #cached-token: 12, #running-req: 0, #queue-req: 0",
        "[2026-05-09 12:00:00 DP0 TP1 EP1] Prefill batch, #new-seq: 2, #new-token: 80, #cached-token: 0, #running-req: 0, #queue-req: 0",
    ]
    rows, report, _ = parse(tmp_path, *lines)
    assert rows == [("prefill", 2, 80, 80, 0, 1), ("prefill", 3, 300, 312, 0, 1)]
    assert report.dropped == {"warm-up batch before 'fired up'": 1, "another rank's copy of a batch line": 1}
    assert not report.skipped
    rows, _, _ = parse(tmp_path, *lines, rank="DP0 TP1 EP1")
    assert rows == [("prefill", 2, 80, 80, 0, 1)]


def test_identical_shapes_merge_across_chunks(tmp_path):
    line = "[2026-05-20 08:02:4{} TP0] Decode batch, #running-req: 3, #token: 30, token usage: 0.00, #queue-req: 0"
    lines = [line.format(i % 10) for i in range(500)] + ["[2026-05-20 08:03:00 TP0] Decode batch, #running-req: 3, #token: 30, #queue"]
    rows, report, frame = parse(tmp_path, *lines, chunk_bytes=4096)
    assert rows == [("decode", 3, 3, 30, 0, 500 * 40)]
    assert frame["where"][0].endswith(":1")
    # line numbers stay right across chunk boundaries
    assert report.samples["truncated line"][0].split(": ")[0].endswith(":501")
    assert report.lines_read == 501


def test_looks_like():
    assert sglang.looks_like("x\n[2025-01-23 19:35:28 TP0] Prefill batch. #new-seq: 1")
    assert not sglang.looks_like("INFO: batch size 3")


def test_crlf_and_non_ascii_take_the_polars_path_with_the_same_result(tmp_path):
    lines = ["[2025-07-18 15:32:54 TP0] Decode batch. #running-req: 4, #token: 2266, token usage: 0.00, #queue-req: 0",
             "[2025-07-18 15:32:55 TP0] Prefill batch. #new-seq: 2, #new-token: 9, #cached-token: 3, #queue-req: 0",
             "[2025-07-18 15:32:56 TP0] Decode batch. #running-req: 4, #token: 6.5, token usage: 0.00, #queue-req: 0"]
    plain, plain_report, _ = parse(tmp_path, *lines)
    path = tmp_path / "crlf.log"
    path.write_bytes(("\r\n".join(["pod-é \u2603 starting"] + lines) + "\r\n").encode())
    report = IngestReport()
    frame = sglang.parse([path], report)
    assert sorted(frame.drop("where", "observed_at").iter_rows(), key=str) == plain
    assert dict(report.skipped) == dict(plain_report.skipped) == {"non-integer #token": 1}


# Lines the byte path cannot settle from fixed windows (a stamp past the line's head, a rank tag
# longer than the tag window, a last segment longer than the tail window, trailing whitespace)
# take its exact fallbacks; the polars path (forced by a non-ASCII first line) must agree.
EDGE = [
    "x" * 80 + " [2026-05-09 12:00:01 TP0] Decode batch, #running-req: 3, #token: 31, #queue-req: 0",
    "[2026-05-09 12:00:02 DP0 TP0 EP0 PP0 ATTN_CP0 MOE_EP0 X0] Decode batch, #running-req: 3, #token: 32, #queue-req: 0",
    "[2026-05-09 12:00:03 TP0] Decode batch, #running-req: 3, #token: 33, " + "a tail with no separator " * 4,
    "[2026-05-09 12:00:04 TP0] Decode batch, #running-req: 3, #token: 34, a colon: early then " + "text " * 12,
    "[2026-05-09 12:00:05 TP0] Decode batch, #running-req: 3, #token: 35, #queue-req: 0   ",
    "[2026-05-09 12:00:06 TP0] Decode batch, #running-req: 3, #token: 36, #queue-req:\t",
    "[2026-13-09 1x:00:07 TP0] Decode batch, #running-req: 3, #token: 37, #queue-req: 0",
    "Decode batch, #running-req: 3, #token: 38, #queue-req: 0",
    "[2026-05-09 12:00:10 TP0] Prefill batch(mixed #running-req: 2). #new-seq: 1, #new-token: 12345678901, "
    "#cached-token: 0, #queue-req: 0",
    "[2026-05-09 12:00:11 TP0] Prefill batch. #new-seq: 1, #new-token: 123456789, #cached-token: 1, #queue-req: 0",
]


def test_byte_path_fallbacks_agree_with_the_polars_path(tmp_path):
    plain, plain_report, plain_frame = parse(tmp_path, *EDGE)
    path = tmp_path / "utf8.log"
    path.write_text("\n".join(["pod-é starting", *EDGE]) + "\n")
    report = IngestReport()
    frame = sglang.parse([path], report)
    assert sorted(frame.drop("where", "observed_at").iter_rows(), key=str) == plain
    assert sorted(frame["observed_at"].to_list(), key=str) == sorted(plain_frame["observed_at"].to_list(), key=str)
    assert dict(report.skipped) == dict(plain_report.skipped)
    assert report.dropped == plain_report.dropped
    assert plain_report.skipped == {"truncated line": 2}  # lines 3 and 6
    assert plain_frame.filter(plain_frame["stage"] == "prefill")["q_tokens"].to_list() == [12345678901, 123456789]


def test_a_reason_shared_by_both_stages_is_one_group_in_line_order(tmp_path):
    decode = "[2026-05-20 08:02:48 TP0] Decode batch, #running-req: 4000, #token: 4770, #queue-req: 0"
    prefill = "[2026-05-20 08:02:49 TP0] Prefill batch, #new-seq: 4000, #new-token: 4000, #cached-token: 0"
    _, report, _ = parse(tmp_path, CAPS, decode, prefill, decode)
    reason = "above startup capacity (max_running_requests=3063)"
    assert report.skipped == {reason: 3}
    assert [s.split(": ")[0].rsplit(":", 1)[1] for s in report.samples[reason]] == ["2", "3", "4"]


def test_a_line_longer_than_a_chunk(tmp_path):
    long = "[2026-05-20 08:02:48 TP0] Decode batch, #running-req: 2, #token: 20, " + "x: 1, " * 2000 + "#queue-req: 0"
    short = "[2026-05-20 08:02:49 TP0] Decode batch, #running-req: 3, #token: 30, #queue-req: 0"
    rows, report, frame = parse(tmp_path, short, long, short, chunk_bytes=4096)
    assert rows == [("decode", 2, 2, 20, 0, 40), ("decode", 3, 3, 30, 0, 80)]
    assert frame["where"].str.extract(r":(\d+)$").to_list() == ["1", "2"] and report.lines_read == 3
