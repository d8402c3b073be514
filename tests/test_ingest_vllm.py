"""vLLM metrics lines: interval aggregates -> modelled decode batches (never exact shapes)."""

import pytest

from fib_data.ingest import vllm
from fib_data.ingest.report import IngestError, IngestReport

STARTUP = "INFO 05-21 21:10:00 [kv_cache_utils.py:1000] GPU KV cache size: 1,048,576 tokens"
V1 = ("(APIServer pid=1) INFO 05-21 21:12:{:02d} [loggers.py:271] Engine 000: Avg prompt throughput: 100.0 tokens/s, "
      "Avg generation throughput: {} tokens/s, Running: {} reqs, Waiting: 0 reqs, GPU KV cache usage: {}%, "
      "Prefix cache hit rate: 0.0%")
V0 = ("INFO 05-21 21:12:16 [metrics.py:1] Avg prompt throughput: 0.0 tokens/s, Avg generation throughput: 640.0 tokens/s, "
      "Running: 16 reqs, Swapped: 0 reqs, Pending: 0 reqs, GPU KV cache usage: 3.2%, CPU KV cache usage: 0.0%.")


def run(tmp_path, *lines, **options):
    path = tmp_path / "vllm.log"
    path.write_text("\n".join(lines) + "\n")
    report = IngestReport()
    return vllm.parse([path], report, vllm.VLLMOptions(**options)), report


def test_fixture_lines_with_capacity_flag(fixtures_dir):
    report = IngestReport()
    batches = vllm.parse([fixtures_dir / "serving-logs" / "vllm_v1_metrics.log"], report, vllm.VLLMOptions(kv_capacity=100000))
    # line 1 runs nothing (idle); line 2: 1 request, 31.7% of 100000 tokens, 64 tok/s over the default 10 s
    assert [(b.stage, b.batch_size, b.kv_tokens, b.weight, b.measured) for b in batches] == [("decode", 1, 31700, 640, ())]
    assert report.dropped == {"idle interval (no running or generating requests)": 1}
    assert any("not per-batch shapes" in n for n in report.notes)


def test_capacity_from_startup_and_interval_from_stamps(tmp_path):
    batches, report = run(tmp_path, STARTUP, V1.format(0, "320.0", 8, "1.6"), V1.format(5, "320.0", 8, "1.6"), V0)
    # kv = 1.6% of 1,048,576 = 16777; steps = 320 tok/s x interval / 8 (first interval of each engine: the default 10 s, then 5 s; the V0 line has no engine id)
    assert [(b.batch_size, b.kv_tokens, b.weight) for b in batches] == [(8, 16777, 400), (8, 16777, 200), (16, 33554, 400)]
    assert batches[0].observed_at.month == 5 and batches[0].observed_at.day == 21


def test_unknown_capacity_is_an_error(tmp_path):
    with pytest.raises(IngestError, match="--kv-capacity"):
        run(tmp_path, V1.format(0, "320.0", 8, "1.6"))


def test_garbled_and_impossible_lines_skipped(tmp_path):
    garbled = ("(APIServer pid=1) INFO 05-21 21:12:26 [loggers.py:271] Engine 000: Avg prompt throughput: 0.0 tokens/s, "
               "Avg generation throughput: 64.0 tokens/s, Running: 1 reqs, Waiting: 0he usage: 0.0%")
    batches, report = run(tmp_path, STARTUP, garbled, V1.format(1, "10.0", 2, "120.0"), V1.format(2, "10.0", "1.5", "1.0"))
    assert batches == []
    assert report.skipped["missing kv_usage"] == 1
    assert report.skipped["impossible value (negative, fractional Running or usage above 100%)"] == 2
    assert sum(report.skipped.values()) == 3
