-- best_of_language: per definition, hardware and language, the language's best solution (highest
-- geometric-mean speedup over its passed workloads; ties by passed count, then name).
--
-- Uses the newest evaluation of each (solution, workload, hardware).
--
-- Output columns:
--   definition, hardware, language
--   solution, author        the language's best solution
--   geomean_speedup, coverage (passed / all workloads of the definition)
--   language_rank           1 = this language has the definition's fastest solution
SET VARIABLE definition = coalesce(getvariable('definition'), NULL::VARCHAR); -- @param only this definition (NULL: all)
SET VARIABLE hardware = coalesce(getvariable('hardware'), NULL::VARCHAR); -- @param only this hardware (NULL: all)

WITH best AS (
    SELECT sc.definition, sc.hardware, s.language, sc.solution, s.author, sc.geomean_speedup,
           sc.passed / nullif(sc.n_workloads, 0) AS coverage
    FROM solution_scores() sc LEFT JOIN solutions s ON s.name = sc.solution
    WHERE (getvariable('definition') IS NULL OR sc.definition = getvariable('definition'))
      AND (getvariable('hardware') IS NULL OR sc.hardware = getvariable('hardware'))
    QUALIFY row_number() OVER (PARTITION BY sc.definition, sc.hardware, s.language
                               ORDER BY sc.geomean_speedup DESC NULLS LAST, sc.passed DESC, sc.solution) = 1
)
SELECT *, row_number() OVER (PARTITION BY definition, hardware
                             ORDER BY geomean_speedup DESC NULLS LAST, coverage DESC, solution) AS language_rank
FROM best
ORDER BY definition, hardware, language_rank;
