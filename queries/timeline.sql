-- timeline: the median step of every trace, as boxes on CPU-thread and GPU-stream lanes, with the
-- launch -> GPU op links: the input of the HTML report's timeline (tracekit.view.timeline).
-- @requires steps
--
-- Run by `tracekit report --html` on the report's connection, after steps.sql (it reads steps.sql's
-- temp tables _median_step, _gpu_step, _range_step, its _rel_phase macro, and _gpu/_rt of _common.sql).
--
-- The median step of each trace: steps.sql's _median_step (the rule is written there once), so every
-- process of a multi-process run gets its timeline.
--
-- Output `timeline` (one row per box; the rows of one trace all belong to its median step):
--   trace, step_index, step_kind, step_name, step_ts_ns, step_wall_ns   the median step
--   lane_kind      'cpu' | 'gpu'
--   lane           'CPU tid N' | 'GPU d stream s' (display order: CPU lanes by tid, then GPU by device, stream)
--   row_kind       'range' (a CPU range), 'runtime' (a launching or blocking-sync runtime call that
--                  starts inside the step window, any thread), 'gpu_op'
--   name           range / API / kernel name
--   ts_ns, dur_ns  start and duration (ns, same clock as the trace)
--   phase_path     phase relative to the step ('(other)': directly in the step, in none of its phases): a range's own path,
--                  a runtime call's or GPU op's launching path
--   depth          ranges: nesting level inside the step (1 = top level); NULL otherwise
--   blocking       runtime rows: TRUE for a blocking sync call
--   launch_tid, launch_ts_ns   GPU ops: the thread and start of the runtime call that launched them
--                  (NULL when unknown: no runtime rows); the HTML draws a link from one to the other


-- @output timeline
SELECT * FROM (
    SELECT m.*, 'cpu' AS lane_kind, 'CPU tid ' || r.tid AS lane, 'range' AS row_kind, r.name, r.ts_ns, r.dur_ns,
           _rel_phase(r.phase_path, r.step_path) AS phase_path,
           len(string_split(_rel_phase(r.phase_path, r.step_path), '/')) AS depth,
           NULL::BOOLEAN AS blocking, NULL::BIGINT AS launch_tid, NULL::BIGINT AS launch_ts_ns,
           0 AS _lk, r.tid AS _l1, 0 AS _l2
    FROM _range_step r JOIN _median_step m USING (trace, step_index)
    UNION ALL
    SELECT m.*, 'cpu', 'CPU tid ' || t.tid, 'runtime', t.name, t.ts_ns, t.dur_ns,
           _rel_phase(t.phase_path, s.phase_path), NULL, t.blocking, NULL, NULL, 0, t.tid, 0
    FROM _rt t JOIN _median_step m USING (trace)
    JOIN _steps s ON s.trace = m.trace AND s.step_index = m.step_index
    WHERE (t.launched OR t.blocking) AND t.ts_ns >= m.step_ts_ns AND t.ts_ns < m.step_ts_ns + m.step_wall_ns
    UNION ALL
    SELECT m.*, 'gpu', 'GPU ' || g.device || ' stream ' || coalesce(g.stream::VARCHAR, '?'), 'gpu_op', n.name,
           g.ts_ns, g.dur_ns, _rel_phase(g.phase_path, g.step_path), NULL, NULL, n.launch_tid, n.launch_ts_ns,
           1, g.device, coalesce(g.stream, -1)
    FROM _gpu_step g JOIN _median_step m USING (trace, step_index) JOIN _gpu n USING (gid)
)
ORDER BY trace, _lk, _l1, _l2, ts_ns, row_kind;
