"""Every query in queries/ on a small dataset, checked against answers computed here in Python."""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

import query_data as qd
from fib_data.hashing import environment_hash
from fib_data.query import diff_datasets, list_queries, load_query, query_dir, run_query, run_sql
from fib_data.schema import KEYS, TABLES

FIB = [sys.executable, "-m", "fib_data"]


@pytest.fixture(scope="module")
def rows():
    return qd.tables()


@pytest.fixture(scope="module")
def ds(rows, tmp_path_factory):
    return qd.write(tmp_path_factory.mktemp("q") / "ds", rows)


@pytest.fixture(scope="module")
def facts(rows):
    """What the queries are about, derived in plain Python from the rows."""
    latest = qd.newest(rows["evaluations"])
    groups = defaultdict(list)  # (definition, hardware, solution) -> newest evaluations
    for e in latest:
        groups[(e["definition"], e["environment"]["hardware"], e["solution"])].append(e)
    return {"latest": latest, "groups": groups,
            "n_wl": Counter(w["definition"] for w in rows["workloads"]),
            "weight": {w["uuid"]: w["weight"] for w in rows["workloads"]},
            "sol": {s["name"]: s for s in rows["solutions"]}}


def passed(evals):
    return [e for e in evals if e["status"] == "PASSED"]


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else None


def quantile(xs, q):
    xs = sorted(xs)
    pos = q * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (pos - lo) * (xs[hi] - xs[lo])


def records(frame: pl.DataFrame, cols: list[str]) -> list[tuple]:
    return [tuple(r) for r in frame.select(cols).rows()]


def approx_rows(expected: list[tuple]):
    return [tuple(pytest.approx(v) if isinstance(v, float) else v for v in row) for row in expected]


def scores(facts):
    """(definition, hardware, solution) -> (passed, evaluated, geomean speedup)."""
    return {k: (len(passed(v)), len(v), geomean([e["speedup_factor"] for e in passed(v)]))
            for k, v in facts["groups"].items()}


def flagged(evals):
    return sum(1 for e in passed(evals) if {"implausible_speedup", "wall_clock_gap"} & set(e["flags"]))


def rank_key(item):
    (d, h, s), (n_pass, _, gm) = item
    return (d, h, gm is None, -(gm or 0), -n_pass, s)


# ---- the files themselves -------------------------------------------------------------------

def test_every_query_is_documented_and_runs(ds):
    names = {q.name for q in list_queries()}
    assert {"leaderboard", "fast_p", "win_at_p", "language_tradeoffs", "traffic_weighted", "roofline",
            "coverage", "snapshot_diff"} <= names
    for q in list_queries():
        assert q.summary and "Output columns" in q.text, q.name
        assert all(p.doc for p in q.params), q.name
        if q.name != "snapshot_diff":
            assert isinstance(run_query(ds, q.name), pl.DataFrame)


def test_queries_paste_into_a_plain_duckdb_session_in_the_dataset_folder(ds, monkeypatch):
    """What a user does in the DuckDB shell: read _views.sql, _macros.sql, then the query."""
    monkeypatch.chdir(ds.root)
    con = duckdb.connect()
    for name in ("_views", "_macros"):
        con.execute((query_dir() / f"{name}.sql").read_text())
    con.execute(f"SET VARIABLE hardware = '{qd.H200}'")
    shell = pl.from_arrow(con.sql(load_query("leaderboard").text).to_arrow_table())
    assert shell.equals(run_query(ds, "leaderboard", {"hardware": qd.H200}))
    assert set(shell["hardware"]) == {qd.H200}


def test_params_are_typed_checked_and_reset(ds):
    con = ds.connect()
    one = run_query(con, "fast_p", {"thresholds": "1,2", "hardware": qd.H200})
    assert set(one["p"]) == {1.0, 2.0} and set(one["hardware"]) == {qd.H200}
    again = run_query(con, "fast_p")  # same connection: the defaults come back
    assert set(again["p"]) == {0, 0.5, 1, 1.5, 2, 3} and len(set(again["hardware"])) == 2
    assert set(run_query(ds, "fast_p", {"thresholds": [0.25]})["p"]) == {0.25}
    with pytest.raises(ValueError, match="no parameter bogus"):
        run_query(ds, "leaderboard", {"bogus": 1})
    with pytest.raises(ValueError, match="parameter min_coverage takes DOUBLE"):
        run_query(ds, "leaderboard", {"min_coverage": "lots"})
    with pytest.raises(ValueError, match="unknown query"):
        run_query(ds, "nope")


