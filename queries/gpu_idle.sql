-- gpu_idle: when is each GPU idle, and what was the launching side doing?
--
-- Run it with `tracekit report` (or tracekit.report.run): that loads _common.sql first and sets every
-- getvariable() parameter to its documented default (tracekit/report.py: DEFAULTS).
--
-- Per (trace, device): the union of all GPU ops of all streams (kernels, memcpys, memsets) is
-- the busy time; its complement inside the TRACE WINDOW (earliest start to latest end of any
-- timed row of the trace, metadata excluded) is idle time. Each idle interval between two GPU
-- ops is classified by the op that ends it ("next op") and the CPU thread that launched it:
--   other         the next op's launch call had ENDED before the gap began: work was queued,
--                 the GPU waited on a dependency (event, other stream, other device); also
--                 gaps whose next op has no launch record (checked first)
--   sync_blocked  a blocking sync call on the launching thread overlapped the gap and the
--                 launch came within host_busy_min_ns of the sync's return (the host waited
--                 for the GPU to drain, then had to relaunch)
--   host_busy     the launch call STARTED more than host_busy_min_ns after the gap began: the
--                 host was doing other work (host_phase says which range it was in)
--   launch_bound  otherwise: the launch was issued around/after the gap start and the GPU
--                 waited for the launch itself
--   before_first_gpu_op / after_last_gpu_op   the trace window's edges with no GPU op yet/any more
-- host_phase of a gap: the phase_path of the last range on the launching thread that ended after
-- the gap began and before the next launch (the CPU work that filled the gap, e.g. a CPU-only
-- `candidate` range); when there is none, the phase of the next op's launch. Sync calls and
-- ranges are matched to the launching thread by tid with ASOF joins (no interval range join).
--
-- Inputs: ranges; _gpu, _rt, _window, _steps, _gap_rows, _busy_dev, _caps (from _common.sql).
-- Parameters: getvariable('host_busy_min_ns') (default 50000), getvariable('idle_top_n') (20).
--
-- Output `gpu_idle` (one row per trace, device):
--   window_ns            DENOMINATOR of idle_share: the trace window (window_start_ns..window_end_ns)
--   busy_ns              union of GPU op intervals on the device
--   idle_ns              window_ns - busy_ns;  idle_share = idle_ns / window_ns
--   gpu_window_ns        first GPU op start to last GPU op end (HTA's "kernel_time")
--   gpu_window_idle_ns   gpu_window_ns - busy_ns; gpu_window_idle_share = it / gpu_window_ns (HTA idle %)
--   compute_busy_ns      union of compute kernels (not NCCL, not memcpy/memset);
--                        compute_share = compute_busy_ns / gpu_window_ns (HTA compute %)
--   gaps                 idle intervals between GPU ops
--   launch_bound_ns, sync_blocked_ns, host_busy_ns, other_ns, edge_ns   idle time per cause
--                        (sync_blocked_ns NULL when no sync was captured: see trust; without
--                        runtime rows every gap is 'other' since no launch is known)
-- Output `causes`: trace, device, cause, intervals, idle_ns, mean_ns, p50_ns, max_ns, window_ns,
--   share_of_window = idle_ns / window_ns, share_of_idle = idle_ns / (all idle_ns of the device)
-- Output `by_phase`: trace, device, host_phase, cause, intervals, idle_ns, share_of_window
-- Output `by_step`: per step instance (see _common.sql: _steps), device and cause: intervals, idle_ns
--   (the part of each idle interval inside the step's time window), wall_ns of the step,
--   share_of_step = idle_ns / wall_ns (DENOMINATOR: the step's wall time)
-- Output `intervals`: the idle_top_n longest gaps per trace: device, gap_start_ns, gap_ns, cause,
--   host_phase, next_op, next_launch_name, next_launch_ts_ns
--
-- How to read: idle_share is of wall time, not of summed op time; launch_bound + host_busy are
-- CPU-side problems, sync_blocked a host sync, other a GPU-side dependency.

CREATE OR REPLACE TEMP TABLE _gaps AS
WITH _g AS (  -- the gap rows come from _common.sql; strings are joined back for those few rows
    SELECT g.gid, g.trace, g.device, g.ts_ns, g.end_ns, g.launch_ts_ns, g.launch_dur_ns, g.launch_tid,
           g.phase_path, o.gap_start_ns
    FROM _gap_rows o JOIN _gpu g USING (gid)
), _sy AS (
    SELECT trace, tid, ts_ns AS sync_ts, end_ns AS sync_end FROM _rt WHERE blocking
), _gs AS (
    SELECT g.*, s.sync_end FROM _g g
    ASOF LEFT JOIN _sy s ON g.trace = s.trace AND g.launch_tid = s.tid AND g.ts_ns >= s.sync_ts
), _re AS (
    SELECT trace, tid, ts_ns + greatest(dur_ns, 0) AS r_end, phase_path AS r_path FROM ranges
), _gr AS (
    SELECT g.*, r.r_end, r.r_path FROM _gs g
    ASOF LEFT JOIN _re r ON g.trace = r.trace AND g.launch_tid = r.tid AND g.launch_ts_ns >= r.r_end
)
SELECT trace, device, gap_start_ns, ts_ns AS gap_end_ns, ts_ns - gap_start_ns AS gap_ns, gid AS next_gid,
       launch_ts_ns AS next_launch_ts_ns,
       CASE WHEN launch_ts_ns IS NULL THEN 'other'
            WHEN launch_ts_ns + launch_dur_ns <= gap_start_ns THEN 'other'
            WHEN sync_end > gap_start_ns AND launch_ts_ns - sync_end <= getvariable('host_busy_min_ns') THEN 'sync_blocked'
            WHEN launch_ts_ns - gap_start_ns > getvariable('host_busy_min_ns') THEN 'host_busy'
            ELSE 'launch_bound' END AS cause,
       CASE WHEN r_end IS NOT NULL AND r_end > gap_start_ns THEN r_path ELSE phase_path END AS host_phase
FROM _gr;

-- busy_ns, first_ns, last_ns: _busy_dev (_common.sql)
CREATE OR REPLACE TEMP TABLE _dev AS
WITH _cisl AS (  -- union of compute kernels only
    SELECT trace, device, ts_ns, end_ns,
           sum(CASE WHEN _pc IS NULL OR ts_ns > _pc THEN 1 ELSE 0 END)
             OVER (PARTITION BY trace, device ORDER BY ts_ns, end_ns ROWS UNBOUNDED PRECEDING) AS _ic
    FROM (SELECT trace, device, ts_ns, end_ns,
                 max(end_ns) OVER (PARTITION BY trace, device ORDER BY ts_ns, end_ns
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS _pc
          FROM _gpu WHERE op_class = 'compute')
), _cbusy AS (
    SELECT trace, device, sum(e - s) AS compute_busy_ns
    FROM (SELECT trace, device, _ic, min(ts_ns) AS s, max(end_ns) AS e FROM _cisl GROUP BY ALL) GROUP BY ALL
)
SELECT p.trace, p.device, w.window_start_ns, w.window_end_ns, w.window_ns, p.busy_ns, p.first_ns, p.last_ns,
       p.last_ns - p.first_ns AS gpu_window_ns, coalesce(c.compute_busy_ns, 0) AS compute_busy_ns
FROM _busy_dev p JOIN _window w USING (trace) LEFT JOIN _cbusy c USING (trace, device);

CREATE OR REPLACE TEMP TABLE _idle_all AS
SELECT trace, device, cause, gap_start_ns, gap_ns, host_phase FROM _gaps
UNION ALL SELECT trace, device, 'before_first_gpu_op', window_start_ns, first_ns - window_start_ns, NULL FROM _dev WHERE first_ns > window_start_ns
UNION ALL SELECT trace, device, 'after_last_gpu_op', last_ns, window_end_ns - last_ns, NULL FROM _dev WHERE window_end_ns > last_ns;

-- @output gpu_idle
WITH _c AS (
    SELECT trace, device, count(*) FILTER (WHERE cause NOT LIKE '%gpu_op') AS gaps,
           sum(gap_ns) FILTER (WHERE cause = 'launch_bound') AS launch_bound_ns,
           sum(gap_ns) FILTER (WHERE cause = 'sync_blocked') AS sync_blocked_ns,
           sum(gap_ns) FILTER (WHERE cause = 'host_busy') AS host_busy_ns,
           sum(gap_ns) FILTER (WHERE cause = 'other') AS other_ns,
           sum(gap_ns) FILTER (WHERE cause LIKE '%gpu_op') AS edge_ns
    FROM _idle_all GROUP BY ALL
)
SELECT d.trace, d.device, d.window_start_ns, d.window_end_ns, d.window_ns, d.busy_ns::BIGINT AS busy_ns,
       (d.window_ns - d.busy_ns)::BIGINT AS idle_ns, (d.window_ns - d.busy_ns) / d.window_ns AS idle_share,
       d.gpu_window_ns, (d.gpu_window_ns - d.busy_ns)::BIGINT AS gpu_window_idle_ns,
       (d.gpu_window_ns - d.busy_ns) / nullif(d.gpu_window_ns, 0) AS gpu_window_idle_share,
       d.compute_busy_ns::BIGINT AS compute_busy_ns, d.compute_busy_ns / nullif(d.gpu_window_ns, 0) AS compute_share,
       coalesce(c.gaps, 0) AS gaps,
       coalesce(c.launch_bound_ns, 0)::BIGINT AS launch_bound_ns,
       CASE WHEN k.has_sync THEN coalesce(c.sync_blocked_ns, 0)::BIGINT END AS sync_blocked_ns,
       coalesce(c.host_busy_ns, 0)::BIGINT AS host_busy_ns, coalesce(c.other_ns, 0)::BIGINT AS other_ns,
       coalesce(c.edge_ns, 0)::BIGINT AS edge_ns
FROM _dev d LEFT JOIN _c c USING (trace, device) JOIN _caps k USING (trace)
ORDER BY d.trace, d.device;

-- @output causes
SELECT i.trace, i.device, i.cause, count(*) AS intervals, sum(gap_ns)::BIGINT AS idle_ns, avg(gap_ns) AS mean_ns,
       quantile_disc(gap_ns, 0.5) AS p50_ns, max(gap_ns) AS max_ns, any_value(d.window_ns) AS window_ns,
       sum(gap_ns) / any_value(d.window_ns) AS share_of_window,
       sum(gap_ns) / nullif(any_value(d.window_ns - d.busy_ns), 0) AS share_of_idle
FROM _idle_all i JOIN _dev d USING (trace, device)
GROUP BY i.trace, i.device, i.cause
ORDER BY i.trace, i.device, idle_ns DESC;

-- @output by_phase
SELECT i.trace, i.device, coalesce(i.host_phase, '(none)') AS host_phase, i.cause, count(*) AS intervals,
       sum(gap_ns)::BIGINT AS idle_ns, sum(gap_ns) / any_value(d.window_ns) AS share_of_window
FROM _idle_all i JOIN _dev d USING (trace, device)
WHERE i.cause NOT LIKE '%gpu_op'
GROUP BY ALL ORDER BY i.trace, i.device, idle_ns DESC;

-- @output by_step
SELECT s.trace, s.step_index, s.name AS step_name, i.device, i.cause, count(*) AS intervals,
       sum(least(i.gap_start_ns + i.gap_ns, s.end_ns) - greatest(i.gap_start_ns, s.ts_ns))::BIGINT AS idle_ns,
       any_value(s.end_ns - s.ts_ns) AS wall_ns,
       sum(least(i.gap_start_ns + i.gap_ns, s.end_ns) - greatest(i.gap_start_ns, s.ts_ns)) / any_value(s.end_ns - s.ts_ns) AS share_of_step
FROM _steps s JOIN _idle_all i
  ON i.trace = s.trace AND i.gap_start_ns < s.end_ns AND i.gap_start_ns + i.gap_ns > s.ts_ns
GROUP BY s.trace, s.step_index, s.name, i.device, i.cause
ORDER BY s.trace, s.step_index, i.device, idle_ns DESC;

-- @output intervals
WITH _top AS (  -- pick the rows on narrow columns, then fetch the names of those few
    SELECT trace, device, gap_start_ns, gap_ns, cause, host_phase, next_gid, next_launch_ts_ns
    FROM _gaps
    QUALIFY row_number() OVER (PARTITION BY trace ORDER BY gap_ns DESC, gap_start_ns) <= getvariable('idle_top_n')
)
SELECT t.trace, t.device, t.gap_start_ns, t.gap_ns, t.cause, t.host_phase, g.name AS next_op,
       g.launch_name AS next_launch_name, t.next_launch_ts_ns
FROM _top t JOIN _gpu g ON g.gid = t.next_gid
ORDER BY t.trace, t.gap_ns DESC, t.gap_start_ns;
