-- syncs: where does the host block waiting for the GPU, and why?
-- @requires _frames
--
-- Run it with `tracekit report` (or tracekit.report.run): that loads _common.sql first and sets every
-- getvariable() parameter to its documented default (tracekit/report.py: DEFAULTS).
--
-- Every sync API call on a CPU thread (see _common.sql: cudaStreamSynchronize,
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
-- built-ins) around the call, `file(line): function`, from the trace's Python frames (_frames.sql).
-- It is NULL when the trace has no Python frames (recorded without with_stack=True), or when no user
-- frame encloses the call.
--
-- Inputs: events (cpu_op rows); _rt, _gpu (from _common.sql); _rt_frame (_frames.sql). No parameters.
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
--   per trace: api, tid, ts_ns, dur_ns, phase_path, sync_class, op_chain, blocks_host, user_frame.
--
-- How to read: implicit rows with high blocked_ns are `.item()`/`.tolist()` style stalls;
-- top_gpu_op_during says what the host waited for.

CREATE OR REPLACE TEMP TABLE _sync_ops AS
SELECT trace, tid, seq, row_id, name, ts_ns, ts_ns + greatest(dur_ns, 0) AS end_ns
FROM events
WHERE kind = 'cpu_op' AND regexp_full_match(name,
      'aten::(item|_local_scalar_dense|nonzero|tolist|cpu|is_nonzero|equal|to|_to_copy|copy_|masked_select|unique|_unique2|repeat_interleave)');

CREATE OR REPLACE TEMP TABLE _sync_calls AS
WITH _s AS (SELECT * FROM _rt WHERE is_sync),
_ops_in AS (SELECT * FROM _sync_ops QUALIFY row_number() OVER (PARTITION BY trace, tid, ts_ns ORDER BY end_ns, row_id DESC) = 1),
_ops_out AS (SELECT * FROM _sync_ops QUALIFY row_number() OVER (PARTITION BY trace, tid, ts_ns ORDER BY end_ns DESC, row_id) = 1),
_in AS (  -- innermost syncing op started at or before the call
    SELECT s.*, o.name AS op_inner, o.seq AS op_seq, o.ts_ns AS op_ts, o.end_ns AS op_end
    FROM _s s ASOF LEFT JOIN _ops_in o ON s.trace = o.trace AND s.tid = o.tid AND s.ts_ns >= o.ts_ns
), _in2 AS (
    SELECT * REPLACE (CASE WHEN op_end >= end_ns THEN op_inner END AS op_inner,
                      CASE WHEN op_end >= end_ns THEN op_seq END AS op_seq,
                      CASE WHEN op_end >= end_ns THEN op_ts END AS op_ts,
                      CASE WHEN op_end >= end_ns THEN op_end END AS op_end)
    FROM _in
), _out AS (  -- its enclosing op of the same family (strictly earlier start)
    SELECT i.*, o.name AS op_outer, o.end_ns AS outer_end, o.ts_ns AS outer_ts
    FROM _in2 i ASOF LEFT JOIN _ops_out o ON i.trace = o.trace AND i.tid = o.tid AND i.op_ts > o.ts_ns
)
SELECT trace, name AS api, tid, ts_ns, end_ns, dur_ns, phase_path, blocking, row_id, user_frame,
       CASE WHEN op_inner IS NULL THEN 'explicit' ELSE 'implicit' END AS sync_class,
       CASE WHEN op_inner IS NULL THEN ''
            WHEN op_outer IS NOT NULL AND outer_end >= op_end THEN op_outer || ' > ' || op_inner
            ELSE op_inner END AS op_chain,
       CASE WHEN op_outer IS NOT NULL AND outer_end >= op_end THEN outer_ts ELSE op_ts END AS op_ts,
       op_end
FROM _out LEFT JOIN (SELECT trace, row_id, user_frame FROM _rt_frame) f USING (trace, row_id);