# ---- each query against its Python twin -----------------------------------------------------

def test_leaderboard(ds, facts):
    ranked = sorted(scores(facts).items(), key=rank_key)
    expected, last, rank = [], None, 0
    for (d, h, s), (n_pass, n_eval, gm) in ranked:
        rank = rank + 1 if (d, h) == last else 1
        last = (d, h)
        sol = facts["sol"][s]
        expected.append((d, h, rank, s, sol["author"], sol["language"], gm,
                         n_pass / facts["n_wl"][d], n_pass / n_eval, n_pass, n_eval,
                         flagged(facts["groups"][(d, h, s)])))
    cols = ["definition", "hardware", "rank", "solution", "author", "language", "geomean_speedup",
            "coverage", "correctness_rate", "passed", "evaluated", "flagged"]
    assert records(run_query(ds, "leaderboard"), cols) == approx_rows(expected)
    assert sum(r[-1] for r in expected) >= 2  # the fixture's review flags reach the board
    top = run_query(ds, "leaderboard", {"definition": "rmsnorm_h4096", "hardware": qd.H100, "min_coverage": 0.5})
    assert top["solution"][0] == next(r[3] for r in expected if r[:3] == ("rmsnorm_h4096", qd.H100, 1))
    assert (top["coverage"] >= 0.5).all()


def test_fast_p_per_solution_language_and_author(ds, facts):
    ps = [0, 0.5, 1, 1.5, 2, 3]
    pooled = defaultdict(lambda: [0, 0])
    expected = []
    for (d, h, s), evals in facts["groups"].items():
        sol = facts["sol"][s]
        for p in ps:
            fast = sum(1 for e in passed(evals) if e["speedup_factor"] > p)
            total = facts["n_wl"][d]
            expected.append(("solution", d, h, s, p, fast, total, fast / total))
            for level in ("language", "author"):
                acc = pooled[(level, h, sol[level], p)]
                acc[0] += fast
                acc[1] += total
    expected += [(lvl, None, h, name, p, f, t, f / t) for (lvl, h, name, p), (f, t) in pooled.items()]
    got = run_query(ds, "fast_p")
    cols = ["level", "definition", "hardware", "name", "p", "n_fast", "n_total", "fast_p"]
    assert sorted(records(got, cols), key=str) == approx_rows(sorted(expected, key=str))
    fast0 = got.filter((pl.col("level") == "solution") & (pl.col("p") == 0))
    for d, h, s, f in fast0.select("definition", "hardware", "name", "n_fast").rows():
        assert f == len(passed(facts["groups"][(d, h, s)]))  # fast_0 is the correctness count


@pytest.mark.parametrize("p", [1.0, 1.3])
def test_win_at_p(ds, facts, p):
    by_key = {(e["definition"], e["environment"]["hardware"], e["solution"], e["workload_uuid"]): e
              for e in facts["latest"]}
    expected = []
    for (d, h, a) in facts["groups"]:
        for (d2, h2, b) in facts["groups"]:
            if (d2, h2) != (d, h) or a == b:
                continue
            wins = common = 0
            for (dd, hh, s, w), ea in by_key.items():
                if (dd, hh, s) != (d, h, a) or (d, h, b, w) not in by_key:
                    continue
                eb = by_key[(d, h, b, w)]
                common += 1
                if ea["status"] == "PASSED" and (eb["status"] != "PASSED" or eb["latency_ms"] / ea["latency_ms"] > p):
                    wins += 1
            if common:
                expected.append((d, h, a, b, common, wins))
    got = run_query(ds, "win_at_p", {"p": p})
    assert sorted(records(got, ["definition", "hardware", "solution_a", "solution_b", "n_common", "wins"])) \
        == sorted(expected)
    assert set(got["p"]) == {p}


