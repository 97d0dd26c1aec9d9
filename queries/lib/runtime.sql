-- lib/runtime: the runtime rows (runtime_calls) with their API class and what they launched.
-- @requires lib/api lib/gpu_activity
--
-- Public (temp table):
--   runtime_calls      runtime rows with end_ns, phase_path ('(none)' when NULL), api_class (lib/api's
--            api_classes) and flags is_sync (class blocking or stream_wait), blocking (class blocking:
--            the host waits in it), launched (>= 1 GPU op has its correlation).

-- The class of each distinct API name is looked up once, not once per call.
CREATE OR REPLACE TEMP TABLE runtime_calls AS
WITH _names AS (
    SELECT name, api_class_of(name) AS api_class FROM (SELECT DISTINCT name FROM runtime)
), _launched_correlations AS (
    SELECT trace, correlation, bool_or(kind = 'kernel') AS kernel FROM gpu_activity
    WHERE correlation IS NOT NULL GROUP BY ALL
)
SELECT r.trace, r.name, r.ts_ns, greatest(r.dur_ns, 0) AS dur_ns, r.ts_ns + greatest(r.dur_ns, 0) AS end_ns,
       r.pid, r.tid, r.correlation, r.phase, coalesce(r.phase_path, '(none)') AS phase_path, r.row_id,
       CASE WHEN coalesce(n.api_class, 'other') = 'other' AND coalesce(l.kernel, FALSE) THEN 'launch'
            ELSE coalesce(n.api_class, 'other') END AS api_class,
       coalesce(n.api_class IN ('blocking', 'stream_wait'), FALSE) AS is_sync,
       coalesce(n.api_class = 'blocking', FALSE) AS blocking,
       l.correlation IS NOT NULL AS launched
FROM runtime r
LEFT JOIN _names n ON n.name = r.name
LEFT JOIN _launched_correlations l ON l.trace = r.trace AND l.correlation = r.correlation;
