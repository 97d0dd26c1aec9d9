-- lib/idle: the GPU's busy time and idle intervals per device (the union of all its streams).
-- @requires lib/gpu_activity lib/trace_window lib/intervals
--
-- Tables (_gap_rows private to this file; idle_* public):
--   _gap_rows  GPU ops that start after every earlier op of their device has ended: gid, trace,
--            device, ts_ns, gap_start_ns (the latest end before them). The gaps between them are
--            the device's idle intervals inside its GPU window (union of all streams).
--   idle_device_busy  per trace and device: first_ns, last_ns (GPU window) and busy_ns = window minus
--            those gaps, i.e. the length of the union of all GPU op intervals.
--   idle_intervals per trace and device, every idle interval of the trace window: gap_start_ns, gap_end_ns,
--            next_gid (the op that ends it; NULL for the trailing edge), edge (NULL: between ops,
--            'leading': before the device's first op, 'trailing': after its last).

CREATE OR REPLACE TEMP TABLE _gap_rows AS
WITH _device_ops AS (SELECT gid, trace, device, ts_ns, end_ns, (trace, device) AS grp, row_id AS tie FROM gpu_activity)
SELECT gid, trace, device, ts_ns, prev_end_ns AS gap_start_ns FROM intervals_union(_device_ops)
WHERE prev_end_ns IS NOT NULL AND ts_ns > prev_end_ns;

CREATE OR REPLACE TEMP TABLE idle_device_busy AS
SELECT s.trace, s.device, s.first_ns, s.last_ns, (s.last_ns - s.first_ns) - coalesce(g.gap_ns, 0) AS busy_ns
FROM (SELECT trace, device, min(ts_ns) AS first_ns, max(end_ns) AS last_ns FROM gpu_activity GROUP BY ALL) s
LEFT JOIN (SELECT trace, device, sum(ts_ns - gap_start_ns) AS gap_ns FROM _gap_rows GROUP BY ALL) g
    USING (trace, device);

-- Every idle interval of each device in the trace window, declared once: the gaps between ops
-- (_gap_rows), the leading edge (window start to the device's first op) and the trailing edge (its
-- last op's end to the window end). gpu_idle.sql classifies them (by next_gid's rules; the trailing
-- edge has no next op); steps.sql clips them to each step's end-to-end window.
CREATE OR REPLACE TEMP TABLE idle_intervals AS
SELECT trace, device, gap_start_ns, ts_ns AS gap_end_ns, gid AS next_gid, NULL::VARCHAR AS edge FROM _gap_rows
UNION ALL
SELECT f.trace, f.device, w.window_start_ns, f.ts_ns, f.gid, 'leading'
FROM (SELECT gid, trace, device, ts_ns FROM gpu_activity
      QUALIFY row_number() OVER (PARTITION BY trace, device ORDER BY ts_ns, row_id) = 1) f
JOIN trace_window w USING (trace) WHERE f.ts_ns > w.window_start_ns
UNION ALL
SELECT b.trace, b.device, b.last_ns, w.window_end_ns, NULL, 'trailing'
FROM idle_device_busy b JOIN trace_window w USING (trace) WHERE w.window_end_ns > b.last_ns;
