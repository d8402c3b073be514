"""The notebooks run headless (nbclient, the venv's python3 kernel) on a small demo dataset."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import query_data as qd
from fib_data.curated.build import build_dataset

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def demo_dataset(root: Path):
    """The shipped build (``fib_data.curated.build``) plus one seeded synthetic evaluation of every
    solution on every workload of its definition, on one GPU."""
    ds = build_dataset(root)
    rng = random.Random(3)
    env = qd.environment(qd.H100)
    workloads = defaultdict(list)
    for w in ds.read("workloads").to_pylist():
        workloads[w["definition"]].append(w)
    evaluations = []
    for k, sol in enumerate(ds.read("solutions").to_pylist()):
        for j, wl in enumerate(workloads[sol["definition"]]):
            size = sum(a["value"] for a in wl["axes"])
            status = rng.choice(qd.STATUS_DRAW)
            evaluations.append(qd.evaluation(
                sol, wl, env, "run-demo", qd.DAY0 + timedelta(minutes=k * 50 + j), status,
                0.005 + 2e-6 * size, round(rng.lognormvariate(0.2, 0.5), 3), 4e4 * size, 4e4 * size * rng.choice([1, 400])))
    ds.append("evaluations", evaluations)
    ds.write_card()
    return ds


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return demo_dataset(tmp_path_factory.mktemp("nb") / "flashinfer-bench")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["leaderboard", "roofline"])
def test_notebook_runs(name, dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("FIB_DATASET", str(dataset.root))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    source = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in source.cells if c.cell_type == "code"), "commit notebooks without outputs"
    client = NotebookClient(source, timeout=240, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    outputs = [o for c in source.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2
    text = "".join(str(o.get("data", {}).get("text/html", "")) for o in outputs)
    evaluated = {r["definition"] for r in dataset.read("evaluations", ["definition"]).to_pylist()}
    assert any(d in text for d in evaluated)  # the tables name the evaluated definitions
