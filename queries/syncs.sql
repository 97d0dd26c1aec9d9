-- syncs: where does the host block waiting for the GPU, and why?
-- @requires gpu_idle lib/frames lib/gpu_activity lib/runtime
-- @param sync_top_n COUNT 50 longest sync calls listed per trace (output calls; nsys analyze lists 50)
--
-- Run it with `tracekit report` (or tracekit.report.run): that loads the modules on its @requires line first and sets
-- every getvariable() parameter to its default (its @param line; docs/queries.md).
--
-- Every sync API call on a CPU thread (see queries/lib/: cudaStreamSynchronize,
-- cudaDeviceSynchronize, cudaEventSynchronize, cudaStreamWaitEvent, synchronous cudaMemcpy*,
-- the hip* and cu* equivalents). A call is IMPLICIT when it runs inside a cpu_op that syncs
-- behind the user's back (aten::item, aten::_local_scalar_dense, aten::nonzero, aten::tolist,
-- aten::cpu, aten::to/_to_copy/copy_ producing a host tensor, aten::is_nonzero, aten::equal),
-- EXPLICIT otherwise. The enclosing op is found per thread with an ASOF join (latest-starting
-- such op at or before the call, kept when it also ends after the call), one level of
-- enclosing op of the same family gives the op chain (e.g. aten::item > aten::_local_scalar_dense).
-- Ties (ops of the family starting in the same ns on one thread, e.g. aten::to and aten::_to_copy)
-- are broken before the ASOF joins, never left to row order: as the inner op the shortest of them
-- (then the highest row_id), as the enclosing op the longest (then the lowest row_id).
-- Implicit syncs also count the device-to-host copies launched inside the same op.
-- Where in the code: user_frame is the innermost frame of user code (not torch internals, not
-- built-ins) around the call, `file(line): function`, from the trace's Python frames (lib/frames.sql).
-- It is NULL when the trace has no Python frames (recorded without with_stack=True), or when no user
-- frame encloses the call.
--
-- Inputs: events (cpu_op rows); runtime_calls, gpu_activity (queries/lib/); gpu_idle_gaps (gpu_idle.sql);
-- frames_runtime (lib/frames.sql). No parameters.
--
-- Output columns (one row per trace, phase_path, class, api, op_chain, user_frame):
--   trace, phase_path          phase of the sync call
--   sync_class                 explicit | implicit
--   api                        runtime API name
--   op_chain                   enclosing syncing op(s), outermost first ('' for explicit)
--   blocks_host                FALSE only for *StreamWaitEvent (a GPU-side wait)
--   calls                      number of calls
--   blocked_ns                 summed call duration (host time blocked; 0-ish for waits)
--   mean_blocked_ns, max_blocked_ns
--   dtoh_copies                DtoH copies launched inside the same enclosing op(s)
--   gpu_op_ns_during           summed GPU op time overlapping the calls, clipped to them
--                              (all streams of every device; overlapping ops each counted)
--   top_gpu_op_during          the GPU op name with most time inside the calls (equal times: first in text order)
--   blocked_ns_all             denominator: blocked_ns of all blocking sync calls in the trace
--   share                      blocked_ns / blocked_ns_all (NULL when it is 0, and for *StreamWaitEvent
--                              rows: they do not block the host, so are not part of blocked_ns_all)
--   user_frame                 innermost user-code Python frame around the calls (NULL: see above)
--
-- Output `calls`: the getvariable('sync_top_n') (default 50, like `nsys analyze`) longest sync calls
--   per trace: api, tid, ts_ns, dur_ns, phase_path, sync_class, op_chain, blocks_host, user_frame, and for a
--   blocking call what the GPU did meanwhile (syncs_during; NULL for stream waits):
--
-- How to read: implicit rows with high blocked_ns are `.item()`/`.tolist()` style stalls;
-- top_gpu_op_during says what the host waited for.