def test_language_tradeoffs(ds, facts):
    sc = scores(facts)
    by_lang = defaultdict(list)
    for e in facts["latest"]:
        by_lang[(e["environment"]["hardware"], facts["sol"][e["solution"]]["language"])].append(e)
    best = defaultdict(dict)  # (hardware, definition) -> language -> best geomean
    for (d, h, s), (_, _, gm) in sc.items():
        lang = facts["sol"][s]["language"]
        if gm is not None:
            best[(h, d)][lang] = max(gm, best[(h, d)].get(lang, 0))
    got = {r["language"] + "@" + r["hardware"]: r for r in run_query(ds, "language_tradeoffs").to_dicts()}
    assert len(got) == len(by_lang)
    for (h, lang), evals in by_lang.items():
        r = got[lang + "@" + h]
        status = Counter(e["status"] for e in evals)
        speeds = [e["speedup_factor"] for e in passed(evals)]
        sols = {k: v for k, v in sc.items() if k[1] == h and facts["sol"][k[2]]["language"] == lang}
        denominator = sum(facts["n_wl"][d] for d, _, _ in sols)
        sources = [facts["sol"][s]["sources"][0]["content"] for _, _, s in sols]
        wins = sum(1 for langs in (v for (hh, _), v in best.items() if hh == h) if max(langs, key=langs.get) == lang)
        mine = [v[lang] for (hh, _), v in best.items() if hh == h and lang in v]
        assert r["n_solutions"] == len(sols) and r["n_evaluations"] == len(evals)
        assert r["correctness_rate"] == pytest.approx(status["PASSED"] / len(evals))
        assert r["compile_error_rate"] == pytest.approx(status["COMPILE_ERROR"] / len(evals))
        assert r["runtime_error_rate"] == pytest.approx(status["RUNTIME_ERROR"] / len(evals))
        assert r["incorrect_rate"] == pytest.approx(status["INCORRECT_NUMERICAL"] / len(evals))
        for q, col in ((0.1, "speedup_p10"), (0.5, "speedup_p50"), (0.9, "speedup_p90")):
            assert r[col] == (pytest.approx(quantile(speeds, q)) if speeds else None)
        assert r["fast_1"] == pytest.approx(sum(1 for x in speeds if x > 1) / denominator)
        assert r["definitions_best"] == wins
        assert r["best_geomean_speedup"] == (pytest.approx(geomean(mine)) if mine else None)
        assert r["median_source_bytes"] == pytest.approx(statistics.median(len(s.encode()) for s in sources))
        assert r["median_source_lines"] == pytest.approx(statistics.median(len(s.split("\n")) for s in sources))


def test_best_of_language(ds, facts):
    best = {}
    for (d, h, s), (n_pass, _, gm) in sorted(scores(facts).items(), key=rank_key):
        best.setdefault((d, h, facts["sol"][s]["language"]), s)
    got = run_query(ds, "best_of_language")
    assert {(d, h, l): s for d, h, l, s in records(got, ["definition", "hardware", "language", "solution"])} == best
    leaders = got.filter(pl.col("language_rank") == 1)
    board = run_query(ds, "leaderboard").filter(pl.col("rank") == 1)
    assert sorted(records(leaders, ["definition", "hardware", "solution"])) == \
        sorted(records(board, ["definition", "hardware", "solution"]))


def test_traffic_weighted(ds, facts):
    w = facts["weight"]
    per = defaultdict(lambda: defaultdict(list))  # (d, h) -> workload -> evaluations
    for e in facts["latest"]:
        per[(e["definition"], e["environment"]["hardware"])][e["workload_uuid"]].append(e)
    got = {(r["definition"], r["hardware"]): r for r in run_query(ds, "traffic_weighted").to_dicts()}
    assert set(got) == set(per)
    for key, workloads in per.items():
        reference = sum(w[u] * statistics.median(e["reference_latency_ms"] for e in es) for u, es in workloads.items())
        saved = defaultdict(float)
        oracle = 0.0
        for u, es in workloads.items():
            gains = [e["reference_latency_ms"] - e["latency_ms"] for e in passed(es)]
            oracle += w[u] * max([0.0, *gains])
            for e in es:
                saved[e["solution"]] += w[u] * (e["reference_latency_ms"] - e["latency_ms"]) if e["status"] == "PASSED" else 0.0
        best = min(saved, key=lambda s: (-saved[s], s))
        r = got[key]
        total_weight = sum(x["weight"] for x in qd.tables()["workloads"] if x["definition"] == key[0])
        assert r["best_solution"] == best
        assert r["reference_ms"] == pytest.approx(reference)
        assert r["saved_ms"] == pytest.approx(saved[best])
        assert r["saved_fraction"] == pytest.approx(saved[best] / reference)
        assert r["oracle_saved_ms"] == pytest.approx(oracle) and r["oracle_saved_ms"] >= r["saved_ms"] - 1e-12
        assert r["weight_measured_fraction"] == pytest.approx(sum(w[u] for u in workloads) / total_weight)


