-- roofline: achieved bandwidth and FLOP/s of each passing evaluation as a fraction of the
-- device's peak, with a memory-bound / compute-bound label from the workload's arithmetic
-- intensity.
--
-- The executor records achieved_gbps, achieved_tflops and their fractions of the device's peak;
-- the peaks are recovered as achieved / fraction. Arithmetic intensity (FLOP per byte) =
-- achieved_tflops * 1000 / achieved_gbps, which depends on the workload only; the ridge point is
-- peak_tflops * 1000 / peak_gbps. Below the ridge the workload is memory-bound.
-- Uses the newest evaluation of each (solution, workload, hardware).
--
-- Output columns:
--   definition, hardware, solution, workload_uuid
--   axes                 the workload's var axes, e.g. batch_size=64 num_kv_indices=4096
--   weight, latency_ms, achieved_gbps, achieved_tflops, bandwidth_fraction, compute_fraction
--   arithmetic_intensity FLOP / byte
--   peak_gbps, peak_tflops, ridge_intensity
--   bound                'memory' or 'compute' (NULL when the peaks are unknown)
--   roofline_fraction    the fraction of the bound resource's peak that was achieved
SET VARIABLE definition = coalesce(getvariable('definition'), NULL::VARCHAR); -- @param only this definition (NULL: all)
SET VARIABLE hardware = coalesce(getvariable('hardware'), NULL::VARCHAR); -- @param only this hardware (NULL: all)
SET VARIABLE solution = coalesce(getvariable('solution'), NULL::VARCHAR); -- @param only this solution (NULL: all)

SELECT e.definition, e.hardware, e.solution, e.workload_uuid,
       array_to_string(list_transform(w.axes, lambda a: a.name || '=' || a.value), ' ') AS axes,
       w.weight, e.latency_ms, e.achieved_gbps, e.achieved_tflops, e.bandwidth_fraction, e.compute_fraction,
       e.achieved_tflops * 1000 / nullif(e.achieved_gbps, 0) AS arithmetic_intensity,
       e.achieved_gbps / nullif(e.bandwidth_fraction, 0) AS peak_gbps,
       e.achieved_tflops / nullif(e.compute_fraction, 0) AS peak_tflops,
       peak_tflops * 1000 / nullif(peak_gbps, 0) AS ridge_intensity,
       CASE WHEN arithmetic_intensity IS NULL OR ridge_intensity IS NULL THEN NULL
            WHEN arithmetic_intensity < ridge_intensity THEN 'memory' ELSE 'compute' END AS bound,
       CASE bound WHEN 'memory' THEN e.bandwidth_fraction WHEN 'compute' THEN e.compute_fraction END
           AS roofline_fraction
FROM latest_evaluations() e
LEFT JOIN workloads w ON w.uuid = e.workload_uuid
WHERE e.status = 'PASSED' AND e.latency_ms > 0
  AND (getvariable('definition') IS NULL OR e.definition = getvariable('definition'))
  AND (getvariable('hardware') IS NULL OR e.hardware = getvariable('hardware'))
  AND (getvariable('solution') IS NULL OR e.solution = getvariable('solution'))
ORDER BY e.definition, e.hardware, e.solution, e.workload_uuid;
