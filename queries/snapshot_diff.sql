-- snapshot_diff: what changed between two snapshots of a dataset, attached side by side as
-- schemas `old` and `new` (fib_data.sql.attach(con, ds, schema='old'), or `fib diff A B`).
-- In the DuckDB shell, create the views old.<table> / new.<table> as in queries/README.md.
--
--   added / removed  rows whose key (definitions.name, workloads.uuid, solutions.name,
--                    evaluations solution_hash/workload_uuid/environment_hash) is only in new / old
--   regression       same solution, workload and hardware, both newest evaluations passed, and the
--                    new median latency exceeds the old by more than the larger of the two IQRs
--   broken           passed in old, newest evaluation in new did not pass
--
-- Output columns:
--   change, table_name, key, definition, solution, workload_uuid, hardware,
--   old_latency_ms, new_latency_ms, spread_ms (the IQR used), old_status, new_status
SET VARIABLE min_ratio = coalesce(getvariable('min_ratio'), 1.0::DOUBLE); -- @param also require new/old latency above this ratio

WITH keyed AS (
    SELECT 'old' AS side, 'definitions' AS table_name, name AS key, name AS definition,
           NULL AS solution, NULL AS workload_uuid, NULL AS hardware FROM old.definitions
    UNION ALL SELECT 'new', 'definitions', name, name, NULL, NULL, NULL FROM new.definitions
    UNION ALL SELECT 'old', 'workloads', uuid, definition, NULL, uuid, NULL FROM old.workloads
    UNION ALL SELECT 'new', 'workloads', uuid, definition, NULL, uuid, NULL FROM new.workloads
    UNION ALL SELECT 'old', 'solutions', name, definition, name, NULL, NULL FROM old.solutions
    UNION ALL SELECT 'new', 'solutions', name, definition, name, NULL, NULL FROM new.solutions
    UNION ALL SELECT 'old', 'evaluations', concat_ws('/', solution_hash, workload_uuid, environment_hash),
                     definition, solution, workload_uuid, environment.hardware FROM old.evaluations
    UNION ALL SELECT 'new', 'evaluations', concat_ws('/', solution_hash, workload_uuid, environment_hash),
                     definition, solution, workload_uuid, environment.hardware FROM new.evaluations
),
sides AS (
    SELECT table_name, key, any_value(definition) AS definition, any_value(solution) AS solution,
           any_value(workload_uuid) AS workload_uuid, any_value(hardware) AS hardware,
           bool_or(side = 'old') AS in_old, bool_or(side = 'new') AS in_new
    FROM keyed GROUP BY table_name, key
),
pairs AS (
    SELECT o.definition, o.solution, o.workload_uuid, o.hardware,
           o.status AS old_status, n.status AS new_status,
           o.latency_ms AS old_latency_ms, n.latency_ms AS new_latency_ms,
           greatest(coalesce(o.latency_iqr_ms, 0), coalesce(n.latency_iqr_ms, 0)) AS spread_ms
    FROM latest_evaluations(tbl := 'old.evaluations') o
    JOIN latest_evaluations(tbl := 'new.evaluations') n
      ON n.solution = o.solution AND n.workload_uuid = o.workload_uuid AND n.hardware = o.hardware
    WHERE o.status = 'PASSED'
)
SELECT CASE WHEN in_new THEN 'added' ELSE 'removed' END AS change, table_name, key,
       definition, solution, workload_uuid, hardware,
       NULL::DOUBLE AS old_latency_ms, NULL::DOUBLE AS new_latency_ms, NULL::DOUBLE AS spread_ms,
       NULL::VARCHAR AS old_status, NULL::VARCHAR AS new_status
FROM sides WHERE in_old <> in_new
UNION ALL
SELECT CASE WHEN new_status = 'PASSED' THEN 'regression' ELSE 'broken' END, 'evaluations',
       concat_ws('/', solution, workload_uuid, hardware),
       definition, solution, workload_uuid, hardware, old_latency_ms, new_latency_ms, spread_ms,
       old_status, new_status
FROM pairs
WHERE new_status <> 'PASSED'
   OR (new_latency_ms - old_latency_ms > spread_ms AND new_latency_ms > old_latency_ms * getvariable('min_ratio'))
ORDER BY change, table_name, key;