CREATE OR REPLACE TEMP TABLE _sync_ops AS
SELECT trace, tid, seq, row_id, name, ts_ns, ts_ns + greatest(dur_ns, 0) AS end_ns
FROM events
WHERE kind = 'cpu_op' AND regexp_full_match(name,
      'aten::(item|_local_scalar_dense|nonzero|tolist|cpu|is_nonzero|equal|to|_to_copy|copy_|'
      || 'masked_select|unique|_unique2|repeat_interleave)');

CREATE OR REPLACE TEMP TABLE _sync_calls AS
WITH _sync_rows AS (SELECT * FROM runtime_calls WHERE is_sync),
_ops_in AS (SELECT * FROM _sync_ops
            QUALIFY row_number() OVER (PARTITION BY trace, tid, ts_ns ORDER BY end_ns, row_id DESC) = 1),
_ops_out AS (SELECT * FROM _sync_ops
             QUALIFY row_number() OVER (PARTITION BY trace, tid, ts_ns ORDER BY end_ns DESC, row_id) = 1),
_with_inner AS (  -- innermost syncing op started at or before the call
    SELECT s.*, o.name AS op_inner, o.seq AS op_seq, o.ts_ns AS op_ts, o.end_ns AS op_end
    FROM _sync_rows s ASOF LEFT JOIN _ops_in o ON s.trace = o.trace AND s.tid = o.tid AND s.ts_ns >= o.ts_ns
), _inner_held AS (
    SELECT * REPLACE (CASE WHEN op_end >= end_ns THEN op_inner END AS op_inner,
                      CASE WHEN op_end >= end_ns THEN op_seq END AS op_seq,
                      CASE WHEN op_end >= end_ns THEN op_ts END AS op_ts,
                      CASE WHEN op_end >= end_ns THEN op_end END AS op_end)
    FROM _with_inner
), _with_outer AS (  -- its enclosing op of the same family (strictly earlier start)
    SELECT i.*, o.name AS op_outer, o.end_ns AS outer_end, o.ts_ns AS outer_ts
    FROM _inner_held i ASOF LEFT JOIN _ops_out o ON i.trace = o.trace AND i.tid = o.tid AND i.op_ts > o.ts_ns
)
SELECT trace, name AS api, tid, ts_ns, end_ns, dur_ns, phase_path, blocking, row_id, user_frame,
       CASE WHEN op_inner IS NULL THEN 'explicit' ELSE 'implicit' END AS sync_class,
       CASE WHEN op_inner IS NULL THEN ''
            WHEN op_outer IS NOT NULL AND outer_end >= op_end THEN op_outer || ' > ' || op_inner
            ELSE op_inner END AS op_chain,
       CASE WHEN op_outer IS NOT NULL AND outer_end >= op_end THEN outer_ts ELSE op_ts END AS op_ts,
       op_end
FROM _with_outer LEFT JOIN (SELECT trace, row_id, user_frame FROM frames_runtime) f USING (trace, row_id);

-- What the GPU did while each blocking call held the host (one row per blocking call with dur > 0):
-- the ops that ran during it, clipped to the call, as a union per device summed over devices (so
-- ops overlapping each other count once), the part of that union run by ops with no launching
-- call in the trace (launched before the trace window opened, or runtime activity not captured),
-- the phases the others were launched from, and, when the GPU was idle for most of the call, what
-- it waited on: the gpu_idle.sql gap (cause, stream wait call) overlapping the call the longest.
-- Every (blocking call, GPU op overlapping it) pair, the op clipped to the call [s, e): the one
-- inequality join of calls and GPU ops (few calls); syncs_during and the `syncs` output both read it.
CREATE OR REPLACE TEMP TABLE _sync_overlap AS
SELECT c.trace, c.row_id, c.ts_ns, c.tid, g.device, greatest(g.ts_ns, c.ts_ns) AS s, least(g.end_ns, c.end_ns) AS e,
       g.launch_ts_ns IS NULL AS unlaunched, g.phase_path, g.row_id AS op_row_id, g.name
