-- leaderboard: per definition and hardware, solutions ranked by geometric-mean speedup over the
-- workloads where they are correct.
--
-- Counts use the newest evaluation of each (solution, workload, hardware).
-- Ties in speedup are broken by coverage, then by name. Solutions with no passing workload
-- rank last (geomean_speedup is NULL).
--
-- Output columns:
--   definition, hardware   the group being ranked
--   rank                   1 = fastest
--   solution, author, language
--   geomean_speedup        exp(mean(ln(speedup_factor))) over PASSED workloads
--   coverage               passed / all workloads of the definition
--   correctness_rate       passed / evaluated
--   passed, evaluated, n_workloads
--   flagged                passed workloads whose evaluation carries a review flag
--                          (implausible_speedup, wall_clock_gap): look before trusting the rank
SET VARIABLE definition = coalesce(getvariable('definition'), NULL::VARCHAR); -- @param only this definition (NULL: all)
SET VARIABLE hardware = coalesce(getvariable('hardware'), NULL::VARCHAR); -- @param only this hardware (NULL: all)
SET VARIABLE min_coverage = coalesce(getvariable('min_coverage'), 0.0::DOUBLE); -- @param drop solutions with coverage below this

SELECT s.definition, s.hardware,
       row_number() OVER (PARTITION BY s.definition, s.hardware
                          ORDER BY s.geomean_speedup DESC NULLS LAST,
                                   s.passed DESC, s.solution) AS rank,
       s.solution, sol.author, sol.language, s.geomean_speedup,
       s.passed / nullif(s.n_workloads, 0) AS coverage,
       s.passed / s.evaluated AS correctness_rate,
       s.passed, s.evaluated, s.n_workloads, s.flagged
FROM solution_scores() s
LEFT JOIN solutions sol ON sol.name = s.solution
WHERE (getvariable('definition') IS NULL OR s.definition = getvariable('definition'))
  AND (getvariable('hardware') IS NULL OR s.hardware = getvariable('hardware'))
  AND coalesce(s.passed / nullif(s.n_workloads, 0), 0) >= getvariable('min_coverage')
ORDER BY s.definition, s.hardware, rank;
