-- gpu_idle: when is each GPU idle, and what was the launching side doing?
-- @requires lib/caps lib/frames lib/gpu_activity lib/idle lib/runtime lib/step_instances lib/trace_window lib/notes
-- @param host_busy_min_ns DURATION 50000 T below: a launch that started this long after the GPU went idle
--     makes the gap host_busy
-- @param kernel_gap_max_ns DURATION 20000 K below: a queued op's gap behind its own stream up to this long
--     is kernel_gap
-- @param idle_top_n COUNT 20 longest gaps listed per trace (output intervals)
--
-- Run it with `tracekit report` (or tracekit.report.run): that loads the modules on its @requires line first and sets
-- every getvariable() parameter to its default (its @param line; docs/queries.md).
--
-- Per (trace, device): the union of all GPU ops of all streams (kernels, memcpys, memsets) is
-- the busy time; its complement inside the TRACE WINDOW (earliest start to latest end of any
-- timed row of the trace, metadata excluded) is idle time.
--
-- CAUSES. Each idle interval between two GPU ops is classified by the op that ends it ("next op",
-- on stream s) and the CPU thread that launched it. Notation: G = gap start (every earlier op of
-- the device has ended), E = gap end = next op start, L0/L1 = start/end of the next op's launch
-- call, T = host_busy_min_ns. P0 = launch start of the previous op of stream s that has a launch
-- record (none: no lower bound). S0/S1 = start/end of the latest blocking sync call (queries/lib/:
-- runtime_calls.blocking, class `blocking` of api_classes) on the launching thread that started before the launch
-- (S0 < L0).
-- W0 = start of a stream-wait call (cudaStreamWaitEvent / hipStreamWaitEvent / cuStreamWaitEvent):
--   "recorded" waits have a GPU-side record naming the waiting stream (Kineto cuda_sync
--   'Stream Wait Event', nsys SYNCHRONIZATION; W0 = its call's start, the record's own start if the
--   call is missing): the latest one on stream s (same device) with W0 < L0 is taken; the event
--   record call is the runtime row whose correlation the record names (Kineto
--   wait_on_cuda_event_record_corr_id; its stream: wait_on_stream). "Thread-order" waits are wait
--   calls with no such record (e.g. HIP traces): the latest one on the launching thread with
--   W0 < L0 is taken, its stream and event unknown.
-- Gaps are classified for the device's ops in the order of the device's timeline; ops of other
-- devices and processes never fill a gap (each device is its own union).
-- Q (queued) = L1 <= G (the op was already queued when the GPU went idle), or D > T and D > H where
-- D = E - max(G, L1) is the part of the gap the op sat queued and H = max(G, L1) - G the part before
-- it was queued (it was launched in time but then waited on the GPU for most of the gap).
-- The checks run in this order; the first that holds is the cause, so the causes are mutually
-- exclusive and every gap gets one:
--   1 no_launch_record   L0 unknown: the next op has no launching call in the trace
--   2 gpu_wait           Q, and a recorded wait on stream s has P0 < W0 < L0: the stream waited on
--                        an event (cross-stream/cross-device dependency). intervals names the wait
--                        call and, when the trace has it, the event record call and its stream
--   3 gpu_wait           Q, and a thread-order wait has P0 < W0 < L0 (wait_evidence says which)
--   4 kernel_gap         Q, the op that ended at G ran on stream s too (back to back on one stream),
--                        and E - G <= K: the GPU's ordinary gap between two queued ops of a stream
--                        (HTA's kernel_wait; K = kernel_gap_max_ns, default 20 us: the largest such gap
--                        on the shared real traces is 16 us, a held op waits far longer)
--   5 queued_dependency  Q, none of the above: queued work waited on something the trace does not
--                        show (another device or process, a host callback, an uncaptured wait)
--   6 sync_blocked       not Q, S0 <= G + T, S0 < L0, S1 > G and L0 - S1 <= T: the launching thread
--                        sat in a blocking sync across the gap start and launched within T of its
--                        return (the host waited for the GPU to drain, then had to relaunch)
--   7 host_busy          not Q, L0 - G > T: the host started the launch more than T after the GPU
--                        went idle (host_phase says which range it was in)
--   8 launch_bound       otherwise (not Q, L0 - G <= T): the GPU waited for the launch itself
--   before_first_gpu_op / after_last_gpu_op   the trace window's edges with no GPU op yet/any more; the
--                        leading edge is also classified by rules 1-8 with G = the window start
--                        (gpu_idle_all.rule_cause, what headline's per-step split uses: a step whose first
--                        op waited 400 ms on a stream event is gpu_wait, not 'before_first_gpu_op')
-- An op launched before the gap, or launched in time and then held on the GPU, is never sync_blocked,
-- even when a blocking sync ran across the gap after its launch: what held it was on the GPU side
-- (rules 2-5). Without runtime rows every gap is no_launch_record.
-- host_phase of a gap: the phase_path of the last range on the launching thread that ended after
-- the gap began and before the next launch (the CPU work that filled the gap, e.g. a CPU-only
-- `candidate` range); when there is none, the phase of the next op's launch. Sync calls, waits and
-- ranges are matched by ASOF joins (no interval range join). TIES are broken before each join, never left
-- to row order: of waits or syncs starting in the same ns on one key, the highest row_id (a sync: the
-- latest-ending one first); of ranges ending in the same ns on one thread, the latest-starting
-- (innermost), then the highest row_id; ops starting in the same ns on a stream are in row_id order.
--
-- Inputs: events (gpu_sync rows), ranges; gpu_activity, runtime_calls, trace_window, step_instances, idle_intervals,
-- idle_device_busy, caps (queries/lib/); frames_runtime (lib/frames.sql).
--
-- Output `gpu_idle` (one row per trace, device):
--   (its columns: the @column lines at `-- @output gpu_idle` below)
-- Output `causes`: trace, device, cause, intervals, idle_ns, mean_ns, p50_ns, max_ns, window_ns,
-- Output `by_phase`: trace, device, host_phase, cause, intervals, idle_ns, share_of_window
-- Output `by_step`: per step instance (see lib/step_instances: step_instances), device and cause: intervals, idle_ns
--   (the part of each idle interval inside the step's time window), wall_ns of the step, share_of_step; a
--   trace with no step (its '(whole trace)' steps) has no rows here: its idle is `causes`'.
-- Output `intervals`: the idle_top_n longest gaps per trace: device, gap_start_ns, gap_ns, cause,
--   host_phase, next_op, next_launch_name, next_launch_ts_ns, and the evidence of the rule:
--   next_stream, next_launch_end_ns (L1); sync_call, sync_ts_ns, sync_end_ns (S, sync_blocked
--   rows); wait_call, wait_ts_ns (W0), wait_stream, wait_evidence ('gpu_sync_record' |
--   'thread_order'), event_record_call, event_record_ts_ns, event_record_stream (gpu_wait rows;
--   NULL when the trace does not have them); note: what is unknown and which capture option shows it;
--   its launch call, `file(line): function` (lib/frames.sql); NULL when the trace has no Python frames
--   (recorded without with_stack=True), when no user frame encloses the launch, or when the op has no
--   launch record.
--
-- How to read: idle_share is of wall time, not of summed op time; launch_bound + host_busy are
-- CPU-side problems, sync_blocked a host sync, gpu_wait / queued_dependency GPU-side dependencies,
-- kernel_gap the GPU's own time between queued ops (large only with very many tiny ops).

CREATE OR REPLACE TEMP TABLE _waits AS
WITH _recorded_waits AS (  -- recorded stream waits: the GPU-side record names the waiting stream (and, Kineto, the
                           -- event record)
    SELECT w.trace, coalesce(w.device, -1) AS device, w.stream AS w_stream, w.correlation AS w_corr, w.row_id,
           coalesce(w.launch_ts_ns, w.ts_ns) AS w_ts, coalesce(w.launch_name, w.name) AS w_call,
           nullif(TRY_CAST(json_extract_string(w.args, '$.wait_on_cuda_event_record_corr_id') AS BIGINT), -1)
               AS rec_corr,
           nullif(TRY_CAST(json_extract_string(w.args, '$.wait_on_stream') AS BIGINT), -1) AS rec_stream
    FROM events w WHERE w.kind = 'gpu_sync' AND w.name = 'Stream Wait Event' AND w.stream IS NOT NULL
), _record_calls AS (  -- the event record call a recorded wait names (Kineto: wait_on_cuda_event_record_corr_id)
    SELECT trace, correlation, first(name ORDER BY ts_ns, row_id) AS rec_call, min(ts_ns) AS rec_ts FROM runtime_calls
    WHERE correlation IN (SELECT rec_corr FROM _recorded_waits) GROUP BY ALL
)
SELECT w.*, r.rec_call, r.rec_ts FROM _recorded_waits w
LEFT JOIN _record_calls r ON r.trace = w.trace AND r.correlation = w.rec_corr;

CREATE OR REPLACE TEMP TABLE _twaits AS  -- thread-order waits: stream-wait calls (the only non-blocking sync APIs)
                                         -- without a GPU-side record
    SELECT r.trace, r.tid, r.ts_ns AS t_ts, r.name AS t_call, r.row_id FROM runtime_calls r
    WHERE r.is_sync AND NOT r.blocking
      AND NOT EXISTS (SELECT 1 FROM _waits w WHERE w.trace = r.trace AND w.w_corr = r.correlation);

CREATE OR REPLACE TEMP TABLE gpu_idle_gaps AS
WITH _prev_on_stream AS (  -- P0: launch start of the previous op (with a launch record) on the same stream; the
                          -- latest end of the stream's earlier ops (= G when the op that ended at G ran on this
                          -- stream)
    SELECT gid, last_value(launch_ts_ns IGNORE NULLS) OVER _w AS prev_launch_ts_ns,
           max(end_ns) OVER _w AS prev_stream_end_ns
    FROM gpu_activity
    WINDOW _w AS (PARTITION BY trace, device, stream ORDER BY ts_ns, row_id
                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
), _gaps AS (  -- the gap rows come from queries/lib/ (narrow columns; strings are joined back at the end)
    SELECT g.gid, g.trace, g.device, g.stream, g.ts_ns, g.launch_ts_ns, g.launch_dur_ns, g.launch_tid,
           o.gap_start_ns, o.edge, p.prev_launch_ts_ns, p.prev_stream_end_ns,
           -- Q: the op was queued for the whole gap, or sat queued for more than T and for most of the gap
           coalesce(g.launch_ts_ns + g.launch_dur_ns <= o.gap_start_ns
             OR (g.ts_ns - greatest(o.gap_start_ns, g.launch_ts_ns + g.launch_dur_ns) > getvariable('host_busy_min_ns')
                 AND g.ts_ns - greatest(o.gap_start_ns, g.launch_ts_ns + g.launch_dur_ns)
                     > greatest(o.gap_start_ns, g.launch_ts_ns + g.launch_dur_ns) - o.gap_start_ns), FALSE) AS queued
    FROM (  -- the leading edge (window start to each device's first op) is classified by the same rules
          SELECT next_gid AS gid, gap_start_ns, edge IS NOT NULL AS edge FROM idle_intervals
          WHERE next_gid IS NOT NULL) o
    JOIN gpu_activity g USING (gid) JOIN _prev_on_stream p USING (gid)
), _blocking_syncs AS (
    SELECT trace, tid, ts_ns AS sync_ts, end_ns AS sync_end, name AS sync_call FROM runtime_calls WHERE blocking
    QUALIFY row_number() OVER (PARTITION BY trace, tid, ts_ns ORDER BY end_ns DESC, row_id DESC) = 1
), _queued AS (  -- queued ops: the stream waits that came before them (rules 2-4). Each ASOF join reads narrow
           -- key columns only and returns gid + what it found; the rows are put together by gid below.
    SELECT * FROM _gaps WHERE queued
), _queued_rec_waits AS (
    SELECT g.gid, w.w_ts, w.w_call, w.w_stream, w.rec_call, w.rec_ts, w.rec_stream
    FROM (SELECT gid, trace, device, stream, launch_ts_ns FROM _queued) g
    ASOF JOIN (SELECT * FROM _waits
               QUALIFY row_number() OVER (PARTITION BY trace, device, w_stream, w_ts ORDER BY row_id DESC) = 1) w
      ON g.trace = w.trace AND g.device = w.device AND g.stream = w.w_stream AND g.launch_ts_ns > w.w_ts
), _queued_thread_waits AS (
    SELECT g.gid, t.t_ts, t.t_call FROM (SELECT gid, trace, launch_tid, launch_ts_ns FROM _queued) g
    ASOF JOIN (SELECT * FROM _twaits
               QUALIFY row_number() OVER (PARTITION BY trace, tid, t_ts ORDER BY row_id DESC) = 1) t
      ON g.trace = t.trace AND g.launch_tid = t.tid AND g.launch_ts_ns > t.t_ts
), _unqueued_syncs AS (  -- the others: the blocking sync that came before the launch (rule 5)
    SELECT g.gid, s.sync_ts, s.sync_end, s.sync_call
    FROM (SELECT gid, trace, launch_tid, launch_ts_ns FROM _gaps WHERE NOT queued) g
    ASOF JOIN _blocking_syncs s ON g.trace = s.trace AND g.launch_tid = s.tid AND g.launch_ts_ns > s.sync_ts
), _range_ends AS (
    SELECT trace, tid, ts_ns + greatest(dur_ns, 0) AS r_end, phase_path AS r_path FROM ranges
    QUALIFY row_number() OVER (PARTITION BY trace, tid, r_end ORDER BY ts_ns DESC, row_id DESC) = 1
), _last_ranges AS (  -- the last range the launching thread ended before the launch (host_phase)
    SELECT g.gid, r.r_end, r.r_path FROM (SELECT gid, trace, launch_tid, launch_ts_ns FROM _gaps) g
    ASOF JOIN _range_ends r ON g.trace = r.trace AND g.launch_tid = r.tid AND g.launch_ts_ns >= r.r_end
), _gaps_joined AS (
    SELECT * FROM _gaps LEFT JOIN _queued_rec_waits USING (gid) LEFT JOIN _queued_thread_waits USING (gid)
    LEFT JOIN _unqueued_syncs USING (gid) LEFT JOIN _last_ranges USING (gid)
), _wait_flagged AS (
    SELECT *,
           w_ts IS NOT NULL AND (prev_launch_ts_ns IS NULL OR w_ts > prev_launch_ts_ns) AS rec_wait,
           t_ts IS NOT NULL AND (prev_launch_ts_ns IS NULL OR t_ts > prev_launch_ts_ns) AS thr_wait
    FROM _gaps_joined
), _classified AS (
    SELECT *, CASE WHEN launch_ts_ns IS NULL THEN 'no_launch_record'
                   WHEN queued AND (rec_wait OR thr_wait) THEN 'gpu_wait'
                   WHEN queued AND prev_stream_end_ns = gap_start_ns
                        AND ts_ns - gap_start_ns <= getvariable('kernel_gap_max_ns') THEN 'kernel_gap'
                   WHEN queued THEN 'queued_dependency'
                   WHEN sync_end > gap_start_ns AND sync_ts <= gap_start_ns + getvariable('host_busy_min_ns')
                        AND launch_ts_ns - sync_end <= getvariable('host_busy_min_ns') THEN 'sync_blocked'
                   WHEN launch_ts_ns - gap_start_ns > getvariable('host_busy_min_ns') THEN 'host_busy'
                   ELSE 'launch_bound' END AS cause
    FROM _wait_flagged
)
SELECT k.trace, k.device, k.gap_start_ns, k.ts_ns AS gap_end_ns, k.ts_ns - k.gap_start_ns AS gap_ns, k.edge,
       k.gid AS next_gid, g.row_id AS next_row_id,
       k.launch_ts_ns AS next_launch_ts_ns, k.launch_ts_ns + k.launch_dur_ns AS next_launch_end_ns,
       k.stream AS next_stream, k.cause,
       CASE WHEN k.r_end IS NOT NULL AND k.r_end > k.gap_start_ns THEN k.r_path ELSE g.phase_path END AS host_phase,
       CASE WHEN k.cause = 'sync_blocked' THEN k.sync_call END AS sync_call,
       CASE WHEN k.cause = 'sync_blocked' THEN k.sync_ts END AS sync_ts_ns,
       CASE WHEN k.cause = 'sync_blocked' THEN k.sync_end END AS sync_end_ns,
       CASE WHEN k.cause <> 'gpu_wait' THEN NULL WHEN k.rec_wait THEN k.w_call ELSE k.t_call END AS wait_call,
       CASE WHEN k.cause <> 'gpu_wait' THEN NULL WHEN k.rec_wait THEN k.w_ts ELSE k.t_ts END AS wait_ts_ns,
       CASE WHEN k.cause = 'gpu_wait' AND k.rec_wait THEN k.w_stream END AS wait_stream,
       CASE WHEN k.cause <> 'gpu_wait' THEN NULL WHEN k.rec_wait THEN 'gpu_sync_record'
            ELSE 'thread_order' END AS wait_evidence,
       CASE WHEN k.cause = 'gpu_wait' AND k.rec_wait THEN k.rec_call END AS event_record_call,
       CASE WHEN k.cause = 'gpu_wait' AND k.rec_wait THEN k.rec_ts END AS event_record_ts_ns,
       CASE WHEN k.cause = 'gpu_wait' AND k.rec_wait THEN k.rec_stream END AS event_record_stream,
       CASE k.cause
           WHEN 'no_launch_record' THEN 'the next op has no launching call in the trace (window trimmed, or runtime '
                || 'activity not captured: ' || notes_fix_runtime_short() || '): cause unknown'
           WHEN 'kernel_gap' THEN 'the op was queued on the stream of the op that ended at the gap start: the '
                || 'ordinary gap between back-to-back ops of a stream (at most kernel_gap_max_ns)'
           WHEN 'queued_dependency' THEN 'the op sat queued (rule Q of queries/gpu_idle.sql) and no stream wait on '
                || 'its stream was issued since the previous op of the stream was launched: the dependency is not '
                || 'in the trace'
           WHEN 'gpu_wait' THEN CASE
                WHEN NOT k.rec_wait THEN 'no GPU-side record of the wait: it is the launching thread''s last stream '
                     || 'wait before this launch, its stream and event unknown (Kineto on CUDA records them with '
                     || 'experimental_config=_ExperimentalConfig(enable_cuda_sync_events=True))'
                WHEN k.rec_call IS NULL THEN 'the event record this wait waits on is not in the trace (recorded before '
                     || 'the capture began, or the source does not link it: nsys SYNCHRONIZATION rows name only the '
                     || 'waiting stream)' END
       END AS note
FROM _classified k JOIN gpu_activity g USING (gid);

-- busy_ns, first_ns, last_ns: idle_device_busy (queries/lib/)
CREATE OR REPLACE TEMP TABLE _dev AS
WITH _cisl AS (  -- union of compute kernels only
    SELECT trace, device, ts_ns, end_ns,
           sum(CASE WHEN _pc IS NULL OR ts_ns > _pc THEN 1 ELSE 0 END)
             OVER (PARTITION BY trace, device ORDER BY ts_ns, end_ns ROWS UNBOUNDED PRECEDING) AS _ic
    FROM (SELECT trace, device, ts_ns, end_ns,
                 max(end_ns) OVER (PARTITION BY trace, device ORDER BY ts_ns, end_ns
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS _pc
          FROM gpu_activity WHERE op_class = 'compute')
), _cbusy AS (
    SELECT trace, device, sum(e - s) AS compute_busy_ns
    FROM (SELECT trace, device, _ic, min(ts_ns) AS s, max(end_ns) AS e FROM _cisl GROUP BY ALL) GROUP BY ALL
)
SELECT p.trace, p.device, w.window_start_ns, w.window_end_ns, w.window_ns, p.busy_ns, p.first_ns, p.last_ns,
       p.last_ns - p.first_ns AS gpu_window_ns, coalesce(c.compute_busy_ns, 0) AS compute_busy_ns
FROM idle_device_busy p JOIN trace_window w USING (trace) LEFT JOIN _cbusy c USING (trace, device);

CREATE OR REPLACE TEMP TABLE gpu_idle_all AS
SELECT trace, device, CASE WHEN edge THEN 'before_first_gpu_op' ELSE cause END AS cause, cause AS rule_cause,
       gap_start_ns, gap_ns, host_phase FROM gpu_idle_gaps
UNION ALL SELECT trace, device, 'after_last_gpu_op', 'after_last_gpu_op', gap_start_ns, gap_end_ns - gap_start_ns, NULL
          FROM idle_intervals WHERE edge = 'trailing';

-- @output gpu_idle
-- @column trace                 TEXT      the trace (input file name) the row is about
-- @column device                ID        GPU device id as the trace gives it
-- @column window_start_ns       TIMESTAMP start of the trace window (earliest start of any timed row)
-- @column window_end_ns         TIMESTAMP end of the trace window (latest end of any timed row)
-- @column window_ns             DURATION  DENOMINATOR of idle_share: the trace window
--                                         (window_start_ns..window_end_ns)
-- @column busy_ns               DURATION  union of GPU op intervals on the device
-- @column idle_ns               DURATION  window_ns - busy_ns
-- @column idle_share            SHARE     idle_ns / window_ns
-- @column gpu_window_ns         DURATION  first GPU op start to last GPU op end (HTA's "kernel_time")
-- @column gpu_window_idle_ns    DURATION  gpu_window_ns - busy_ns
-- @column gpu_window_idle_share SHARE     gpu_window_idle_ns / gpu_window_ns (HTA idle %)
-- @column compute_busy_ns       DURATION  union of compute kernels (not NCCL, not memcpy/memset)
-- @column compute_share         SHARE     compute_busy_ns / gpu_window_ns (HTA compute %)
-- @column gaps                  COUNT     idle intervals between GPU ops
-- @column launch_bound_ns       DURATION  idle time caused by launch_bound
-- @column sync_blocked_ns       DURATION  idle time caused by sync_blocked (NULL when no sync was captured)
-- @column host_busy_ns          DURATION  idle time caused by host_busy
-- @column gpu_wait_ns           DURATION  idle time caused by gpu_wait (NULL when no runtime rows were
--                                         captured)
-- @column kernel_gap_ns         DURATION  idle time caused by kernel_gap
-- @column queued_dependency_ns  DURATION  idle time caused by queued_dependency
-- @column no_launch_record_ns   DURATION  idle time caused by no_launch_record
-- @column other_ns              DURATION  gpu_wait_ns + kernel_gap_ns + queued_dependency_ns +
--                                         no_launch_record_ns: the GPU-side and unknown causes together (the
--                                         former single 'other' cause)
-- @column edge_ns               DURATION  idle time at the trace window's edges (before the first / after the
--                                         last GPU op)
--
--                                         captured, gpu_wait_ns NULL when no runtime rows were: see trust)
WITH _cause_sums AS (
    SELECT trace, device, count(*) FILTER (WHERE cause NOT LIKE '%gpu_op') AS gaps,
           sum(gap_ns) FILTER (WHERE cause = 'launch_bound') AS launch_bound_ns,
           sum(gap_ns) FILTER (WHERE cause = 'sync_blocked') AS sync_blocked_ns,
           sum(gap_ns) FILTER (WHERE cause = 'host_busy') AS host_busy_ns,
           sum(gap_ns) FILTER (WHERE cause = 'gpu_wait') AS gpu_wait_ns,
           sum(gap_ns) FILTER (WHERE cause = 'kernel_gap') AS kernel_gap_ns,
           sum(gap_ns) FILTER (WHERE cause = 'queued_dependency') AS queued_dependency_ns,
           sum(gap_ns) FILTER (WHERE cause = 'no_launch_record') AS no_launch_record_ns,
           sum(gap_ns) FILTER (WHERE cause IN ('gpu_wait', 'kernel_gap', 'queued_dependency', 'no_launch_record'))
               AS other_ns,
           sum(gap_ns) FILTER (WHERE cause LIKE '%gpu_op') AS edge_ns
    FROM gpu_idle_all GROUP BY ALL
)
SELECT d.trace, d.device, d.window_start_ns, d.window_end_ns, d.window_ns, d.busy_ns::BIGINT AS busy_ns,
       (d.window_ns - d.busy_ns)::BIGINT AS idle_ns, (d.window_ns - d.busy_ns) / d.window_ns AS idle_share,
       d.gpu_window_ns, (d.gpu_window_ns - d.busy_ns)::BIGINT AS gpu_window_idle_ns,
       (d.gpu_window_ns - d.busy_ns) / nullif(d.gpu_window_ns, 0) AS gpu_window_idle_share,
       d.compute_busy_ns::BIGINT AS compute_busy_ns, d.compute_busy_ns / nullif(d.gpu_window_ns, 0) AS compute_share,
       coalesce(c.gaps, 0) AS gaps,
       coalesce(c.launch_bound_ns, 0)::BIGINT AS launch_bound_ns,
       CASE WHEN k.has_sync THEN coalesce(c.sync_blocked_ns, 0)::BIGINT END AS sync_blocked_ns,
       coalesce(c.host_busy_ns, 0)::BIGINT AS host_busy_ns,
       CASE WHEN k.has_runtime THEN coalesce(c.gpu_wait_ns, 0)::BIGINT END AS gpu_wait_ns,
       CASE WHEN k.has_runtime THEN coalesce(c.kernel_gap_ns, 0)::BIGINT END AS kernel_gap_ns,
       coalesce(c.queued_dependency_ns, 0)::BIGINT AS queued_dependency_ns,
       coalesce(c.no_launch_record_ns, 0)::BIGINT AS no_launch_record_ns,
       coalesce(c.other_ns, 0)::BIGINT AS other_ns, coalesce(c.edge_ns, 0)::BIGINT AS edge_ns
FROM _dev d LEFT JOIN _cause_sums c USING (trace, device) JOIN caps k USING (trace)
ORDER BY d.trace, d.device;

-- @output causes
-- @column trace           TEXT      the trace (input file name) the row is about
-- @column device          ID        GPU device id as the trace gives it
-- @column cause           TEXT      the idle cause (rules 1-8 above, or a window edge)
-- @column intervals       COUNT     idle intervals
-- @column idle_ns         DURATION  idle time of the cause
-- @column mean_ns         DURATION  mean interval length
-- @column p50_ns          DURATION  median interval length
-- @column max_ns          DURATION  longest interval
-- @column window_ns       DURATION  DENOMINATOR of idle_share: the trace window
--                                   (window_start_ns..window_end_ns)
-- @column share_of_window SHARE     idle_ns / window_ns
-- @column share_of_idle   SHARE     idle_ns / (all idle_ns of the device)
SELECT i.trace, i.device, i.cause, count(*) AS intervals, sum(gap_ns)::BIGINT AS idle_ns, avg(gap_ns) AS mean_ns,
       quantile_disc(gap_ns, 0.5) AS p50_ns, max(gap_ns) AS max_ns, any_value(d.window_ns) AS window_ns,
       sum(gap_ns) / any_value(d.window_ns) AS share_of_window,
       sum(gap_ns) / nullif(any_value(d.window_ns - d.busy_ns), 0) AS share_of_idle
FROM gpu_idle_all i JOIN _dev d USING (trace, device)
GROUP BY i.trace, i.device, i.cause
ORDER BY i.trace, i.device, idle_ns DESC, i.cause;

-- @output by_phase
-- @column trace           TEXT      the trace (input file name) the row is about
-- @column device          ID        GPU device id as the trace gives it
-- @column host_phase      TEXT      phase_path of the CPU work that filled the gap (gpu_idle.sql: host_phase)
-- @column cause           TEXT      the idle cause
-- @column intervals       COUNT     idle intervals
-- @column idle_ns         DURATION  idle time of the cause in the phase
-- @column share_of_window SHARE     idle_ns / window_ns
--
--                                   device)
SELECT i.trace, i.device, coalesce(i.host_phase, '(none)') AS host_phase, i.cause, count(*) AS intervals,
       sum(gap_ns)::BIGINT AS idle_ns, sum(gap_ns) / any_value(d.window_ns) AS share_of_window
FROM gpu_idle_all i JOIN _dev d USING (trace, device)
WHERE i.cause NOT LIKE '%gpu_op'
GROUP BY ALL ORDER BY i.trace, i.device, idle_ns DESC, host_phase, i.cause;

-- @output by_step
-- @column trace         TEXT      the trace (input file name) the row is about
-- @column step_index    ID        the step's number in its trace (1.. in time order)
-- @column step_name     TEXT      the step range's name as captured
-- @column device        ID        GPU device id as the trace gives it
-- @column cause         TEXT      the idle cause
-- @column intervals     COUNT     idle intervals
-- @column idle_ns       DURATION  the part of each idle interval inside the step's time window, summed
-- @column wall_ns       DURATION  the step's wall time (DENOMINATOR of share_of_step)
-- @column share_of_step SHARE     idle_ns / wall_ns (DENOMINATOR: the step's wall time)
SELECT s.trace, s.step_index, s.name AS step_name, i.device, i.cause, count(*) AS intervals,
       sum(least(i.gap_start_ns + i.gap_ns, s.end_ns) - greatest(i.gap_start_ns, s.ts_ns))::BIGINT AS idle_ns,
       any_value(s.end_ns - s.ts_ns) AS wall_ns,
       sum(least(i.gap_start_ns + i.gap_ns, s.end_ns) - greatest(i.gap_start_ns, s.ts_ns))
           / any_value(s.end_ns - s.ts_ns) AS share_of_step
FROM step_instances_matched s JOIN gpu_idle_all i  -- a whole trace's idle is the `causes` output's
  ON i.trace = s.trace AND i.gap_start_ns < s.end_ns AND i.gap_start_ns + i.gap_ns > s.ts_ns
GROUP BY s.trace, s.step_index, s.name, i.device, i.cause
ORDER BY s.trace, s.step_index, i.device, idle_ns DESC, i.cause;

-- @output intervals
-- @column trace               TEXT      the trace (input file name) the row is about
-- @column device              ID        GPU device id as the trace gives it
-- @column gap_start_ns        TIMESTAMP G: when the device went idle
-- @column gap_ns              DURATION  length of the gap
-- @column cause               TEXT      the idle cause
-- @column host_phase          TEXT      phase_path of the CPU work that filled the gap (gpu_idle.sql:
--                                       host_phase)
-- @column next_op             TEXT      the op that ended the gap
-- @column next_launch_name    TEXT      the runtime call that launched it
-- @column next_launch_ts_ns   TIMESTAMP L0: its start
-- @column next_launch_end_ns  TIMESTAMP L1: end of the launch call
-- @column next_stream         ID        the stream of the next op
-- @column sync_call           TEXT      the blocking sync call of rule 6
-- @column sync_ts_ns          TIMESTAMP its start (S0)
-- @column sync_end_ns         TIMESTAMP S1: end of the sync call (sync_blocked rows)
-- @column wait_call           TEXT      the stream-wait call of rules 2-3
-- @column wait_ts_ns          TIMESTAMP W0: start of the stream-wait call
-- @column wait_stream         ID        the stream that waited
-- @column wait_evidence       TEXT      'gpu_sync_record' | 'thread_order'
-- @column event_record_call   TEXT      the event record call the wait named
-- @column event_record_ts_ns  TIMESTAMP its start
-- @column event_record_stream ID        the stream of the event record call (gpu_wait rows; NULL when the
--                                       trace does not have it)
-- @column note                NOTE      what is unknown and which capture option shows it
-- @column user_frame          FRAME     where in the code the next op was launched, the innermost user-code
--                                       Python frame around
--
--                                       Python frame around
WITH _top_gaps AS (  -- pick the rows on narrow columns, then fetch the names of those few
    SELECT * EXCLUDE (gap_end_ns) FROM gpu_idle_gaps WHERE NOT edge
    QUALIFY row_number() OVER (PARTITION BY trace ORDER BY gap_ns DESC, gap_start_ns, device, next_row_id)
            <= getvariable('idle_top_n')
)
SELECT t.trace, t.device, t.gap_start_ns, t.gap_ns, t.cause, t.host_phase, g.name AS next_op,
       g.launch_name AS next_launch_name, t.next_launch_ts_ns, t.next_launch_end_ns, t.next_stream,
       t.sync_call, t.sync_ts_ns, t.sync_end_ns, t.wait_call, t.wait_ts_ns, t.wait_stream, t.wait_evidence,
       t.event_record_call, t.event_record_ts_ns, t.event_record_stream, t.note, f.user_frame
FROM _top_gaps t JOIN gpu_activity g ON g.gid = t.next_gid
LEFT JOIN frames_runtime f ON f.trace = g.trace AND f.correlation = g.correlation AND f.tid = g.launch_tid
  AND f.ts_ns = g.launch_ts_ns AND f.launched
ORDER BY t.trace, t.gap_ns DESC, t.gap_start_ns, t.device, t.next_row_id;
