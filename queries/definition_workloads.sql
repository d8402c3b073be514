-- definition_workloads: each workload of a definition with how it fared on each hardware:
-- evaluated/passed solutions and the fastest passing one.
--
-- Uses the newest evaluation of each (solution, workload, hardware). Workloads never evaluated
-- appear once with hardware NULL.
--
-- Output columns:
--   definition, workload_uuid, axes (e.g. batch_size=64), weight, source_kind, hardware,
--   reference_latency_ms (median over solutions), evaluated, passed,
--   best_solution, best_latency_ms, best_speedup
SET VARIABLE definition = coalesce(getvariable('definition'), NULL::VARCHAR); -- @param only this definition (NULL: all)

WITH ev AS (
    SELECT * FROM latest_evaluations()
    WHERE getvariable('definition') IS NULL OR definition = getvariable('definition')
),
per_hw AS (
    SELECT workload_uuid, hardware,
           median(reference_latency_ms) AS reference_latency_ms,
           count(*) AS evaluated,
           count(*) FILTER (WHERE status = 'PASSED') AS passed,
           arg_min(solution, latency_ms) FILTER (WHERE status = 'PASSED' AND latency_ms > 0) AS best_solution,
           min(latency_ms) FILTER (WHERE status = 'PASSED' AND latency_ms > 0) AS best_latency_ms,
           arg_min(speedup_factor, latency_ms) FILTER (WHERE status = 'PASSED' AND latency_ms > 0) AS best_speedup
    FROM ev GROUP BY ALL
)
SELECT w.definition, w.uuid AS workload_uuid,
       array_to_string(list_transform(w.axes, lambda a: a.name || '=' || a.value), ' ') AS axes,
       w.weight, w.source_kind, p.hardware, p.reference_latency_ms,
       coalesce(p.evaluated, 0) AS evaluated, coalesce(p.passed, 0) AS passed,
       p.best_solution, p.best_latency_ms, p.best_speedup
FROM workloads w LEFT JOIN per_hw p ON p.workload_uuid = w.uuid
WHERE getvariable('definition') IS NULL OR w.definition = getvariable('definition')
ORDER BY w.definition, w.weight DESC, w.uuid, p.hardware;
