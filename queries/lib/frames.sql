-- lib/frames: the innermost frame of USER code around a CPU call, for traces recorded with
-- Python stacks (torch.profiler with_stack=True: Kineto `python_function` events, kind 'python').
-- @requires lib/runtime lib/trace_window
--
-- Loaded through `-- @requires lib/frames` by the analyses that name code (syncs.sql, gpu_idle.sql,
-- launch.sql).
--
-- USER FRAME: a python row named `file(line): function` (Kineto's form) whose file
--   - does not start with '<': `<string>(1): <module>`, `<frozen os>(...)` name no file to open, and
--     built-ins (`<built-in method copy_ of Tensor object at 0x7f...>`, `<built-in function linear>`)
--     do not even have the file(line) form; nor do with_modules rows (`nn.Module: Linear_0`);
--   - has no path component `torch/` (torch internals: torch/nn/modules/module.py(1736): _call_impl,
--     torch/utils/_contextlib.py, /usr/lib/python3/site-packages/torch/..., torch/cuda/__init__.py ...).
--   Everything else is user code, libraries included (sglang/, vllm/, transformers/, the Python standard
--   library). Frames of zero duration are ignored (they enclose no call).
-- The name is classified once per distinct frame name, not once per row.
--
-- INNERMOST ENCLOSING user frame of a call on thread tid: frames nest per thread, so the user frames of
-- one thread, taken alone, nest too. Each frame's start (+1) and end (-1) are put in one order per
-- (trace, tid) (time; at one instant ends before starts, so back-to-back siblings do not overlap; starts
-- at one instant outermost first: later end first, then row_id); the running sum is the number of open
-- user frames (depth). The innermost open frame at time t is the one that opened last at the depth in
-- force at t (a later frame of that depth would have closed it first). Two ASOF joins and one window
-- sort, never an interval range join: linear in frames + calls. A call gets the frame open at its start,
-- kept only when the frame also ends at or after the call's end (it encloses the call). Two user frames
-- with equal start and end: the one of higher row_id is taken as the inner one.
--
-- Inputs: events (python rows), runtime_calls (queries/lib/).
-- Tables (`_x` private to this file; frames_* public):
--   _pyu        the user frames: trace, tid, ts_ns, end_ns, row_id (names stay in events: joined back last)
--   _frame_at   per trace and thread, a step function: from t_ns on, until the thread's next row, the
--               innermost open user frame is frame_row_id (the python row's row_id; NULL: none open),
--               which ends at frame_end_ns. Columns: trace, tid, t_ns, depth, frame_row_id, frame_end_ns.
--   frames_runtime   the calls analyses ask about, runtime rows that sync (is_sync) or launched a GPU op
--               (launched): trace, row_id, tid, ts_ns, correlation, launched, user_frame (the frame's
--               full name `file(line): function`; NULL when the trace has no python rows, i.e. was
--               recorded without with_stack=True, or when no user frame encloses the call: only torch
--               internals and built-ins, or a call outside any Python frame). Join it on (trace, row_id)
--               for a runtime row, on (trace, correlation, tid = launch_tid, ts_ns = launch_ts_ns) for the
--               launch of a GPU op.
--   frames_py_caps    per trace: has_python (the trace has python rows at all), to tell the two NULLs apart.

CREATE OR REPLACE TEMP MACRO _is_user_frame(n) AS
    regexp_full_match(n, '[^<].*\([0-9]+\): .*')
    AND NOT regexp_matches(regexp_extract(n, '^(.*)\([0-9]+\): ', 1), '(^|[/\\])torch[/\\]');

CREATE OR REPLACE TEMP TABLE _pyu AS
WITH _names AS (
    SELECT name FROM (SELECT DISTINCT name FROM events WHERE kind = 'python') WHERE _is_user_frame(name)
)
SELECT e.trace, e.tid, e.ts_ns, e.ts_ns + e.dur_ns AS end_ns, e.row_id
FROM events e SEMI JOIN _names n ON n.name = e.name
WHERE e.kind = 'python' AND e.dur_ns > 0 AND e.ts_ns IS NOT NULL;

CREATE OR REPLACE TEMP TABLE _frame_at AS
WITH _boundaries AS (  -- boundaries: ph 0 = an end, ph 1 = a start
    SELECT trace, tid, ts_ns AS t, 1 AS ph, 1 AS d, end_ns, row_id FROM _pyu
    UNION ALL SELECT trace, tid, end_ns, 0, -1, end_ns, row_id FROM _pyu
), _depths AS (  -- one sort: the depth after each boundary, and whether it is the last boundary of its instant
    SELECT *, sum(d) OVER w AS depth, coalesce(lead(t) OVER w <> t, TRUE) AS last_of_instant
    FROM _boundaries
    WINDOW w AS (PARTITION BY trace, tid ORDER BY t, ph, end_ns DESC, row_id ROWS UNBOUNDED PRECEDING)
), _opens AS (  -- each frame at its depth; (trace, tid, depth, start) is unique: the starts of one
               -- instant come one after another, each one level deeper
    SELECT trace, tid, depth, t AS f_ts, end_ns AS f_end, row_id FROM _depths WHERE ph = 1
)
SELECT p.trace, p.tid, p.t AS t_ns, p.depth, o.row_id AS frame_row_id, o.f_end AS frame_end_ns
FROM (SELECT trace, tid, t, depth FROM _depths WHERE last_of_instant) p
ASOF LEFT JOIN _opens o ON p.trace = o.trace AND p.tid = o.tid AND p.depth = o.depth AND p.t >= o.f_ts;

CREATE OR REPLACE TEMP TABLE frames_runtime AS
WITH _framed_calls AS (
    SELECT r.trace, r.row_id, r.tid, r.ts_ns, r.correlation, r.launched,
           CASE WHEN f.frame_end_ns >= r.end_ns THEN f.frame_row_id END AS frame_row_id
    FROM (SELECT * FROM runtime_calls WHERE is_sync OR launched) r
    ASOF LEFT JOIN _frame_at f ON r.trace = f.trace AND r.tid = f.tid AND r.ts_ns >= f.t_ns
)
SELECT c.trace, c.row_id, c.tid, c.ts_ns, c.correlation, c.launched, e.name AS user_frame
FROM _framed_calls c LEFT JOIN (SELECT trace, row_id, name FROM events WHERE kind = 'python') e
  ON e.trace = c.trace AND e.row_id = c.frame_row_id;

CREATE OR REPLACE TEMP TABLE frames_py_caps AS
SELECT w.trace, w.trace IN (SELECT DISTINCT trace FROM events WHERE kind = 'python') AS has_python FROM trace_window w;
