-- win_at_p: pairwise win rate of solution A over solution B at margin p (flashinfer-bench's win@p
-- idea, per pair of solutions instead of per author against a baseline).
--
-- Over the workloads both solutions were evaluated on (same definition and hardware), A wins a
-- workload when A passed and either B did not pass or latency_B / latency_A > p. With p = 1 that
-- is "A is correct and strictly faster". Both directions of each pair are listed.
-- Uses the newest evaluation of each (solution, workload, hardware).
--
-- Output columns:
--   definition, hardware, solution_a, solution_b, p
--   n_common   workloads evaluated for both
--   wins       workloads A wins
--   win_rate   wins / n_common
SET VARIABLE p = coalesce(getvariable('p'), 1.0::DOUBLE); -- @param margin: A's latency must beat B's by this factor
SET VARIABLE definition = coalesce(getvariable('definition'), NULL::VARCHAR); -- @param only this definition (NULL: all)
SET VARIABLE hardware = coalesce(getvariable('hardware'), NULL::VARCHAR); -- @param only this hardware (NULL: all)

WITH ev AS (
    SELECT definition, hardware, solution, workload_uuid,
           status = 'PASSED' AND latency_ms > 0 AS ok, latency_ms
    FROM latest_evaluations()
    WHERE (getvariable('definition') IS NULL OR definition = getvariable('definition'))
      AND (getvariable('hardware') IS NULL OR hardware = getvariable('hardware'))
)
SELECT a.definition, a.hardware, a.solution AS solution_a, b.solution AS solution_b,
       getvariable('p') AS p,
       count(*) AS n_common,
       count(*) FILTER (WHERE a.ok AND (NOT b.ok OR b.latency_ms / a.latency_ms > getvariable('p'))) AS wins,
       wins / n_common AS win_rate
FROM ev a
JOIN ev b ON a.definition = b.definition AND a.hardware = b.hardware
         AND a.workload_uuid = b.workload_uuid AND a.solution <> b.solution
GROUP BY a.definition, a.hardware, a.solution, b.solution
ORDER BY a.definition, a.hardware, solution_a, solution_b;
