"""FlashInfer level-3 API logs and level-10 dumps -> kernel uses (pairing .run with its .plan)."""

import json

import numpy as np
import pytest

from fib_data.ingest import flashinfer_dump, flashinfer_log
from fib_data.ingest.report import IngestReport

RULE, DASH = "=" * 80, "-" * 80


def tensor(shape, dtype="torch.int32", indent="    "):
    return [f"{indent}Tensor(", f"{indent}  shape={tuple(shape)}", f"{indent}  dtype={dtype}",
            f"{indent}  device=cuda:0", f"{indent})"]


def inputs(name, args=(), kwargs=(), stamp="2025-12-18 10:30:45"):
    lines = [RULE, f"[{stamp}] FlashInfer API Call: {name}", DASH]
    if args:
        lines.append("Positional input arguments:")
        for i, value in enumerate(args):
            lines += [f"  arg[{i}]:"] + (value if isinstance(value, list) else [f"    {value}"])
    if kwargs:
        lines.append("Keyword input arguments:")
        for key, value in kwargs:
            lines += [f"  {key}="] + (value if isinstance(value, list) else [f"    {value}"])
    return lines


def outputs():
    return ["Output value:", "  Tensor(", "    shape=(4, 32, 128)", "  )", RULE, ""]


def uses(tmp_path, lines):
    path = tmp_path / "fi.log"
    path.write_text("\n".join(lines) + "\n")
    report = IngestReport()
    return list(flashinfer_log.read([path], report, "llama-3.1-8b", 1)), report


def test_fixture_run_without_plan(fixtures_dir):
    report = IngestReport()
    (use, where, when), = flashinfer_log.read([fixtures_dir / "serving-logs" / "flashinfer_api_level3.log"],
                                              report, "llama-3.1-8b", 1)
    assert use.definition["name"] == "gqa_paged_decode_h32_kv8_d128_ps16"
    assert dict(use.axes) == {"batch_size": 32, "num_pages": 20480}
    assert where.endswith("flashinfer_api_level3.log:2") and when.year == 2025
    assert any("without its .plan" in n for n in report.notes)


def test_plan_run_pairing_and_interleaved_ranks(tmp_path):
    plan = inputs("BatchDecodeWithPagedKVCacheWrapper.plan",
                  [tensor((5,)), tensor((40,)), tensor((4,)), 32, 8, 128, 16])
    run_a = inputs("BatchDecodeWithPagedKVCacheWrapper.run",
                   [tensor((4, 32, 128), "torch.bfloat16"), tensor((1000, 2, 16, 8, 128), "torch.bfloat16")],
                   [("return_lse", "False")])
    run_b = inputs("BatchDecodeWithPagedKVCacheWrapper.run", [tensor((4, 32, 128), "torch.bfloat16"),
                                                            tensor((1000, 2, 16, 8, 128), "torch.bfloat16")])
    norm = inputs("rmsnorm", [tensor((7, 4096), "torch.bfloat16"), tensor((4096,), "torch.bfloat16")], [("eps", "1e-05")])
    # two ranks: both inputs writes come before both outputs writes; the last call never returns
    lines = plan + outputs() + run_a + run_b + outputs() + outputs() + norm
    found, report = uses(tmp_path, lines)
    decode = [u for u, _, _ in found if u.definition["op_type"] == "gqa_paged"]
    assert len(decode) == 2
    assert decode[0].kv_lens == (160,) * 4  # 40 pages over 4 sequences, full pages of 16
    assert decode[0].axes == (("num_pages", 1000),)
    (norm_use,) = [u for u, _, _ in found if u.definition["op_type"] == "rmsnorm"]
    assert norm_use.definition["name"] == "rmsnorm_h4096" and norm_use.axes == (("batch_size", 7),)
    assert any("1 call(s) with no 'Output value:'" in n for n in report.notes)
    assert not report.skipped


def test_truncated_block_and_level1_lines(tmp_path):
    cut = inputs("rmsnorm", [["    Tensor(", "      shape=(7, 4096)"]])
    lines = ["[2025-12-18 10:30:45] FlashInfer API Call: rmsnorm"] + cut + [RULE]
    found, report = uses(tmp_path, lines)
    assert found == []
    assert report.skipped["truncated call block (unclosed Tensor)"] == 1
    assert report.dropped["level-1 call line (no shapes)"] == 1


