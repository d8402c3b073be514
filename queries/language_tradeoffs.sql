-- language_tradeoffs: per hardware and language (python, triton, cuda, ...), how often solutions
-- compile, run and pass, how fast the passing ones are, and how big their sources are; the
-- comparison the FlashInfer-Bench paper draws across languages and agents.
--
-- Uses the newest evaluation of each (solution, workload, hardware).
--
-- Output columns:
--   hardware, language
--   n_solutions, n_definitions, n_evaluations
--   correctness_rate, compile_error_rate, runtime_error_rate, timeout_rate, incorrect_rate
--                          shares of the evaluations (incorrect = INCORRECT_SHAPE/DTYPE/NUMERICAL)
--   speedup_p10, speedup_p50, speedup_p90
--                          quantiles (linear interpolation) of speedup_factor over PASSED evaluations
--   fast_1                 correct and > 1x faster, over all (solution, workload of its definition)
--   definitions_best       definitions where this language holds the top geomean speedup
--   best_geomean_speedup   geometric mean over definitions of the language's best solution's
--                          geomean speedup (best-of-language)
--   median_source_bytes, median_source_lines   over the language's solutions
SET VARIABLE hardware = coalesce(getvariable('hardware'), NULL::VARCHAR); -- @param only this hardware (NULL: all)

WITH scores AS MATERIALIZED (
    SELECT sc.*, s.language FROM solution_scores() sc LEFT JOIN solutions s ON s.name = sc.solution
    WHERE getvariable('hardware') IS NULL OR sc.hardware = getvariable('hardware')
),
rates AS (
    SELECT hardware, language,
           count(*) AS n_solutions,
           count(DISTINCT definition) AS n_definitions,
           sum(evaluated) AS n_evaluations,
           sum(passed) / sum(evaluated) AS correctness_rate,
           sum(compile_errors) / sum(evaluated) AS compile_error_rate,
           sum(runtime_errors) / sum(evaluated) AS runtime_error_rate,
           sum(timeouts) / sum(evaluated) AS timeout_rate,
           sum(incorrect) / sum(evaluated) AS incorrect_rate,
           sum(len(list_filter(coalesce(speedups, []), lambda x: x > 1))) / nullif(sum(n_workloads), 0) AS fast_1
    FROM scores GROUP BY ALL
),
quantiles AS (
    SELECT hardware, language, quantile_cont(x, [0.1, 0.5, 0.9]) AS q
    FROM (SELECT hardware, language, unnest(speedups) AS x FROM scores) GROUP BY ALL
),
best_of_language AS (
    SELECT hardware, language, definition, max(geomean_speedup) AS best FROM scores GROUP BY ALL
),
winners AS (
    SELECT hardware, definition, arg_max(language, best) AS language
    FROM best_of_language WHERE best IS NOT NULL GROUP BY ALL
),
sizes AS (
    SELECT sc.hardware, s.language,
           median(list_sum(list_transform(s.sources, lambda f: strlen(f.content)))) AS median_source_bytes,
           median(list_sum(list_transform(s.sources, lambda f: len(string_split(f.content, chr(10))))))
               AS median_source_lines
    FROM (SELECT DISTINCT hardware, solution FROM scores) sc JOIN solutions s ON s.name = sc.solution
    GROUP BY ALL
)
SELECT r.hardware, r.language, r.n_solutions, r.n_definitions, r.n_evaluations,
       r.correctness_rate, r.compile_error_rate, r.runtime_error_rate, r.timeout_rate, r.incorrect_rate,
       q.q[1] AS speedup_p10, q.q[2] AS speedup_p50, q.q[3] AS speedup_p90, r.fast_1,
       (SELECT count(*) FROM winners w WHERE w.hardware = r.hardware AND w.language IS NOT DISTINCT FROM r.language)
           AS definitions_best,
       (SELECT exp(avg(ln(b.best))) FROM best_of_language b
        WHERE b.hardware = r.hardware AND b.language IS NOT DISTINCT FROM r.language AND b.best > 0)
           AS best_geomean_speedup,
       z.median_source_bytes, z.median_source_lines
FROM rates r
LEFT JOIN quantiles q ON q.hardware = r.hardware AND q.language IS NOT DISTINCT FROM r.language
LEFT JOIN sizes z ON z.hardware = r.hardware AND z.language IS NOT DISTINCT FROM r.language
ORDER BY r.hardware, r.language;
