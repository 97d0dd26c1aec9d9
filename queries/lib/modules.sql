-- lib/modules: phases from the model's module hierarchy, for GPU ops, runtime calls and cpu_ops
-- launched where no user range says more than "this is a step" (issue 22 item 1).
-- @requires lib/gpu_activity lib/runtime
--
-- Loaded through `-- @requires lib/modules` by the analyses that read phases (steps.sql, and through it headline
-- and tokens; phase_time.sql, flops.sql, lm_head.sql). The
-- stored columns phase / phase_path are never changed: the effective phase is derived here, per row.
--
-- MODULE INTERVALS, per trace, from its Python rows (kind 'python'), one source per trace:
--   'module'  torch.profiler with_modules=True: rows named `nn.Module: <Class>_<k>` (k numbers the instances of
--             the class); the label is the class without the instance index (`nn.Module: Qwen2DecoderLayer_3`
--             -> `Qwen2DecoderLayer`), so the 24 layers of a model are one phase with 24 instances.
--   'frame'   only when the trace has no module row at all (with_stack=True alone): frames of `forward`
--             methods, `<path>/<file>.py(<line>): forward`; the label is `<file stem>.forward:<line>`
--             (`modeling_qwen2.forward:218`). A frame names its file, line and function, never its class:
--             the line (the `def` line of that forward) keeps the classes of one file apart (attention, MLP
--             and norm of modeling_qwen2.py would otherwise be one phase).
--   Rows of zero duration are ignored (they enclose nothing). A trace with neither has no module phases.
-- NESTING, per thread, as lib/frames.sql walks frames (no interval join): each interval's start (+1) and end (-1)
--   in one order per (trace, tid) (time; at one instant ends before starts, starts outermost first: later end
--   first, then row_id); the running sum is the depth. An interval's parent is the last one opened at depth - 1
--   before it; the innermost open interval at time t is the last one opened at the depth in force at t.
-- MODULE PATH of an interval: the labels of its enclosing intervals and its own, outermost first, joined by
--   '/' (`Qwen2Model/Qwen2DecoderLayer/Qwen2MLP`), counted only from inside the interval's innermost user
--   range: the chain restarts where the enclosing interval lies in another range (a module that encloses the
--   step range itself is not a phase of that step).
-- EFFECTIVE PHASE of a row (a GPU op by its launching call: launch_tid, launch_ts_ns, launch_dur_ns; a runtime
--   call or cpu_op by its own thread and time): its innermost module interval on its thread (open at its start,
--   ending at or after its end; the interval's range path must be the row's: it lies inside the same innermost
--   range) gives module path M. When the row's innermost range is a step range (its name fully matches
--   getvariable('step_pattern'), e.g. `ProfilerStep#6`) or there is no range, and M exists:
--       effective path = range path + '/' + M (just M without a range), phase_source = 'module' | 'frame';
--   else the range path itself (user ranges win wherever they say more than the step): phase_source 'range'
--   (when the path holds only the step: the phase tree's '(other)'), or NULL when there is neither.
--   A CUDA-graph replay takes the effective phase of its graph launch, as it takes the launch's range phase.
--
-- Tables and macros (`_x` private to this file; modules_* public):
--   _mod_src    per trace with module intervals: source ('module' | 'frame').
--   modules_intervals     the intervals: trace, pid, tid, row_id, seq, ts_ns, end_ns, dur_ns, label, range_path and
--               range_phase (the Python row's stored phase_path / phase), module_path, source, and
--               eff_phase_path (range path + '/' + module_path; NULL when a user range below the step
--               encloses the interval: that range wins, the interval is no phase).
--   modules_gpu_phase  one row per gpu_activity row: gid, trace, row_id, eff_phase_path ('(none)' when none, like
--               gpu_activity.phase_path), phase_source, module_path (NULL unless the module path was appended).
--   modules_cpu_phase  the runtime calls that launched a GPU op and the cpu_ops whose effective phase is NOT their
--               stored one (a module path was appended): trace, row_id, eff_phase_path, phase_source,
--               module_path. Rows absent here keep their stored path: read them through the macros
--               modules_eff_path(m.eff_phase_path, phase_path) and modules_eff_src(m.phase_source, phase_path) after a
--               LEFT JOIN on (trace, row_id).
--   modules_cpu    CPU time of the module phases, for the phase tree (headline), steps.phases and phase_time:
--               trace, pid, tid, row_id, seq, ts_ns, dur_ns, phase_path (effective), phase_source, sign.
--               sign +1: a module interval that is a phase (eff_phase_path not NULL), one instance.
--               sign -1: a user range (not a step range) directly inside such an interval's range, and inside
--               the interval: its time belongs to the range's own path, so it is taken off the interval's
--               path and every module ancestor's path (one row each). Summing sign * time per path then gives
--               module time inclusive of child modules but not of user ranges, and exclusive shares still add
--               up to 1 over a step.
--   Macros: modules_eff_path, modules_eff_src (above), _mod_is_step(name) (a step range's name),
--   modules_src_union(a, b) (two comma-separated phase_source lists as one, sorted and distinct; NULL when both are
--   empty), modules_src_agg(x) (an aggregate: the union of the lists of a group's rows).
-- Cost: one pass over the python rows' distinct names, then linear in module intervals + placed rows (ASOF
-- joins and one window sort, as lib/frames.sql); traces without python rows place nothing.
-- Where user ranges and modules both exist they are combined, never doubled: GPU ops inside a user range
-- below the step take the range path, those directly in the step take the module path.

CREATE OR REPLACE TEMP MACRO _mod_is_step(ph) AS coalesce(regexp_full_match(ph, getvariable('step_pattern')), FALSE);
CREATE OR REPLACE TEMP MACRO modules_eff_path(m, pp) AS coalesce(m, pp);
CREATE OR REPLACE TEMP MACRO modules_eff_src(m, pp) AS
    coalesce(m, CASE WHEN pp IS NOT NULL AND pp <> '(none)' THEN 'range' END);
-- two comma-separated source lists as one (sorted, distinct; NULL when both are empty)
CREATE OR REPLACE TEMP MACRO modules_src_union(a, b) AS nullif(array_to_string(list_sort(list_distinct(list_filter(
    flatten([string_split(coalesce(a, ''), ','), string_split(coalesce(b, ''), ',')]), lambda v: v <> ''))), ','), '');
CREATE OR REPLACE TEMP MACRO modules_src_agg(x) AS modules_src_union(string_agg(x, ','), NULL);
CREATE OR REPLACE TEMP MACRO _mod_is_forward(n) AS regexp_full_match(n, '.*\([0-9]+\): forward');

CREATE OR REPLACE TEMP TABLE _mod_src AS
WITH _python_names AS (SELECT DISTINCT trace, name FROM events WHERE kind = 'python')
SELECT trace, CASE WHEN bool_or(starts_with(name, 'nn.Module: ')) THEN 'module' ELSE 'frame' END AS source
FROM _python_names WHERE starts_with(name, 'nn.Module: ') OR _mod_is_forward(name)
GROUP BY trace;

-- Labels once per distinct name; then the rows.
CREATE OR REPLACE TEMP TABLE _mod_rows AS
WITH _python_names AS (SELECT DISTINCT trace, name FROM events
                       WHERE kind = 'python' AND trace IN (SELECT trace FROM _mod_src)),
_labeled AS (
    SELECT n.trace, n.name, s.source,
           CASE s.source WHEN 'module' THEN nullif(regexp_extract(n.name, '^nn\.Module: (.*?)(?:_[0-9]+)?$', 1), '')
                ELSE regexp_replace(n.name, '^(?:.*[/\\])?([^/\\]*?)(?:\.py)?\(([0-9]+)\): forward$', '\1.forward:\2')
           END AS label
    FROM _python_names n JOIN _mod_src s USING (trace)
    WHERE CASE s.source WHEN 'module' THEN starts_with(n.name, 'nn.Module: ') ELSE _mod_is_forward(n.name) END
)
SELECT e.trace, e.pid, e.tid, e.row_id, e.seq, e.ts_ns, e.ts_ns + e.dur_ns AS end_ns, e.dur_ns, l.label, l.source,
       e.phase_path AS range_path, e.phase AS range_phase
FROM events e JOIN _labeled l ON l.trace = e.trace AND l.name = e.name
WHERE e.kind = 'python' AND e.dur_ns > 0 AND e.ts_ns IS NOT NULL AND l.label IS NOT NULL;

CREATE OR REPLACE TEMP TABLE _mod_d AS  -- boundaries (ph 0 = an end, ph 1 = a start) and the depth after each
WITH _boundaries AS (
    SELECT trace, tid, ts_ns AS t, 1 AS ph, 1 AS d, end_ns, row_id FROM _mod_rows
    UNION ALL SELECT trace, tid, end_ns, 0, -1, end_ns, row_id FROM _mod_rows
)
SELECT *, sum(d) OVER w AS depth, coalesce(lead(t) OVER w <> t, TRUE) AS last_of_instant
FROM _boundaries
WINDOW w AS (PARTITION BY trace, tid ORDER BY t, ph, end_ns DESC, row_id ROWS UNBOUNDED PRECEDING);

-- each interval at its depth: (trace, tid, depth, f_ts) is unique (the starts of one instant go one level deeper each)
CREATE OR REPLACE TEMP TABLE _mod_open AS
SELECT trace, tid, depth, depth - 1 AS pdepth, t AS f_ts, end_ns AS f_end, row_id FROM _mod_d WHERE ph = 1;

-- the step function: from t_ns on, until the thread's next boundary, the innermost open interval is mod_row_id
CREATE OR REPLACE TEMP TABLE _mod_at AS
SELECT p.trace, p.tid, p.t AS t_ns, o.row_id AS mod_row_id, o.f_end AS mod_end_ns
FROM (SELECT trace, tid, t, depth FROM _mod_d WHERE last_of_instant) p
ASOF LEFT JOIN _mod_open o ON p.trace = o.trace AND p.tid = o.tid AND p.depth = o.depth AND p.t >= o.f_ts;

CREATE OR REPLACE TEMP TABLE modules_intervals AS
WITH RECURSIVE _parents AS (  -- parent: the last interval opened one level up (kept when it encloses the child)
    SELECT o.trace, o.row_id, CASE WHEN p.f_end >= o.f_end THEN p.row_id END AS parent_row_id
    FROM _mod_open o
    ASOF LEFT JOIN _mod_open p ON o.trace = p.trace AND o.tid = p.tid AND o.pdepth = p.depth AND o.f_ts >= p.f_ts
), _with_parent AS (
    SELECT r.trace, r.row_id, r.label, r.range_path,
           CASE WHEN q.range_path IS NOT DISTINCT FROM r.range_path THEN p.parent_row_id END AS parent_row_id
    FROM _mod_rows r JOIN _parents p USING (trace, row_id)
    LEFT JOIN _mod_rows q ON q.trace = p.trace AND q.row_id = p.parent_row_id
), _paths(trace, row_id, module_path) AS (
    SELECT trace, row_id, label FROM _with_parent WHERE parent_row_id IS NULL
    UNION ALL
    SELECT c.trace, c.row_id, p.module_path || '/' || c.label
    FROM _with_parent c JOIN _paths p ON c.trace = p.trace AND c.parent_row_id = p.row_id
)
SELECT r.*, p.module_path,
       CASE WHEN r.range_phase IS NULL OR _mod_is_step(r.range_phase)
            THEN coalesce(r.range_path || '/', '') || p.module_path END AS eff_phase_path
FROM _mod_rows r JOIN _paths p USING (trace, row_id);

-- Rows to place: GPU ops (by their launch), runtime calls that launched, cpu_ops; in traces with intervals only.
CREATE OR REPLACE TEMP TABLE _mod_place AS
WITH _placeable AS (
    SELECT 'gpu' AS k, trace, gid AS key, launch_tid AS tid, launch_ts_ns AS ts_ns,
           launch_ts_ns + greatest(coalesce(launch_dur_ns, 0), 0) AS end_ns, phase,
           nullif(phase_path, '(none)') AS phase_path
    FROM gpu_activity WHERE launch_ts_ns IS NOT NULL AND trace IN (SELECT trace FROM _mod_src)
    UNION ALL
    SELECT 'cpu', trace, row_id, tid, ts_ns, end_ns, phase, nullif(phase_path, '(none)') FROM runtime_calls
    WHERE launched AND trace IN (SELECT trace FROM _mod_src)
    UNION ALL
    SELECT 'cpu', trace, row_id, tid, ts_ns, ts_ns + greatest(dur_ns, 0), phase, phase_path FROM events
    WHERE kind = 'cpu_op' AND ts_ns IS NOT NULL AND trace IN (SELECT trace FROM _mod_src)
), _placed AS (
    SELECT a.*, CASE WHEN f.mod_end_ns >= a.end_ns THEN f.mod_row_id END AS mod_row_id
    FROM _placeable a ASOF LEFT JOIN _mod_at f ON a.trace = f.trace AND a.tid = f.tid AND a.ts_ns >= f.t_ns
)
SELECT m.k, m.trace, m.key, i.module_path, i.source AS phase_source,
       coalesce(m.phase_path || '/', '') || i.module_path AS eff_phase_path
FROM _placed m JOIN modules_intervals i ON i.trace = m.trace AND i.row_id = m.mod_row_id
WHERE (m.phase IS NULL OR _mod_is_step(m.phase)) AND i.range_path IS NOT DISTINCT FROM m.phase_path;

CREATE OR REPLACE TEMP TABLE modules_gpu_phase AS
SELECT g.gid, g.trace, g.row_id, coalesce(p.eff_phase_path, g.phase_path) AS eff_phase_path,
       modules_eff_src(p.phase_source, g.phase_path) AS phase_source, p.module_path
FROM gpu_activity g LEFT JOIN (SELECT * FROM _mod_place WHERE k = 'gpu') p ON p.trace = g.trace AND p.key = g.gid;

CREATE OR REPLACE TEMP TABLE modules_cpu_phase AS
SELECT trace, key AS row_id, eff_phase_path, phase_source, module_path FROM _mod_place WHERE k = 'cpu';

CREATE OR REPLACE TEMP TABLE modules_cpu AS
WITH _user_ranges AS (  -- user ranges that are not steps, each with the innermost interval open around it
    SELECT r.trace, r.tid, r.row_id, r.seq, r.ts_ns, r.dur_ns, r.name, r.phase_path,
           CASE WHEN f.mod_end_ns >= r.ts_ns + r.dur_ns THEN f.mod_row_id END AS mod_row_id
    FROM (SELECT trace, tid, row_id, seq, ts_ns, greatest(dur_ns, 0) AS dur_ns, name, phase_path FROM ranges
          WHERE trace IN (SELECT trace FROM _mod_src) AND NOT _mod_is_step(name) AND ts_ns IS NOT NULL) r
    ASOF LEFT JOIN _mod_at f ON r.trace = f.trace AND r.tid = f.tid AND r.ts_ns >= f.t_ns
), _deducted AS (  -- those directly inside the interval's range: their time leaves the interval and its module
                  -- ancestors
    SELECT r.trace, i.pid, r.tid, r.row_id, r.seq, r.ts_ns, r.dur_ns, i.range_path,
           string_split(i.module_path, '/') AS segs
    FROM _user_ranges r JOIN modules_intervals i ON i.trace = r.trace AND i.row_id = r.mod_row_id
    WHERE i.eff_phase_path IS NOT NULL AND coalesce(i.range_path || '/', '') || r.name = r.phase_path
)
SELECT trace, pid, tid, row_id, seq, ts_ns, dur_ns, eff_phase_path AS phase_path, source AS phase_source, 1 AS sign
FROM modules_intervals WHERE eff_phase_path IS NOT NULL
UNION ALL
SELECT d.trace, d.pid, d.tid, d.row_id, d.seq, d.ts_ns, d.dur_ns,
       coalesce(d.range_path || '/', '') || array_to_string(d.segs[1:x.i], '/'), s.source, -1
FROM _deducted d JOIN _mod_src s USING (trace), LATERAL (SELECT unnest(range(1, len(d.segs) + 1)) AS i) x;
