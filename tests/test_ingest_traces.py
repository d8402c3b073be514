"""Request traces (ShareGPT, BurstGPT, Azure, Mooncake) and the batching simulator."""

import json
import re

from fib_data.ingest import request_traces
from fib_data.ingest.report import IngestReport
from fib_data.ingest.request_traces import Request
from fib_data.ingest.simulator import SimulatorOptions, simulate


def fixture_rows(fixtures_dir):
    """The sample rows published in serving-logs/request_traces.md."""
    text = (fixtures_dir / "serving-logs" / "request_traces.md").read_text()
    return {
        "azure": re.search(r"row: (\S+ \S+)", text).group(1),
        "burstgpt": re.findall(r"\d+,(?:ChatGPT|GPT-4),[^ ]+ log", text),
        "mooncake": re.search(r"(\{\"timestamp\".*\]\})", text).group(1),
    }


def test_fixture_rows_parse(fixtures_dir, tmp_path):
    rows = fixture_rows(fixtures_dir)
    report = IngestReport()
    azure = tmp_path / "azure.csv"
    azure.write_text(f"TIMESTAMP,ContextTokens,GeneratedTokens\n{rows['azure']}\n2023-11-16 18:15:48.6805900,10,2\n")
    assert [(r.arrival_s, r.input_len, r.output_len) for r in request_traces.read("azure", azure, report)] == \
        [(0.0, 374, 44), (2.0, 10, 2)]
    burst = tmp_path / "burst.csv"
    burst.write_text("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n" + "\n".join(rows["burstgpt"]) + "\n")
    assert [(r.arrival_s, r.input_len, r.output_len) for r in request_traces.read("burstgpt", burst, report)] == \
        [(5.0, 472, 18), (118.0, 417, 276)]
    moon = tmp_path / "moon.jsonl"
    moon.write_text(rows["mooncake"] + "\n")
    (req,) = request_traces.read("mooncake", moon, report)
    assert (req.input_len, req.output_len, req.hash_ids) == (6755, 500, tuple(range(14)))
    assert not report.skipped


def test_burstgpt_v11_columns_by_name_and_failures(tmp_path):
    path = tmp_path / "b3.csv"
    path.write_text("Timestamp,Session ID,Elapsed time,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
                    "1,s1,0.5,ChatGPT,100,20,120,Conversation log\n2,s1,0.5,ChatGPT,100,0,100,Conversation log\n"
                    "3,s2,0.1,ChatGPT,abc,2,2,Conversation log\n")
    report = IngestReport()
    reqs = request_traces.read("burstgpt", path, report)
    assert [(r.arrival_s, r.input_len, r.output_len) for r in reqs] == [(1.0, 100, 20)]
    assert report.dropped == {"failed request (Response tokens 0)": 1}
    assert report.samples["bad burstgpt row (ValueError)"][0].startswith(f"{path}:4")


def test_sharegpt_chars_per_token(tmp_path):
    path = tmp_path / "sg.json"
    path.write_text(json.dumps([{"id": "a", "conversations": [{"from": "human", "value": "x" * 40},
                                                               {"from": "gpt", "value": "y" * 9}]},
                                {"id": "b", "conversations": [{"from": "human", "value": "only one turn"}]}]))
    report = IngestReport()
    reqs = request_traces.read("sharegpt", path, report, chars_per_token=4.0)
    assert [(r.input_len, r.output_len) for r in reqs] == [(10, 2)]
    assert report.dropped == {"conversation with fewer than 2 turns": 1}


def shapes(batches):
    return [(b.stage, b.q_lens, b.kv_lens) for b in batches]


def test_simulator_prefix_cache_and_admission_by_hand():
    opts = SimulatorOptions(max_running_requests=2, chunked_prefill_size=8, page_size=1, block_size=4, step_s=1.0)
    reqs = [Request(0.0, 6, 3, (1, 2)), Request(0.0, 5, 2, (1, 3)), Request(2.5, 10, 1, (1, 2, 4))]
    # step 0 (t=0): A prefills 6 tokens (cache empty); B shares block 1 (4 tokens) with A, so only its
    #   last token is new: q=1, kv=5. Both now run, each holding 1 generated token.
    # step 1 (t=1): decode A (kv 6+1) and B (kv 5+1); B has its 2 tokens and leaves.
    # step 2 (t=2): decode A (kv 6+2); A has its 3 tokens and leaves. C has not arrived (t=2.5).
    # step 3 (t=3): C prefills; blocks 1, 2 cached (8 tokens), block 4 not: q=2, kv=10; output 1: done.
    assert shapes(simulate(reqs, opts)) == [
        ("prefill", (6, 1), (6, 5)),
        ("decode", (1, 1), (7, 6)),
        ("decode", (1,), (8,)),
        ("prefill", (2,), (10,)),
    ]


def test_simulator_chunked_prefill_by_hand():
    opts = SimulatorOptions(max_running_requests=4, chunked_prefill_size=4, step_s=1.0)
    # a 10-token prompt in chunks of 4, 4, 2 (kv grows with each chunk), then one decode step
    assert shapes(simulate([Request(0.0, 10, 2)], opts)) == [
        ("prefill", (4,), (4,)), ("prefill", (4,), (8,)), ("prefill", (2,), (10,)), ("decode", (1,), (11,))]


def test_simulator_kv_capacity_holds_requests_back():
    opts = SimulatorOptions(max_running_requests=8, chunked_prefill_size=100, page_size=4, kv_capacity=16, step_s=1.0)
    # each request needs ceil((6 + 2) / 4) = 2 pages = 8 tokens: only two fit the 16-token pool at once
    got = shapes(simulate([Request(0.0, 6, 2)] * 3, opts))
    assert got == [("prefill", (6, 6), (6, 6)), ("decode", (1, 1), (7, 7)), ("prefill", (6,), (6,)), ("decode", (1,), (7,))]
