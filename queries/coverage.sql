-- coverage: what is missing or out of date.
--
--   no_correct_solution  a definition with no passing evaluation on a hardware seen in the data
--                        (hardware NULL when no evaluation exists at all)
--   never_evaluated      a workload with no evaluation on that hardware (any solution)
--   stale                an evaluation (newest for its solution, workload, hardware) made in an
--                        environment other than that of the newest run on the same hardware;
--                        detail names both environments' torch/triton/flashinfer/cuda versions
--
-- Output columns: kind, definition, hardware, workload_uuid, solution, detail
SET VARIABLE hardware = coalesce(getvariable('hardware'), NULL::VARCHAR); -- @param only this hardware (NULL: all)

WITH ev AS (
    SELECT * FROM latest_evaluations()
    WHERE getvariable('hardware') IS NULL OR hardware = getvariable('hardware')
),
hw AS (
    SELECT DISTINCT environment.hardware AS hardware FROM evaluations
    WHERE getvariable('hardware') IS NULL OR environment.hardware = getvariable('hardware')
),
newest_run AS (
    SELECT environment.hardware AS hardware, arg_max(environment_hash, timestamp) AS environment_hash,
           arg_max(environment, timestamp) AS environment
    FROM evaluations GROUP BY ALL
)
SELECT 'no_correct_solution' AS kind, d.name AS definition, hw.hardware,
       NULL::VARCHAR AS workload_uuid, NULL::VARCHAR AS solution,
       (SELECT count(*) FROM ev WHERE ev.definition = d.name AND ev.hardware IS NOT DISTINCT FROM hw.hardware)
           || ' newest evaluations, none passed' AS detail
FROM definitions d LEFT JOIN hw ON true
WHERE NOT EXISTS (SELECT 1 FROM ev WHERE ev.definition = d.name AND ev.hardware IS NOT DISTINCT FROM hw.hardware
                  AND ev.status = 'PASSED')
UNION ALL
SELECT 'never_evaluated', w.definition, hw.hardware, w.uuid, NULL, 'weight ' || w.weight
FROM workloads w LEFT JOIN hw ON true
WHERE NOT EXISTS (SELECT 1 FROM ev WHERE ev.workload_uuid = w.uuid AND ev.hardware IS NOT DISTINCT FROM hw.hardware)
UNION ALL
SELECT 'stale', ev.definition, ev.hardware, ev.workload_uuid, ev.solution,
       format('run {} on {}; newest run on this hardware: {}', ev.run_id,
              env_versions(ev.environment), env_versions(n.environment))
FROM ev JOIN newest_run n ON n.hardware = ev.hardware
WHERE ev.environment_hash <> n.environment_hash
ORDER BY kind, definition, hardware, workload_uuid, solution;