def _dump(root, name, seq, tensors, meta_extra, jsonl=False, pt=False):
    import torch
    from safetensors.torch import save_file

    folder = root / f"20251218_103045_{seq:03d}_pid77_{name}_call{seq:04d}"
    folder.mkdir(parents=True)
    if pt:
        torch.save(tensors, folder / "inputs.pt")
    else:
        save_file(tensors, str(folder / "inputs.safetensors"))
    meta = {"function_name": name, "process_id": 77, "call_sequence": seq, "execution_status": "completed",
            "timestamp": "2025-12-18T10:30:45", **meta_extra}
    if jsonl:
        (folder / "metadata.jsonl").write_text(json.dumps({**meta, "execution_status": "inputs_saved"}) + "\n"
                                               + json.dumps(meta) + "\n")
    else:
        (folder / "metadata.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("pt", [False, True])
def test_dump_real_page_tables_become_tensors(tmp_path, pt):
    import torch

    indptr = torch.tensor([0, 3, 5], dtype=torch.int32)
    indices = torch.tensor([9, 2, 7, 30, 4], dtype=torch.int32)
    last = torch.tensor([5, 16], dtype=torch.int32)
    _dump(tmp_path, "BatchDecodeWithPagedKVCacheWrapper.plan", 1,
          {"arg_1": indptr, "arg_2": indices, "arg_3": last},
          {"function_signature": "(self, indptr: torch.Tensor, indices: torch.Tensor, last_page_len: torch.Tensor, "
                                 "num_qo_heads: int, num_kv_heads: int, head_dim: int, page_size: int, "
                                 "pos_encoding_mode: str = 'NONE') -> None",
           "input_metadata": {"arg_4": 32, "arg_5": 8, "arg_6": 128, "arg_7": 16}}, jsonl=True, pt=pt)
    _dump(tmp_path, "BatchDecodeWithPagedKVCacheWrapper.run", 2,
          {"arg_1": torch.zeros(2, 32, 128, dtype=torch.bfloat16), "arg_2": torch.zeros(40, 2, 16, 8, 128, dtype=torch.bfloat16)},
          {"function_signature": "(self, q: torch.Tensor, paged_kv_cache, *args, out=None) -> torch.Tensor"}, pt=pt)
    assert flashinfer_dump.looks_like(tmp_path)
    report = IngestReport()
    (use, where, _), = flashinfer_dump.read([tmp_path], report, "llama-3.1-8b", 1)
    assert use.definition["name"] == "gqa_paged_decode_h32_kv8_d128_ps16"
    # per-sequence KV lengths from the real indptr and last-page lengths: 2 full pages + 5, 1 + 16
    assert use.kv_lens == (2 * 16 + 5, 16 + 16)
    np.testing.assert_array_equal(use.tensors["kv_indices"], indices.numpy())
    np.testing.assert_array_equal(use.tensors["kv_last_page_len"], last.numpy())
    assert dict(use.axes) == {"num_pages": 40}
    assert report.batches_found == 2 and not report.skipped


def test_dump_ingest_stores_the_real_page_table(tmp_path):
    import torch

    from fib_data.dataset import Dataset
    from fib_data.ingest import IngestOptions, ingest
    from fib_data.validate import validate_dataset

    dumps = tmp_path / "dumps"
    indices = torch.tensor([9, 2, 7, 30, 4], dtype=torch.int32)
    _dump(dumps, "BatchPrefillWithPagedKVCacheWrapper.plan", 1,
          {"kwarg_qo_indptr": torch.tensor([0, 3, 7], dtype=torch.int32),
           "kwarg_paged_kv_indptr": torch.tensor([0, 3, 5], dtype=torch.int32),
           "kwarg_paged_kv_indices": indices, "kwarg_paged_kv_last_page_len": torch.tensor([5, 16], dtype=torch.int32)},
          {"input_metadata": {"kwarg_num_qo_heads": 32, "kwarg_num_kv_heads": 8, "kwarg_head_dim_qk": 128,
                              "kwarg_page_size": 16, "kwarg_causal": True}})
    _dump(dumps, "BatchPrefillWithPagedKVCacheWrapper.run", 2,
          {"arg_0": torch.zeros(7, 32, 128, dtype=torch.bfloat16), "arg_1": torch.zeros(31, 2, 16, 8, 128, dtype=torch.bfloat16)},
          {"function_signature": "(q: torch.Tensor, paged_kv_cache, *args) -> torch.Tensor"})
    ds = Dataset.create(tmp_path / "ds")
    report = ingest([dumps], IngestOptions(model="llama-3.1-8b", page_size=16), ds.root)
    assert dict(report.workloads) == {"gqa_paged_prefill_causal_h32_kv8_d128_ps16": 1}
    (row,) = ds.polars("workloads").iter_rows(named=True)
    assert {a["name"]: a["value"] for a in row["axes"]} == {"total_q": 7, "batch_size": 2, "num_pages": 31,
                                                           "len_indptr": 3, "num_kv_indices": 5}
    blob = {i["name"]: i for i in row["inputs"]}["kv_indices"]
    np.testing.assert_array_equal(ds.blobs.load(blob["sha256"])["kv_indices"], indices.numpy())
    assert row["source_kind"] == "flashinfer_dump" and validate_dataset(ds) == []


def test_banner_ignored_and_foreign_line_inside_a_block_skips_it(tmp_path):
    banner = [RULE, "[2025-12-18 10:30:40] FlashInfer API Logging - System Information", RULE,
              "FlashInfer version: 0.7.2", "PyTorch version: 2.11.0", RULE, ""]
    good = inputs("silu_and_mul", [tensor((9, 2 * 14336), "torch.bfloat16")]) + outputs()
    broken = inputs("rmsnorm", [tensor((7, 4096), "torch.bfloat16")])
    broken.insert(5, "INFO 12-18 10:30:46 another process wrote this line")
    found, report = uses(tmp_path, banner + good + broken + outputs())
    assert [(u.definition["name"], u.axes) for u, _, _ in found] == [("silu_and_mul_h14336", (("batch_size", 9),))]
    assert report.skipped["malformed argument line in a call block"] == 1
