-- evaluations: the evaluations that count (newest per solution, workload and hardware), flattened
-- for listing, fastest first within each workload.
--
-- Output columns:
--   definition, hardware, workload_uuid, axes, solution, status, latency_ms,
--   reference_latency_ms, speedup_factor, latency_iqr_ms, achieved_gbps, bandwidth_fraction,
--   run_id, timestamp, torch (version), flags
SET VARIABLE definition = coalesce(getvariable('definition'), NULL::VARCHAR); -- @param only this definition (NULL: all)
SET VARIABLE hardware = coalesce(getvariable('hardware'), NULL::VARCHAR); -- @param only this hardware (NULL: all)
SET VARIABLE max_rows = coalesce(getvariable('max_rows'), 100000::BIGINT); -- @param return at most this many rows
SET VARIABLE per_definition = coalesce(getvariable('per_definition'), NULL::BIGINT); -- @param at most this many rows per definition (NULL: no cap)

SELECT e.definition, e.hardware, e.workload_uuid,
       array_to_string(list_transform(w.axes, lambda a: a.name || '=' || a.value), ' ') AS axes,
       e.solution, e.status, e.latency_ms, e.reference_latency_ms, e.speedup_factor, e.latency_iqr_ms,
       e.achieved_gbps, e.bandwidth_fraction, e.run_id, e.timestamp, e.environment.torch AS torch,
       array_to_string(e.flags, ',') AS flags
FROM latest_evaluations() e
LEFT JOIN workloads w ON w.uuid = e.workload_uuid
WHERE (getvariable('definition') IS NULL OR e.definition = getvariable('definition'))
  AND (getvariable('hardware') IS NULL OR e.hardware = getvariable('hardware'))
QUALIFY getvariable('per_definition') IS NULL
     OR row_number() OVER (PARTITION BY e.definition
                           ORDER BY e.hardware, e.workload_uuid, e.status <> 'PASSED', e.latency_ms, e.solution)
        <= getvariable('per_definition')
ORDER BY e.definition, e.hardware, e.workload_uuid, e.status <> 'PASSED', e.latency_ms, e.solution
LIMIT getvariable('max_rows');