def test_roofline_labels_compute_bound_workload(ds, facts):
    got = run_query(ds, "roofline")
    ok = [e for e in facts["latest"] if e["status"] == "PASSED"]
    assert got.height == len(ok)
    compute = {r for r in records(got.filter(pl.col("bound") == "compute"), ["solution", "workload_uuid"])}
    # By construction only attention's last workload does 500 FLOP/byte, above the H100 ridge (~295).
    assert compute == {(e["solution"], e["workload_uuid"]) for e in ok
                       if e["workload_uuid"] == "gqa_paged_decode_h32_kv8_d128_ps1-w3"}
    assert compute
    peak_gbps, peak_tflops = qd.PEAKS[qd.H100]
    h100 = got.filter(pl.col("hardware") == qd.H100)
    assert h100["peak_gbps"].to_list() == pytest.approx([peak_gbps] * h100.height)
    assert h100["ridge_intensity"][0] == pytest.approx(peak_tflops * 1000 / peak_gbps)
    for r in got.to_dicts():
        frac = r["compute_fraction"] if r["bound"] == "compute" else r["bandwidth_fraction"]
        assert r["roofline_fraction"] == pytest.approx(frac)
        assert "batch_size=" in r["axes"]


def test_coverage(ds, rows, facts):
    hardware = {e["environment"]["hardware"] for e in rows["evaluations"]}
    newest_env = {h: max((e for e in rows["evaluations"] if e["environment"]["hardware"] == h),
                         key=lambda e: e["timestamp"])["environment_hash"] for h in hardware}
    stale = {(e["solution"], e["workload_uuid"]) for e in facts["latest"]
             if e["environment_hash"] != newest_env[e["environment"]["hardware"]]}
    evaluated = {(e["workload_uuid"], e["environment"]["hardware"]) for e in rows["evaluations"]}
    never = {(w["uuid"], h) for w in rows["workloads"] for h in hardware if (w["uuid"], h) not in evaluated}
    correct = {(e["definition"], e["environment"]["hardware"]) for e in passed(facts["latest"])}
    no_correct = {(d["name"], h) for d in rows["definitions"] for h in hardware if (d["name"], h) not in correct}
    got = run_query(ds, "coverage")

    def kind(k, cols):
        return set(records(got.filter(pl.col("kind") == k), cols))

    assert stale == {("norm_cuda", "rmsnorm_h4096-w2")}  # the builder leaves exactly this one behind
    assert kind("stale", ["solution", "workload_uuid"]) == stale
    assert "torch 2.12.0" in got.filter(pl.col("kind") == "stale")["detail"][0]
    assert kind("never_evaluated", ["workload_uuid", "hardware"]) == never
    assert kind("no_correct_solution", ["definition", "hardware"]) == no_correct
    assert ("gemm_n4096_k4096", qd.H100) in no_correct


def test_definition_workloads(ds, rows, facts):
    got = run_query(ds, "definition_workloads", {"definition": "rmsnorm_h4096"})
    for r in got.to_dicts():
        es = [e for e in facts["latest"] if e["workload_uuid"] == r["workload_uuid"]
              and e["environment"]["hardware"] == r["hardware"]]
        ok = passed(es)
        assert (r["evaluated"], r["passed"]) == (len(es), len(ok))
        fastest = min(ok, key=lambda e: e["latency_ms"]) if ok else None
        assert r["best_solution"] == (fastest and fastest["solution"])
    assert set(got["workload_uuid"]) == {w["uuid"] for w in rows["workloads"] if w["definition"] == "rmsnorm_h4096"}


# ---- snapshot diff --------------------------------------------------------------------------

def changed_rows(rows):
    """A later snapshot: a solution withdrawn, a workload added, and a slower re-run of one solution."""
    new = {t: list(v) for t, v in rows.items()}
    new["solutions"] = [s for s in new["solutions"] if s["name"] != "attn_torch"]
    new["evaluations"] = [e for e in new["evaluations"] if e["solution"] != "attn_torch"]
    extra = qd.workload(new["definitions"][0], 9, {"batch_size": 4096}, 3)
    new["workloads"].append(extra)
    env = qd.environment(qd.H100, "2.14.0")
    sol = next(s for s in rows["solutions"] if s["name"] == "norm_torch")
    later = max(e["timestamp"] for e in rows["evaluations"]) + timedelta(days=1)
    for j, wl in enumerate(w for w in rows["workloads"] if w["definition"] == "rmsnorm_h4096"):
        status = "RUNTIME_ERROR" if j == 2 else "PASSED"
        speedup = 1.0 if j == 0 else 10.0  # w0 much slower, w1 much faster
        new["evaluations"].append(qd.evaluation(sol, wl, env, "run-later", later + timedelta(minutes=j),
                                                status, 0.01 * (j + 1), speedup, 1e6, 1e6))
    return new


