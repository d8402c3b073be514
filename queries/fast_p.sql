-- fast_p: share of workloads where a solution is correct and more than p times faster than the
-- reference, for each threshold p; per solution, and pooled per language and per author.
--
-- Denominator: all workloads of the definition (KernelBench / flashinfer-bench convention), so a
-- workload that was never evaluated or failed counts against the solution; fast_0 is the
-- correctness rate over all workloads. Pooled levels add numerators and denominators over every
-- (solution, workload) of the group, as the flashinfer-bench web app does for authors.
-- Counts use the newest evaluation of each (solution, workload, hardware).
--
-- Output columns:
--   level        'solution', 'language' or 'author'
--   definition   the definition (NULL for the pooled levels: all definitions in the selection)
--   hardware
--   name         solution name, language or author
--   p            threshold
--   n_fast       (solution, workload) pairs correct with speedup_factor > p
--   n_total      (solution, workload) pairs in the denominator
--   fast_p       n_fast / n_total
SET VARIABLE thresholds = coalesce(getvariable('thresholds'), [0, 0.5, 1, 1.5, 2, 3]::DOUBLE[]); -- @param speedup thresholds p
SET VARIABLE definition = coalesce(getvariable('definition'), NULL::VARCHAR); -- @param only this definition (NULL: all)
SET VARIABLE hardware = coalesce(getvariable('hardware'), NULL::VARCHAR); -- @param only this hardware (NULL: all)

WITH per_solution AS (
    SELECT sc.definition, sc.hardware, sc.solution, s.language, s.author, t.p,
           len(list_filter(coalesce(sc.speedups, []), lambda x: x > t.p)) AS n_fast,
           sc.n_workloads AS n_total
    FROM solution_scores() sc
    CROSS JOIN (SELECT unnest(getvariable('thresholds')) AS p) t
    LEFT JOIN solutions s ON s.name = sc.solution
    WHERE (getvariable('definition') IS NULL OR sc.definition = getvariable('definition'))
      AND (getvariable('hardware') IS NULL OR sc.hardware = getvariable('hardware'))
),
levels AS (
    SELECT 'solution' AS level, definition, hardware, solution AS name, p, n_fast, n_total FROM per_solution
    UNION ALL
    SELECT 'language', NULL, hardware, language, p, sum(n_fast), sum(n_total) FROM per_solution GROUP BY ALL
    UNION ALL
    SELECT 'author', NULL, hardware, author, p, sum(n_fast), sum(n_total) FROM per_solution GROUP BY ALL
)
SELECT level, definition, hardware, name, p, n_fast::BIGINT AS n_fast, n_total::BIGINT AS n_total,
       n_fast / nullif(n_total, 0) AS fast_p
FROM levels
ORDER BY level, definition NULLS FIRST, hardware, name, p;
