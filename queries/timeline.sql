-- timeline: the median step of every trace, as boxes on CPU-thread and GPU-stream lanes, with the
-- launch -> GPU op links: the input of the HTML report's timeline (tracekit.view.timeline).
-- @requires steps lib/gpu_activity lib/modules lib/runtime lib/step_instances
--
-- Run by `tracekit report --html` on the report's connection, after steps.sql (it reads steps.sql's
-- temp tables steps_median, steps_gpu, steps_ranges, its steps_rel_phase macro, gpu_activity/runtime_calls of
-- queries/lib/, and modules_gpu_phase of lib/modules.sql, which steps.sql requires).
--
-- The median step of each trace: steps.sql's steps_median (the rule is written there once), so every
-- process of a multi-process run gets its timeline.
--
-- The GPU lanes hold every GPU op of the trace that overlaps the step's window [step start, step end)
-- on any device, launched in the step or not, plus the ops launched in the step that run past its end:
-- a host blocked in a sync beside a busy GPU shows what the GPU ran, even when those ops were
-- launched before the trace window opened (no launch record in the trace: `launch` = 'none').
--
-- Output `timeline` (one row per box; the rows of one trace all belong to its median step):

-- every GPU op of the median step's window, or launched in it
CREATE OR REPLACE TEMP TABLE _tl_gpu AS
SELECT m.trace, g.gid, gs.step_index AS launch_step, gs.step_path,
       CASE WHEN gs.step_index = m.step_index THEN 'step' WHEN gs.step_index IS NOT NULL THEN 'other_step'
            WHEN g.launch_ts_ns IS NOT NULL THEN 'outside_steps' ELSE 'none' END AS launch
FROM steps_median m JOIN gpu_activity g ON g.trace = m.trace
LEFT JOIN steps_gpu gs ON gs.gid = g.gid
WHERE gs.step_index = m.step_index
   OR (g.ts_ns < m.step_ts_ns + m.step_wall_ns AND greatest(g.end_ns, g.ts_ns + 1) > m.step_ts_ns);

-- the GPU index of each op device id (trace_devices.gpu_index; the id itself when the trace lists no GPU)
CREATE OR REPLACE TEMP TABLE _tl_dev AS
SELECT g.trace, g.device,
       CASE WHEN NOT EXISTS (SELECT 1 FROM trace_devices d WHERE d.trace = g.trace) THEN g.device
            ELSE (SELECT max(d.gpu_index) FROM trace_devices d WHERE d.trace = g.trace AND d.device = g.device)
       END AS gpu_index
FROM (SELECT DISTINCT n.trace, n.device FROM _tl_gpu t JOIN gpu_activity n USING (gid)) g;

