-- lib/caps: per trace, what was captured (caps), so that analyses say NULL with a reason, not 0.
-- @requires lib/trace_window lib/gpu_activity lib/runtime
--
-- Public (temp table):
--   caps    per trace, what was captured: has_runtime (any runtime rows), has_sync (any sync API
--            call or gpu_sync row), has_gpu (any GPU op), capture_activities (what `tracekit capture` recorded,
--            e.g. 'CPU,CUDA'; NULL for other traces: view trace_capture). Analyses output NULL, not 0, for
--            numbers that need what is missing (trust.sql says why and how to capture it).

CREATE OR REPLACE TEMP TABLE caps AS
SELECT w.trace, coalesce(r.n, 0) > 0 AS has_runtime, coalesce(r.syncs, 0) + coalesce(g.n, 0) > 0 AS has_sync,
       w.trace IN (SELECT trace FROM gpu_activity) AS has_gpu,
       (SELECT any_value(c.activities) FROM trace_capture c WHERE c.trace = w.trace) AS capture_activities
FROM trace_window w
LEFT JOIN (SELECT trace, count(*) AS n, count(*) FILTER (WHERE is_sync) AS syncs FROM runtime_calls GROUP BY trace) r
    USING (trace)
LEFT JOIN (SELECT trace, count(*) AS n FROM events WHERE kind = 'gpu_sync' GROUP BY trace) g USING (trace);
