-- summary: one line per trace with the headline numbers of the other analyses.
-- @requires lib/caps lib/gpu_activity lib/idle lib/runtime lib/trace_window
--
-- Run it with `tracekit report` (or tracekit.report.run): that loads the modules on its @requires line first and sets
-- every getvariable() parameter to its default (its @param line; docs/queries.md).
--
-- Inputs: events; gpu_activity, runtime_calls, trace_window, idle_device_busy, caps (queries/lib/); step_pattern as in
-- steps.sql.
--
-- Output columns:
--   trace, source          which capture, kineto | nsys
--   events                 rows in the trace
--   window_ns              trace window (earliest start to latest end, metadata excluded)
--   gpu_ops, gpu_op_ns     GPU ops and their summed duration
--   gpu_busy_ns            union of GPU op intervals per device, summed over devices
--   devices                GPU devices with ops
--   window_busy_share      gpu_busy_ns / (window_ns * devices): busy share of the whole TRACE WINDOW,
--                          not of a step (a step's is headline's 'GPU busy / end to end')
--   launches               kernel and graph launch calls (api_classes launch, graph_launch)
--   sync_calls, sync_ns    blocking sync calls and their summed duration (NULL: no sync captured)
--   (launches is NULL when the trace has no runtime rows)
--   steps                  step ranges matching the step pattern (all, nested included)
--   ranges                 range rows
--
-- How to read: the entry point; details are in the per-analysis tables.

-- @output summary
-- @column trace             TEXT      the trace (input file name) the row is about
-- @column source            TEXT      which capture: kineto | nsys
-- @column events            COUNT     rows in the trace
-- @column window_ns         DURATION  trace window (earliest start to latest end, metadata excluded)
-- @column gpu_ops           COUNT     GPU ops (kernels, memcpys, memsets)
-- @column gpu_op_ns         DURATION  their summed duration
-- @column gpu_busy_ns       DURATION  union of GPU op intervals per device, summed over devices
-- @column devices           COUNT     GPU devices with ops
-- @column window_busy_share SHARE     gpu_busy_ns / (window_ns * devices): busy share of the whole TRACE
--                                     WINDOW, not of a step (a step's is headline's 'GPU busy / end to end')
-- @column launches          COUNT     kernel and graph launch calls (api_classes launch, graph_launch)
-- @column sync_calls        COUNT     blocking sync calls (NULL: no sync captured)
-- @column sync_ns           DURATION  their summed duration (NULL: no sync captured)
-- @column steps             COUNT     step ranges matching the step pattern (all, nested included)
-- @column ranges            COUNT     range rows
WITH _busy AS (
    SELECT trace, sum(busy_ns) AS gpu_busy_ns, count(*) AS devices FROM idle_device_busy GROUP BY trace
), _gpu_totals AS (SELECT trace, count(*) AS gpu_ops, sum(dur_ns) AS gpu_op_ns FROM gpu_activity GROUP BY trace
), _runtime_totals AS (SELECT trace, count(*) FILTER (WHERE api_class IN ('launch', 'graph_launch')) AS launches,
                 count(*) FILTER (WHERE blocking) AS sync_calls,
                 sum(dur_ns) FILTER (WHERE blocking) AS sync_ns FROM runtime_calls GROUP BY trace
), _event_totals AS (SELECT trace, any_value(source) AS source, count(*) AS events,
                 count(*) FILTER (WHERE kind = 'range') AS ranges,
                 -- CASE, not FILTER: DuckDB evaluates a FILTER's whole condition on every row, so the regex ran
                 -- on all 419k events of a large trace (82 ms), not on its 23 ranges
                 count(CASE WHEN kind = 'range' AND regexp_full_match(name, getvariable('step_pattern')) THEN 1 END)
                     AS steps
          FROM events GROUP BY trace)
SELECT e.trace, e.source, e.events, w.window_ns, coalesce(g.gpu_ops, 0) AS gpu_ops,
       coalesce(g.gpu_op_ns, 0)::BIGINT AS gpu_op_ns,
       b.gpu_busy_ns::BIGINT AS gpu_busy_ns, coalesce(b.devices, 0) AS devices,
       b.gpu_busy_ns / nullif(w.window_ns * b.devices, 0) AS window_busy_share,
       CASE WHEN k.has_runtime THEN coalesce(r.launches, 0) END AS launches,
       CASE WHEN k.has_sync THEN coalesce(r.sync_calls, 0) END AS sync_calls,
       CASE WHEN k.has_sync THEN coalesce(r.sync_ns, 0)::BIGINT END AS sync_ns,
       e.steps, e.ranges
FROM _event_totals e JOIN trace_window w USING (trace) JOIN caps k USING (trace)
LEFT JOIN _gpu_totals g USING (trace) LEFT JOIN _busy b USING (trace) LEFT JOIN _runtime_totals r USING (trace)
ORDER BY e.trace;