def test_snapshot_diff(rows, tmp_path):
    new_rows = changed_rows(rows)
    old_ds, new_ds = qd.write(tmp_path / "old", rows), qd.write(tmp_path / "new", new_rows)

    def key(table, r):
        if table == "evaluations":
            return "/".join(r[k] for k in KEYS[table])
        return r[KEYS[table][0]]

    expected = set()
    for table in TABLES:
        old_keys = {key(table, r) for r in rows[table]}
        new_keys = {key(table, r) for r in new_rows[table]}
        expected |= {("added", table, k) for k in new_keys - old_keys}
        expected |= {("removed", table, k) for k in old_keys - new_keys}
    old_latest = {(e["solution"], e["workload_uuid"], e["environment"]["hardware"]): e for e in qd.newest(rows["evaluations"])}
    for e in qd.newest(new_rows["evaluations"]):
        k = (e["solution"], e["workload_uuid"], e["environment"]["hardware"])
        o = old_latest.get(k)
        if not o or o["status"] != "PASSED":
            continue
        if e["status"] != "PASSED":
            expected.add(("broken", "evaluations", "/".join(k)))
        elif e["latency_ms"] - o["latency_ms"] > max(o["latency_iqr_ms"], e["latency_iqr_ms"]):
            expected.add(("regression", "evaluations", "/".join(k)))
    got = diff_datasets(old_ds.root, new_ds.root)
    assert set(records(got, ["change", "table_name", "key"])) == expected
    assert {"added", "removed"} <= set(got["change"])
    assert any(c == "regression" for c, *_ in expected) or any(c == "broken" for c, *_ in expected)
    assert diff_datasets(old_ds.root, old_ds.root).height == 0


# ---- the command line -----------------------------------------------------------------------

def run_fib(*args, cwd=None):
    return subprocess.run([*FIB, *args], capture_output=True, text=True, cwd=cwd, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})


def test_cli_query_sql_and_diff(ds, tmp_path, rows):
    out = run_fib("query", "leaderboard", str(ds.root), "--param", f"hardware={qd.H200}", "--format", "csv")
    assert out.returncode == 0, out.stderr
    csv = pl.read_csv(out.stdout.encode())
    assert csv["solution"].to_list() == run_query(ds, "leaderboard", {"hardware": qd.H200})["solution"].to_list()

    parquet = tmp_path / "fast_p.parquet"
    out = run_fib("query", "fast_p", str(ds.root), "--param", "thresholds=1", "--format", "parquet", "--out", str(parquet))
    assert out.returncode == 0, out.stderr
    assert set(pl.read_parquet(parquet)["p"]) == {1.0}

    out = run_fib("sql", "SELECT count(*) AS n FROM latest_evaluations()", str(ds.root), "--format", "json")
    assert out.returncode == 0, out.stderr
    assert f'"n":{len(qd.newest(rows["evaluations"]))}' in out.stdout.replace(" ", "")

    listing = run_fib("query")
    assert listing.returncode == 0 and "leaderboard" in listing.stdout and "thresholds" in listing.stdout
    bad = run_fib("query", "leaderboard", str(ds.root), "--param", "nope=1")
    assert bad.returncode != 0 and "no parameter nope" in bad.stderr

    new_ds = qd.write(tmp_path / "new", changed_rows(rows))
    out = run_fib("diff", str(ds.root), str(new_ds.root))
    assert out.returncode == 0, out.stderr
    assert "removed" in out.stdout and "solutions" in out.stdout and "regressions" in out.stdout
    out = run_fib("diff", str(ds.root), str(new_ds.root), "--format", "csv")
    changes = pl.read_csv(out.stdout.encode())
    assert ("removed", "solutions", "attn_torch") in set(changes.select("change", "table_name", "key").rows())


def test_run_sql_accepts_a_folder(ds):
    assert run_sql(str(ds.root), "SELECT count(*) AS n FROM definitions")["n"][0] == 3


def test_evaluations_listing(ds, facts):
    got = run_query(ds, "evaluations")
    assert sorted(records(got, ["solution", "workload_uuid", "hardware", "run_id"])) == sorted(
        (e["solution"], e["workload_uuid"], e["environment"]["hardware"], e["run_id"]) for e in facts["latest"])
    capped = run_query(ds, "evaluations", {"per_definition": 2})
    assert set(capped.group_by("definition").len()["len"]) == {2}
    assert run_query(ds, "evaluations", {"max_rows": 5}).height == 5