-- @output syncs
WITH _dtoh AS (  -- DtoH copies launched inside the op window of an implicit sync on that thread
    SELECT c.trace, c.ts_ns, c.tid, count(g.ts_ns) AS dtoh_copies
    FROM _sync_calls c JOIN _gpu g
      ON g.trace = c.trace AND g.launch_tid = c.tid AND g.launch_ts_ns >= c.op_ts AND g.launch_ts_ns <= c.op_end
     AND g.kind = 'memcpy' AND g.copy_kind LIKE 'DtoH%'
    WHERE c.sync_class = 'implicit'
    GROUP BY ALL
), _during AS (  -- GPU ops overlapping each blocking call (inequality join: few calls)
    SELECT c.trace, c.ts_ns, c.tid, g.name,
           least(g.end_ns, c.end_ns) - greatest(g.ts_ns, c.ts_ns) AS ns
    FROM _sync_calls c JOIN _gpu g ON g.trace = c.trace AND g.ts_ns < c.end_ns AND g.end_ns > c.ts_ns
    WHERE c.blocking
), _during_call AS (
    SELECT trace, ts_ns, tid, sum(ns) AS gpu_op_ns_during FROM _during GROUP BY ALL
), _top AS (
    SELECT c.trace, c.phase_path, c.sync_class, c.api, c.op_chain, c.user_frame, d.name, sum(d.ns) AS ns
    FROM _sync_calls c JOIN _during d USING (trace, ts_ns, tid) GROUP BY ALL
), _top1 AS (
    SELECT trace, phase_path, sync_class, api, op_chain, user_frame, first(name ORDER BY ns DESC, name) AS top_gpu_op_during
    FROM _top GROUP BY ALL
), _all AS (
    SELECT trace, sum(dur_ns) FILTER (WHERE blocking) AS blocked_ns_all FROM _sync_calls GROUP BY ALL
)
SELECT c.trace, c.phase_path, c.sync_class, c.api, c.op_chain, any_value(c.blocking) AS blocks_host,
       count(*) AS calls, sum(c.dur_ns)::BIGINT AS blocked_ns, avg(c.dur_ns) AS mean_blocked_ns,
       max(c.dur_ns) AS max_blocked_ns, coalesce(sum(x.dtoh_copies), 0)::BIGINT AS dtoh_copies,
       coalesce(sum(d.gpu_op_ns_during), 0)::BIGINT AS gpu_op_ns_during, any_value(t.top_gpu_op_during) AS top_gpu_op_during,
       any_value(a.blocked_ns_all)::BIGINT AS blocked_ns_all,
       CASE WHEN bool_and(c.blocking) THEN sum(c.dur_ns) / nullif(any_value(a.blocked_ns_all), 0) END AS share,
       c.user_frame
FROM _sync_calls c
LEFT JOIN _dtoh x USING (trace, ts_ns, tid)
LEFT JOIN _during_call d USING (trace, ts_ns, tid)
LEFT JOIN _top1 t ON t.trace = c.trace AND t.phase_path = c.phase_path AND t.sync_class = c.sync_class
  AND t.api = c.api AND t.op_chain = c.op_chain AND t.user_frame IS NOT DISTINCT FROM c.user_frame
LEFT JOIN _all a ON a.trace = c.trace
GROUP BY c.trace, c.phase_path, c.sync_class, c.api, c.op_chain, c.user_frame
ORDER BY c.trace, blocked_ns DESC, c.phase_path, c.sync_class, c.api, c.op_chain, c.user_frame NULLS FIRST;

-- @output calls
SELECT trace, api, tid, ts_ns, dur_ns, phase_path, sync_class, op_chain, blocking AS blocks_host, user_frame
FROM _sync_calls
QUALIFY row_number() OVER (PARTITION BY trace ORDER BY dur_ns DESC, ts_ns, tid, api, row_id) <= getvariable('sync_top_n')
ORDER BY trace, dur_ns DESC, ts_ns, tid, api, row_id;
