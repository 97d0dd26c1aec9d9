-- timeline: the median step of every trace, as boxes on CPU-thread and GPU-stream lanes, with the
-- launch -> GPU op links: the input of the HTML report's timeline (tracekit.view.timeline).
-- @requires steps
--
-- Run by `tracekit report --html` on the report's connection, after steps.sql (it reads steps.sql's
-- temp tables _step_rows, _gpu_step, _range_step, its _rel_phase macro, and _gpu/_rt of _common.sql).
--
-- The median step of a trace: among the steps of the trace's most frequent step kind (ties: the
-- first kind by name), the one whose wall_ns is closest to their median (quantile_disc; ties: the
-- lower step_index). Same rule as steps.median_step_ops, taken per trace instead of for the first
-- trace only, so every process of a multi-process run gets its timeline.
--
-- Output `timeline` (one row per box; the rows of one trace all belong to its median step):
--   trace, step_index, step_kind, step_name, step_ts_ns, step_wall_ns   the median step
--   lane_kind      'cpu' | 'gpu'
--   lane           'CPU tid N' | 'GPU d stream s' (display order: CPU lanes by tid, then GPU by device, stream)
--   row_kind       'range' (a CPU range), 'runtime' (a launching or blocking-sync runtime call that
--                  starts inside the step window, any thread), 'gpu_op'
--   name           range / API / kernel name
--   ts_ns, dur_ns  start and duration (ns, same clock as the trace)
--   phase_path     phase relative to the step ('(self)': directly in the step): a range's own path,
--                  a runtime call's or GPU op's launching path
--   depth          ranges: nesting level inside the step (1 = top level); NULL otherwise
--   blocking       runtime rows: TRUE for a blocking sync call
--   launch_tid, launch_ts_ns   GPU ops: the thread and start of the runtime call that launched them
--                  (NULL when unknown: no runtime rows); the HTML draws a link from one to the other

CREATE OR REPLACE TEMP TABLE _tl_med AS
WITH _kinds AS (
    SELECT trace, step_kind, row_number() OVER (PARTITION BY trace ORDER BY count(*) DESC, step_kind) AS rk
    FROM _step_rows GROUP BY trace, step_kind
), _s AS (
    SELECT s.* FROM _step_rows s JOIN _kinds k USING (trace, step_kind) WHERE k.rk = 1
), _p50 AS (
    SELECT trace, quantile_disc(wall_ns, 0.5) AS p50 FROM _s GROUP BY trace
)
SELECT s.trace, s.step_index, s.step_kind, s.step_name, s.ts_ns AS step_ts_ns, s.wall_ns AS step_wall_ns
FROM _s s JOIN _p50 p USING (trace)
QUALIFY row_number() OVER (PARTITION BY s.trace ORDER BY abs(s.wall_ns - p.p50), s.step_index) = 1;

-- @output timeline
SELECT * FROM (
    SELECT m.*, 'cpu' AS lane_kind, 'CPU tid ' || r.tid AS lane, 'range' AS row_kind, r.name, r.ts_ns, r.dur_ns,
           _rel_phase(r.phase_path, r.step_path) AS phase_path,
           len(string_split(_rel_phase(r.phase_path, r.step_path), '/')) AS depth,
           NULL::BOOLEAN AS blocking, NULL::BIGINT AS launch_tid, NULL::BIGINT AS launch_ts_ns,
           0 AS _lk, r.tid AS _l1, 0 AS _l2
    FROM _range_step r JOIN _tl_med m USING (trace, step_index)
    UNION ALL
    SELECT m.*, 'cpu', 'CPU tid ' || t.tid, 'runtime', t.name, t.ts_ns, t.dur_ns,
           _rel_phase(t.phase_path, s.phase_path), NULL, t.blocking, NULL, NULL, 0, t.tid, 0
    FROM _rt t JOIN _tl_med m USING (trace)
    JOIN _steps s ON s.trace = m.trace AND s.step_index = m.step_index
    WHERE (t.launched OR t.blocking) AND t.ts_ns >= m.step_ts_ns AND t.ts_ns < m.step_ts_ns + m.step_wall_ns
    UNION ALL
    SELECT m.*, 'gpu', 'GPU ' || g.device || ' stream ' || coalesce(g.stream::VARCHAR, '?'), 'gpu_op', n.name,
           g.ts_ns, g.dur_ns, _rel_phase(g.phase_path, g.step_path), NULL, NULL, n.launch_tid, n.launch_ts_ns,
           1, g.device, coalesce(g.stream, -1)
    FROM _gpu_step g JOIN _tl_med m USING (trace, step_index) JOIN _gpu n USING (gid)
)
ORDER BY trace, _lk, _l1, _l2, ts_ns, row_kind;
