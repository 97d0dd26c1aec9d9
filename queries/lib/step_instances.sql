-- lib/step_instances: the step instances (step_instances), the ranges every per-step number is cut by.
-- @requires lib/trace_window
-- @param step_pattern REGEX 'ProfilerStep#\d+|step\[.*\]|step|decode_step|.*_step|execute_(\d+_)?context_\d+\([^()]*\)_generation_\d+\([^()]*\)|execute_new_\d+_cached_\d+'
--     regex (full match) for step range names: ProfilerStep#N, SGLang step[MODE bs=N ...], vLLM
--     execute_[B_]context_C(T)_generation_G(T) (T: any text without parentheses, e.g. (300), (888_788544),
--     (sq32sk55086...)) and execute_new_N_cached_M, and ranges named step / decode_step / *_step
--
-- Public (temp tables):
--   step_instances   step instances: range rows whose name fully matches getvariable('step_pattern'),
--            innermost only when they nest; step_index (1.. in time order per trace), k_tid (-1
--            when all steps of the trace are on one thread: events of every thread are then
--            assigned to steps by time alone, else by thread). The name is parsed (_step_fields):
--              SGLang  step[MODE bs=N ...] (toks=T, raw_bs=, forward_id=, ... may follow):
--                      step_mode MODE, batch_size N, tokens T;
--                      step_kind 'step[MODE bs=N]' (other fields dropped: they vary per step)
--              vLLM    execute_[B_]context_C(CT)_generation_G(GT) (gpu_worker.annotate_profile):
--                      context_reqs C, context_tokens CT, generation_reqs G, generation_tokens GT,
--                      batch_size B (else C + G), tokens CT + GT, step_mode CONTEXT | GENERATION |
--                      MIXED | IDLE; step_kind 'execute_context_C_generation_G' (tokens dropped).
--                      CT / GT may be any text without parentheses (real traces: `(888_788544)`,
--                      `(sq32sk55086sqsq32sqsk55086)`): the step still matches and is parsed, but a
--                      part is a token count only when it is all digits, else NULL (and tokens
--                      NULL): such text is not one number, and no documented format says which
--                      of its numbers counts tokens
--                      older vLLM execute_new_N_cached_M: context_reqs N (new requests),
--                      generation_reqs M (cached), batch_size N + M, tokens NULL
--              other   (ProfilerStep#N, tracekit's step, decode_step, *_step): step_kind = the
--                      name with digits replaced by N; the parsed columns are NULL.
--            A trace where no range matches is one step of kind and name '(whole trace)' per process
--            that made runtime calls (_steps_whole): the trace's window (lib/trace_window), on the
--            process's thread with the most runtime calls (with none in the trace: one step, on the thread
--            with the most CPU events); seq and row_id -1, phase_path NULL. With several processes the
--            steps are keyed by thread (each counts its own thread's calls and the GPU ops it launched).
--            What needs a real step (comm per step, collectives' step alignment, gpu_idle.by_step, the
--            median step) leaves them out: step_instances_matched, or step_instances_whole(step_kind).
--   step_instances_matched  the step instances a range matched: step_instances less a whole trace's steps
--            (what needs a real step reads this).
--   step_instances_one_thread  per trace: TRUE when all its steps are on one thread.
-- Public (macros):
--   step_instances_whole_name()      '(whole trace)': the kind and name of a whole trace's steps
--   step_instances_whole(step_kind)  TRUE for a whole trace's steps
--   step_instances_rel_path(pp, step_path)  phase path pp relative to its step's path step_path: NULL when
--            not inside the step; for a whole trace's step (step_path NULL) pp itself, NULL for '(none)'

-- The name and kind of the step that stands for a whole trace (see _steps_whole), and the test for it.
CREATE OR REPLACE TEMP MACRO step_instances_whole_name() AS '(whole trace)';
CREATE OR REPLACE TEMP MACRO step_instances_whole(step_kind) AS step_kind = step_instances_whole_name();
-- A phase path relative to its step's path: NULL when it is not inside the step; for a whole-trace step (its path
-- is NULL) the path itself, NULL for '(none)' (lib/gpu_activity: outside every range).
CREATE OR REPLACE TEMP MACRO step_instances_rel_path(pp, step_path) AS CASE
    WHEN step_path IS NULL THEN nullif(pp, '(none)')
    WHEN starts_with(pp, step_path || '/') THEN substr(pp, length(step_path) + 2) END;

CREATE OR REPLACE TEMP TABLE _steps_all AS
SELECT trace, pid, tid, name, ts_ns, ts_ns + greatest(dur_ns, 0) AS end_ns, phase_path, seq, row_id
FROM ranges WHERE regexp_full_match(name, getvariable('step_pattern'));

-- A trace where no range matches is one step per process that made runtime calls: the trace's window
-- (lib/trace_window) on the process's thread with the most runtime calls (the thread that launches its GPU
-- work); a trace without runtime calls, one step on the thread with the most CPU events. seq and row_id -1: no
-- event is the step's own range; phase_path NULL: every phase path stays whole (step_instances_rel_path).
CREATE OR REPLACE TEMP TABLE _steps_whole AS
WITH _threads AS (
    SELECT trace, pid, tid, count(*) FILTER (WHERE kind = 'runtime') AS n_runtime, count(*) AS n
    FROM events
    -- a semi join, not NOT IN per row: with every trace stepped the build side is empty and the scan is skipped
    SEMI JOIN (SELECT trace FROM trace_window WHERE trace NOT IN (SELECT trace FROM _steps_all)) u USING (trace)
    WHERE kind IN ('runtime', 'cpu_op', 'range') AND tid IS NOT NULL
    GROUP BY ALL
), _picked AS (
    SELECT * FROM _threads
    QUALIFY row_number() OVER (PARTITION BY trace, CASE WHEN n_runtime > 0 THEN pid END
                               ORDER BY n_runtime DESC, n DESC, pid, tid) = 1
        AND (n_runtime > 0 OR NOT bool_or(n_runtime > 0) OVER (PARTITION BY trace))
)
SELECT w.trace, p.pid, p.tid, step_instances_whole_name() AS name, w.window_start_ns AS ts_ns,
       w.window_end_ns AS end_ns, CAST(NULL AS VARCHAR) AS phase_path, -1::BIGINT AS seq, -1::BIGINT AS row_id