-- @output timeline
-- @column trace        TEXT      the trace (input file name) of the median step
-- @column step_index   ID        the median step's number in its trace
-- @column step_kind    TEXT      the median step's kind
-- @column step_name    TEXT      the median step's range name
-- @column step_ts_ns   TIMESTAMP start of the median step
-- @column step_wall_ns DURATION  wall time of the median step
-- @column lane_kind    TEXT      'cpu' | 'gpu'
-- @column lane         TEXT      'CPU tid N' | 'GPU g stream s' (display order: CPU lanes by tid, then GPU by
--                                g, stream). g is trace_devices.gpu_index, the GPU index `tracekit info`
--                                prints (a ROCm HSA agent id mapped to its listed GPU; tracekit.store
--                                documents the rule); the op's device id when the trace lists no GPU; 'GPU ?
--                                (agent d)' when the HSA agent id d maps to no one listed GPU; 'GPU ?' for
--                                ops with no device id
-- @column row_kind     TEXT      'range' (a CPU range), 'runtime' (a launching or blocking-sync runtime call
--                                that starts inside the step window, any thread), 'gpu_op'
-- @column name         TEXT      range / API / kernel name
-- @column ts_ns        TIMESTAMP start (same clock as the trace)
-- @column dur_ns       DURATION  duration
-- @column phase_path   TEXT      phase relative to the step, as the phase tree (headline.phase_tree) names
--                                it: '(other)' = directly in the step, in no phase; a range's own path, a
--                                runtime call's or GPU op's launching path. A GPU op launched in another
--                                step: its path relative to that step; launched outside every step: its full
--                                path ('(none)': in no range); no launch record: '(no launch record)'. GPU
--                                ops by their effective phase (lib/modules.sql, as the phase tree: a module path
--                                where no user range below the step covers the launch); CPU ranges and
--                                runtime calls by their range path (module calls are not drawn)
-- @column depth        ID        ranges: nesting level inside the step (1 = top level); NULL otherwise
-- @column blocking     BOOL      runtime rows: TRUE for a blocking sync call
-- @column launch_tid   ID        GPU ops: the thread of the runtime call that launched them (NULL when
--                                unknown)
-- @column launch_ts_ns TIMESTAMP GPU ops: the start of the runtime call that launched them (NULL when
--                                unknown: no runtime rows)
-- @column launch       TEXT      GPU ops: 'step' (launched in this step), 'other_step' (launched in another
--                                step, still running), 'outside_steps' (launched in the trace, in no step),
--                                'none' (no launch record: launched before the trace window opened, or its
--                                runtime call was not captured); NULL for CPU rows
-- @column launch_step  COUNT     GPU ops launched in a step: that step's step_index; NULL otherwise
SELECT * EXCLUDE (_lk, _l1, _l2) FROM (
    SELECT m.*, 'cpu' AS lane_kind, 'CPU tid ' || r.tid AS lane, 'range' AS row_kind, r.name, r.ts_ns, r.dur_ns,
           steps_rel_phase(r.phase_path, r.step_path) AS phase_path,
           len(string_split(steps_rel_phase(r.phase_path, r.step_path), '/')) AS depth,
           NULL::BOOLEAN AS blocking, NULL::BIGINT AS launch_tid, NULL::BIGINT AS launch_ts_ns, NULL::VARCHAR AS launch,
           NULL::BIGINT AS launch_step,
           0 AS _lk, r.tid AS _l1, 0 AS _l2
    FROM steps_ranges r JOIN steps_median m USING (trace, step_index)
    UNION ALL
    SELECT m.*, 'cpu', 'CPU tid ' || t.tid, 'runtime', t.name, t.ts_ns, t.dur_ns,
           steps_rel_phase(t.phase_path, s.phase_path), NULL, t.blocking, NULL, NULL, NULL, NULL, 0, t.tid, 0
    FROM runtime_calls t JOIN steps_median m USING (trace)
    JOIN step_instances s ON s.trace = m.trace AND s.step_index = m.step_index
    WHERE (t.launched OR t.blocking) AND t.ts_ns >= m.step_ts_ns AND t.ts_ns < m.step_ts_ns + m.step_wall_ns
    UNION ALL
    SELECT m.*, 'gpu',
           CASE WHEN d.gpu_index IS NOT NULL THEN 'GPU ' || d.gpu_index WHEN n.device < 0 THEN 'GPU ?'
                ELSE 'GPU ? (agent ' || n.device || ')' END
               || ' stream ' || coalesce(n.stream::VARCHAR, '?'),
           'gpu_op', n.name, n.ts_ns, n.dur_ns,
           CASE t.launch WHEN 'none' THEN '(no launch record)' WHEN 'outside_steps' THEN gp.eff_phase_path
                ELSE steps_rel_phase(gp.eff_phase_path, t.step_path) END,
           NULL, NULL, n.launch_tid, n.launch_ts_ns, t.launch, t.launch_step,
           1, coalesce(d.gpu_index, n.device), coalesce(n.stream, -1)
    FROM _tl_gpu t JOIN steps_median m USING (trace) JOIN gpu_activity n USING (gid)
    JOIN modules_gpu_phase gp USING (gid)
    LEFT JOIN _tl_dev d ON d.trace = n.trace AND d.device = n.device
)
ORDER BY trace, _lk, _l1, _l2, ts_ns, row_kind;