FROM (SELECT trace, row_id, ts_ns, end_ns, tid FROM _sync_calls WHERE blocking) c
JOIN gpu_activity g ON g.trace = c.trace AND g.ts_ns < c.end_ns AND g.end_ns > c.ts_ns;

CREATE OR REPLACE TEMP TABLE syncs_during AS
WITH _blocking_calls AS (SELECT trace, row_id, ts_ns, end_ns FROM _sync_calls WHERE blocking AND end_ns > ts_ns),
_overlaps AS (SELECT * FROM _sync_overlap),
_sets AS (  -- every op for the union of all ops, and the unlaunched ones again for theirs
    SELECT trace, row_id, device, s, e, op_row_id, FALSE AS sub FROM _overlaps
    UNION ALL SELECT trace, row_id, device, s, e, op_row_id, TRUE FROM _overlaps WHERE unlaunched
), _islands AS (
    SELECT *, sum(CASE WHEN _pe IS NULL OR s > _pe THEN 1 ELSE 0 END)
              OVER (PARTITION BY trace, row_id, device, sub ORDER BY s, e, op_row_id ROWS UNBOUNDED PRECEDING) AS _i
    FROM (SELECT *, max(e) OVER (PARTITION BY trace, row_id, device, sub ORDER BY s, e, op_row_id
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS _pe FROM _sets)
), _union_per_call AS (
    SELECT trace, row_id, sum(ns) FILTER (WHERE NOT sub) AS busy_ns, sum(ns) FILTER (WHERE sub) AS unlaunched_ns
    FROM (SELECT trace, row_id, device, sub, _i, max(e) - min(s) AS ns FROM _islands GROUP BY ALL) GROUP BY ALL
), _op_counts AS (
    SELECT trace, row_id, count(*) AS ops, count(*) FILTER (WHERE unlaunched) AS unlaunched_ops
    FROM _overlaps GROUP BY ALL
), _top_phases AS (  -- launched ops' phases by their time inside the call, the 3 largest
    SELECT trace, row_id, list(phase_path ORDER BY ns DESC, phase_path) AS launched_from FROM (
        SELECT trace, row_id, phase_path, sum(e - s) AS ns FROM _overlaps WHERE NOT unlaunched
        GROUP BY trace, row_id, phase_path
        QUALIFY row_number() OVER (PARTITION BY trace, row_id ORDER BY ns DESC, phase_path) <= 3)
    GROUP BY ALL
), _longest_gap AS (  -- the device idle gap overlapping the call the longest
    SELECT b.trace, b.row_id, x.cause, x.wait_call, x.next_stream,
           least(x.gap_end_ns, b.end_ns) - greatest(x.gap_start_ns, b.ts_ns) AS ns
    FROM _blocking_calls b
    JOIN gpu_idle_gaps x ON x.trace = b.trace AND x.gap_start_ns < b.end_ns AND x.gap_end_ns > b.ts_ns
    QUALIFY row_number() OVER (PARTITION BY b.trace, b.row_id ORDER BY ns DESC, x.gap_start_ns, x.device) = 1
)
SELECT b.trace, b.row_id, coalesce(n.ops, 0) AS gpu_ops_during,
       coalesce(n.unlaunched_ops, 0) AS unlaunched_ops_during,
       coalesce(u.busy_ns, 0)::BIGINT AS gpu_busy_during_ns,
       coalesce(u.unlaunched_ns, 0)::BIGINT AS unlaunched_ns_during,
       p.launched_from,
       CASE WHEN 2 * coalesce(u.busy_ns, 0) >= b.end_ns - b.ts_ns OR w.ns IS NULL THEN NULL
            WHEN w.cause = 'gpu_wait'
                THEN 'its queued work waited on a stream wait (gpu_wait' || coalesce(': ' || w.wait_call, '')
                     || ' on stream ' || w.next_stream || ')'
            WHEN w.cause IN ('kernel_gap', 'queued_dependency')
                THEN 'queued work held by a dependency the trace does not show (' || w.cause || ')'
            WHEN w.cause = 'no_launch_record'
                THEN 'cause unknown, the next GPU op has no launch record (no_launch_record)'
            ELSE 'no GPU work was queued (' || w.cause || '), so the call cost only its own time' END AS waiting_on
FROM _blocking_calls b LEFT JOIN _op_counts n USING (trace, row_id) LEFT JOIN _union_per_call u USING (trace, row_id)
LEFT JOIN _top_phases p USING (trace, row_id) LEFT JOIN _longest_gap w USING (trace, row_id);

-- @output syncs
-- @column trace             TEXT      the trace (input file name) the row is about
-- @column phase_path        TEXT      the phase of the sync call
-- @column sync_class        TEXT      explicit | implicit
-- @column api               TEXT      runtime API name
-- @column op_chain          TEXT      enclosing syncing op(s), outermost first ('' for explicit)
-- @column blocks_host       BOOL      FALSE only for *StreamWaitEvent (a GPU-side wait)
-- @column calls             COUNT     number of calls
-- @column blocked_ns        DURATION  summed call duration (host time blocked; 0-ish for waits)
-- @column mean_blocked_ns   DURATION  mean host time blocked per call
-- @column max_blocked_ns    DURATION  longest host time blocked in one call
-- @column dtoh_copies       COUNT     DtoH copies launched inside the same enclosing op(s)
-- @column gpu_op_ns_during  DURATION  summed GPU op time overlapping the calls, clipped to them (all streams
--                                     of every device; overlapping ops each counted)
-- @column top_gpu_op_during TEXT      the GPU op name with most time inside the calls (equal times: first in
--                                     text order)
-- @column blocked_ns_all    DURATION  denominator: blocked_ns of all blocking sync calls in the trace
-- @column share             SHARE     blocked_ns / blocked_ns_all (NULL when it is 0, and for
--                                     *StreamWaitEvent rows: they do not block the host, so are not part of
--                                     blocked_ns_all)
-- @column user_frame        FRAME     innermost user-code Python frame around the calls (NULL: see above)
WITH _dtoh AS (  -- DtoH copies launched inside the op window of an implicit sync on that thread
    SELECT c.trace, c.ts_ns, c.tid, count(g.ts_ns) AS dtoh_copies
    FROM _sync_calls c JOIN gpu_activity g
      ON g.trace = c.trace AND g.launch_tid = c.tid AND g.launch_ts_ns >= c.op_ts AND g.launch_ts_ns <= c.op_end
     AND g.kind = 'memcpy' AND g.copy_kind LIKE 'DtoH%'
    WHERE c.sync_class = 'implicit'
    GROUP BY ALL
), _during AS (  -- GPU ops overlapping each blocking call, clipped to it
    SELECT trace, ts_ns, tid, name, e - s AS ns FROM _sync_overlap
), _during_call AS (
    SELECT trace, ts_ns, tid, sum(ns) AS gpu_op_ns_during FROM _during GROUP BY ALL
), _during_by_op AS (
    SELECT c.trace, c.phase_path, c.sync_class, c.api, c.op_chain, c.user_frame, d.name, sum(d.ns) AS ns
    FROM _sync_calls c JOIN _during d USING (trace, ts_ns, tid) GROUP BY ALL
), _top1 AS (
    SELECT trace, phase_path, sync_class, api, op_chain, user_frame,
           first(name ORDER BY ns DESC, name) AS top_gpu_op_during
    FROM _during_by_op GROUP BY ALL
), _blocked_total AS (
    SELECT trace, sum(dur_ns) FILTER (WHERE blocking) AS blocked_ns_all FROM _sync_calls GROUP BY ALL
)
SELECT c.trace, c.phase_path, c.sync_class, c.api, c.op_chain, any_value(c.blocking) AS blocks_host,
       count(*) AS calls, sum(c.dur_ns)::BIGINT AS blocked_ns, avg(c.dur_ns) AS mean_blocked_ns,
       max(c.dur_ns) AS max_blocked_ns, coalesce(sum(x.dtoh_copies), 0)::BIGINT AS dtoh_copies,
       coalesce(sum(d.gpu_op_ns_during), 0)::BIGINT AS gpu_op_ns_during,
       any_value(t.top_gpu_op_during) AS top_gpu_op_during,
       any_value(a.blocked_ns_all)::BIGINT AS blocked_ns_all,
       CASE WHEN bool_and(c.blocking) THEN sum(c.dur_ns) / nullif(any_value(a.blocked_ns_all), 0) END AS share,
       c.user_frame
FROM _sync_calls c
LEFT JOIN _dtoh x USING (trace, ts_ns, tid)
LEFT JOIN _during_call d USING (trace, ts_ns, tid)
LEFT JOIN _top1 t ON t.trace = c.trace AND t.phase_path = c.phase_path AND t.sync_class = c.sync_class
  AND t.api = c.api AND t.op_chain = c.op_chain AND t.user_frame IS NOT DISTINCT FROM c.user_frame
LEFT JOIN _blocked_total a ON a.trace = c.trace
GROUP BY c.trace, c.phase_path, c.sync_class, c.api, c.op_chain, c.user_frame
ORDER BY c.trace, blocked_ns DESC, c.phase_path, c.sync_class, c.api, c.op_chain, c.user_frame NULLS FIRST;

-- @output calls
-- @column trace                 TEXT      the trace (input file name) the row is about
-- @column api                   TEXT      runtime API name
-- @column tid                   ID        thread id
-- @column ts_ns                 TIMESTAMP start
-- @column dur_ns                DURATION  duration
-- @column phase_path            TEXT      the phase of the sync call
-- @column sync_class            TEXT      explicit | implicit
-- @column op_chain              TEXT      enclosing syncing op(s), outermost first ('' for explicit)
-- @column blocks_host           BOOL      FALSE only for *StreamWaitEvent (a GPU-side wait)
-- @column gpu_ops_during        COUNT     GPU ops that ran during the call (any stream, any device)
-- @column gpu_busy_during_ns    DURATION  union of those ops clipped to the call, per device, summed over
--                                         devices
-- @column unlaunched_ops_during COUNT     the same for the ops with no launching call in the trace (launched
--                                         before the trace window opened: the sync drained them)
-- @column unlaunched_ns_during  DURATION  the same for the ops with no launching call in the trace (launched
--                                         before the trace window opened: the sync drained them)
-- @column launched_from         TEXT      the phase paths (a list, up to 3, most time first) the other ops
--                                         were launched in
-- @column waiting_on            TEXT      when the GPU was idle for more than half the call: the cause of the
--                                         idle gap that overlaps it most (gpu_idle.sql), and its stream wait
--                                         call if any
-- @column user_frame            FRAME     innermost user-code Python frame around the call (NULL: no Python
--                                         frames, or none encloses it)
SELECT c.trace, c.api, c.tid, c.ts_ns, c.dur_ns, c.phase_path, c.sync_class, c.op_chain, c.blocking AS blocks_host,
       d.gpu_ops_during, d.gpu_busy_during_ns, d.unlaunched_ops_during, d.unlaunched_ns_during, d.launched_from,
       d.waiting_on, c.user_frame
FROM _sync_calls c LEFT JOIN syncs_during d USING (trace, row_id)
QUALIFY row_number() OVER (PARTITION BY c.trace ORDER BY c.dur_ns DESC, c.ts_ns, c.tid, c.api, c.row_id)
        <= getvariable('sync_top_n')
ORDER BY c.trace, c.dur_ns DESC, c.ts_ns, c.tid, c.api, c.row_id;