FROM trace_window w JOIN _picked p USING (trace);

CREATE OR REPLACE TEMP MACRO _sgl_field(n, f) AS
    TRY_CAST(nullif(regexp_extract(n, '[ \[]' || f || '=([0-9]+)', 1), '') AS BIGINT);
-- vLLM: the parentheses may hold more than a token count (execute_context_1(888_788544)_..., (sq32sk55086...));
-- a part is read as a number only when it is all digits (TRY_CAST alone would read '888_788544' as 888788544).
CREATE OR REPLACE TEMP MACRO _vllm_part(n, i) AS regexp_extract(n,
    '^execute_(?:([0-9]+)_)?context_([0-9]+)\(([^()]*)\)_generation_([0-9]+)\(([^()]*)\)$', i);
CREATE OR REPLACE TEMP MACRO _vllm_num(n, i) AS
    CASE WHEN regexp_full_match(_vllm_part(n, i), '[0-9]+') THEN TRY_CAST(_vllm_part(n, i) AS BIGINT) END;
CREATE OR REPLACE TEMP MACRO _vllm_old(n, i) AS TRY_CAST(nullif(regexp_extract(n,
    '^execute_new_([0-9]+)_cached_([0-9]+)$', i), '') AS BIGINT);

CREATE OR REPLACE TEMP TABLE step_instances AS
WITH _inner AS (
    SELECT * FROM _steps_whole
    UNION ALL
    SELECT s.* FROM _steps_all s
    WHERE NOT EXISTS (SELECT 1 FROM _steps_all t
                      WHERE t.trace = s.trace AND t.pid = s.pid AND t.tid = s.tid AND t.row_id <> s.row_id
                        AND t.ts_ns >= s.ts_ns AND t.end_ns <= s.end_ns
                        AND (t.ts_ns > s.ts_ns OR t.end_ns < s.end_ns OR t.row_id > s.row_id))
), _threads AS (SELECT trace, count(DISTINCT (pid, tid)) = 1 AS one_thread FROM _inner GROUP BY trace)
, _fields AS (
    SELECT i.*, regexp_extract(i.name, '^step\[([A-Za-z_]+)[ \]]', 1) AS _mode,
           _sgl_field(i.name, 'bs') AS _bs, _sgl_field(i.name, 'toks') AS _toks,
           _vllm_num(i.name, 1) AS _vb, _vllm_num(i.name, 2) AS _c, _vllm_num(i.name, 3) AS _ct,
           _vllm_num(i.name, 4) AS _g, _vllm_num(i.name, 5) AS _gt,
           _vllm_old(i.name, 1) AS _new, _vllm_old(i.name, 2) AS _cached
    FROM _inner i
), _parsed AS (
    SELECT *, _mode <> '' AS _sgl, _c IS NOT NULL AS _vllm, _new IS NOT NULL AS _vold FROM _fields
)
SELECT p.trace, p.pid, p.tid, p.name, p.ts_ns, p.end_ns, p.phase_path, p.seq, p.row_id,
       CASE WHEN _sgl THEN 'step[' || _mode || coalesce(' bs=' || _bs, '') || ']'
            WHEN _vllm THEN 'execute_context_' || _c || '_generation_' || _g
            WHEN _vold THEN 'execute_new_' || _new || '_cached_' || _cached
            WHEN p.seq = -1 THEN p.name
            ELSE regexp_replace(p.name, '[0-9]+', 'N', 'g') END AS step_kind,
       CASE WHEN _sgl THEN _mode
            WHEN _vllm OR _vold THEN CASE WHEN coalesce(_c, _new) > 0 AND coalesce(_g, _cached) > 0 THEN 'MIXED'
                                          WHEN coalesce(_c, _new) > 0 THEN 'CONTEXT'
                                          WHEN coalesce(_g, _cached) > 0 THEN 'GENERATION'
                                          ELSE 'IDLE' END END AS step_mode,
       CASE WHEN _sgl THEN _bs WHEN _vllm THEN coalesce(_vb, _c + _g) WHEN _vold THEN _new + _cached END AS batch_size,
       CASE WHEN _sgl THEN _toks WHEN _vllm THEN _ct + _gt END AS tokens,
       coalesce(_c, _new) AS context_reqs, _ct AS context_tokens,
       coalesce(_g, _cached) AS generation_reqs, _gt AS generation_tokens,
       row_number() OVER (PARTITION BY p.trace ORDER BY p.ts_ns, p.seq, p.row_id, p.pid, p.tid) AS step_index,
       CASE WHEN t.one_thread THEN -1 ELSE p.tid END AS k_tid
FROM _parsed p JOIN _threads t USING (trace);

CREATE OR REPLACE TEMP TABLE step_instances_matched AS
SELECT * FROM step_instances WHERE NOT step_instances_whole(step_kind);

CREATE OR REPLACE TEMP TABLE step_instances_one_thread AS
SELECT trace, bool_and(k_tid = -1) AS one_thread FROM step_instances GROUP BY trace;
