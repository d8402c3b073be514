-- traffic_weighted: expected kernel time saved per definition and hardware when its best
-- solution replaces the reference, weighting each workload by how often it was observed (weight).
--
-- Time per workload comes from the newest evaluation of each (solution, workload, hardware):
-- saved = weight * (reference_latency_ms - latency_ms) where the solution passed; where it failed
-- or was not evaluated the reference keeps running and nothing is saved. The best solution is the
-- one saving the most (which may still be negative if every solution is slower). The oracle
-- column picks, per workload, the fastest passing solution or the reference, as a dispatcher
-- such as `fib apply` would.
--
-- Output columns:
--   definition, hardware
--   best_solution           solution with the largest weighted saving
--   reference_ms            sum over measured workloads of weight * median reference latency
--   saved_ms                sum of weight * (reference - solution latency) for best_solution
--   saved_fraction          saved_ms / reference_ms
--   saved_ms_per_call       saved_ms / weight of the measured workloads
--   oracle_saved_ms, oracle_saved_fraction
--   workloads_measured      workloads with a reference latency on this hardware
--   weight_measured_fraction  their share of the definition's total weight
SET VARIABLE definition = coalesce(getvariable('definition'), NULL::VARCHAR); -- @param only this definition (NULL: all)
SET VARIABLE hardware = coalesce(getvariable('hardware'), NULL::VARCHAR); -- @param only this hardware (NULL: all)

WITH ev AS (
    SELECT e.definition, e.hardware, e.solution, e.workload_uuid, w.weight, e.reference_latency_ms,
           CASE WHEN e.status = 'PASSED' AND e.latency_ms > 0 AND e.reference_latency_ms > 0
                THEN e.reference_latency_ms - e.latency_ms END AS saved_per_call
    FROM latest_evaluations() e JOIN workloads w ON w.uuid = e.workload_uuid
    WHERE (getvariable('definition') IS NULL OR e.definition = getvariable('definition'))
      AND (getvariable('hardware') IS NULL OR e.hardware = getvariable('hardware'))
),
per_workload AS (
    SELECT definition, hardware, workload_uuid, any_value(weight) AS weight,
           median(reference_latency_ms) FILTER (WHERE reference_latency_ms > 0) AS reference_ms,
           greatest(coalesce(max(saved_per_call), 0), 0) AS oracle_saved_per_call
    FROM ev GROUP BY ALL
),
totals AS (
    SELECT definition, hardware,
           sum(weight * reference_ms) AS reference_ms,
           sum(weight * oracle_saved_per_call) AS oracle_saved_ms,
           count(reference_ms) AS workloads_measured,
           sum(weight) FILTER (WHERE reference_ms IS NOT NULL) AS weight_measured
    FROM per_workload GROUP BY ALL
),
best AS (
    SELECT definition, hardware, solution AS best_solution,
           coalesce(sum(weight * saved_per_call), 0) AS saved_ms
    FROM ev GROUP BY definition, hardware, solution
    QUALIFY row_number() OVER (PARTITION BY definition, hardware ORDER BY saved_ms DESC, solution) = 1
),
definition_weight AS (SELECT definition, sum(weight) AS total_weight FROM workloads GROUP BY definition)
SELECT t.definition, t.hardware, b.best_solution, t.reference_ms, b.saved_ms,
       b.saved_ms / nullif(t.reference_ms, 0) AS saved_fraction,
       b.saved_ms / nullif(t.weight_measured, 0) AS saved_ms_per_call,
       t.oracle_saved_ms, t.oracle_saved_ms / nullif(t.reference_ms, 0) AS oracle_saved_fraction,
       t.workloads_measured, t.weight_measured / nullif(dw.total_weight, 0) AS weight_measured_fraction
FROM totals t
JOIN best b USING (definition, hardware)
LEFT JOIN definition_weight dw USING (definition)
ORDER BY t.definition, t.hardware;
