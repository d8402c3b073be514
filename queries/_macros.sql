-- Table macros shared by the queries. fib_data.query runs this file on every connection; in the
-- DuckDB shell, `.read` it after _views.sql.

-- Several evaluations of the same (solution, workload, hardware): only the newest (by timestamp)
-- counts, so a re-run replaces an old measurement instead of being averaged with it. `tbl` names the
-- evaluations table ('old.evaluations' for an attached snapshot).
CREATE OR REPLACE MACRO latest_evaluations(tbl := 'evaluations') AS TABLE
    -- Fast path: grouping 1M rows on a 64-bit hash is several times cheaper than a window over
    -- three strings, and most keys occur once. Keys whose hash occurs more than once (a re-run,
    -- or a hash collision) go through the exact window on the real key columns.
    WITH h AS NOT MATERIALIZED (
        SELECT e.*, e.environment.hardware AS hardware,
               hash(e.solution, e.workload_uuid, e.environment.hardware) AS key_hash__
        FROM query_table(tbl) e
    ),
    repeated AS (SELECT key_hash__ FROM h GROUP BY key_hash__ HAVING count(*) > 1)
    SELECT * EXCLUDE (key_hash__) FROM h ANTI JOIN repeated USING (key_hash__)
    UNION ALL
    SELECT * EXCLUDE (key_hash__) FROM (SELECT * FROM h SEMI JOIN repeated USING (key_hash__))
    QUALIFY row_number() OVER (PARTITION BY solution, workload_uuid, hardware ORDER BY timestamp DESC) = 1;

-- Per definition, hardware and solution: workloads evaluated, passed and failed by kind, passed
-- ones the executor flagged for review, the geometric-mean speedup over the passed ones and their
-- speedups as a list (for fast_p and quantiles without a second pass over the evaluations). n_workloads counts all of the
-- definition's workloads. (Tables are named through query_table so that the macro can be created
-- before they exist.)
CREATE OR REPLACE MACRO solution_scores(evaluations_tbl := 'evaluations', workloads_tbl := 'workloads') AS TABLE
    WITH wl AS (SELECT definition, count(*) AS n_workloads FROM query_table(workloads_tbl) GROUP BY definition),
    ok AS (
        SELECT e.definition, e.hardware, e.solution, e.status,
               CASE WHEN e.status = 'PASSED' AND e.speedup_factor > 0 THEN e.speedup_factor END AS speedup,
               -- the executor's review flags: a speedup too large to trust, or work that ran
               -- outside the timed stream (its latency then comes from the device-wide marker)
               list_has_any(coalesce(e.flags, []), ['implausible_speedup', 'wall_clock_gap']) AS review
        FROM latest_evaluations(tbl := evaluations_tbl) e
    )
    SELECT e.definition, e.hardware, e.solution,
           count(*) AS evaluated,
           count(*) FILTER (WHERE e.status = 'PASSED') AS passed,
           count(*) FILTER (WHERE e.status = 'COMPILE_ERROR') AS compile_errors,
           count(*) FILTER (WHERE e.status = 'RUNTIME_ERROR') AS runtime_errors,
           count(*) FILTER (WHERE e.status = 'TIMEOUT') AS timeouts,
           count(*) FILTER (WHERE e.status LIKE 'INCORRECT_%') AS incorrect,
           count(*) FILTER (WHERE e.status = 'PASSED' AND e.review) AS flagged,
           exp(avg(ln(e.speedup))) AS geomean_speedup,
           list(e.speedup) FILTER (WHERE e.speedup IS NOT NULL) AS speedups,
           coalesce(any_value(wl.n_workloads), 0) AS n_workloads
    FROM ok e LEFT JOIN wl ON wl.definition = e.definition
    GROUP BY e.definition, e.hardware, e.solution;

-- The library versions of an environment struct, for messages.
CREATE OR REPLACE MACRO env_versions(env) AS
    format('torch {} triton {} flashinfer {} cuda {}', env.torch, env.triton, env.flashinfer, env.cuda);
