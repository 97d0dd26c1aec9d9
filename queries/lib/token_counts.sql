-- lib/token_counts: the token counts each step recorded (tracekit.count: drafted, accepted, batch_size,
-- tokens) and the draft time under each step, one row per step (token_counts).
-- @requires lib/step_instances steps lib/gpu_activity
--
-- A building block of tokens.sql (whose header says where the counts come from and how a count is
-- assigned to a step) and of lib/run_metrics.sql (the tokens.* metrics of compare/diff); kept apart
-- from tokens.sql because those metrics need none of flops.sql, which tokens.sql's outputs read.
-- Inputs: events (count rows); step_instances, step_instances_one_thread; steps.sql's set-up.
--
-- Tables (token_counts is the public token_counts):
--   token_counts_events  one row per count event and name: trace, pid, tid, ts_ns, seq, recorded_in (the
--               phase_path the call was made in; NULL at top level), key, value
--   token_counts    one row per step: trace, step_index, step_kind, ts_ns, end_ns (step start +
--               steps.end_to_end_ns: its GPU work included), wall_ns (the step's CPU range), gpu_busy_ns, gpu_op_ns,
--               drafted, accepted, batch_size, tokens (NULL: not recorded in that step),
--               draft_cpu_ns (CPU range time of the outermost `draft` ranges in the step),
--               draft_gpu_ns (GPU ops launched anywhere under a `draft` range: inclusive; NULL when
--               the trace has no GPU op at all: a CPU-only capture knows no GPU time),
--               draft_lm_head_cpu_ns (CPU time of the outermost `lm_head` ranges under `draft`),
--               draft_lm_head_gpu_ns (GPU ops under an `lm_head` under `draft`; NULL as draft_gpu_ns)

CREATE OR REPLACE TEMP TABLE token_counts_events AS
WITH _count_events AS (
    SELECT trace, pid, tid, ts_ns, seq, name,
           CASE WHEN kind = 'range' THEN nullif(regexp_replace(coalesce(phase_path, ''), '/?[^/]*$', ''), '')
                ELSE phase_path END AS recorded_in
    FROM events
    WHERE kind IN ('range', 'instant') AND starts_with(name, 'tracekit.count ')
), _pairs AS (
    SELECT *, regexp_extract_all(name, ' ([A-Za-z_][A-Za-z0-9_]*)=([^ ]+)', 1) AS ks,
              regexp_extract_all(name, ' ([A-Za-z_][A-Za-z0-9_]*)=([^ ]+)', 2) AS vs
    FROM _count_events
)
SELECT trace, pid, tid, ts_ns, seq, recorded_in, unnest(ks) AS key, TRY_CAST(unnest(vs) AS DOUBLE) AS value
FROM _pairs;

CREATE OR REPLACE TEMP TABLE token_counts_by_step AS
WITH _keyed AS (
    SELECT c.*, CASE WHEN o.one_thread THEN -1 ELSE c.tid END AS k_tid
    FROM token_counts_events c JOIN step_instances_one_thread o USING (trace)
)
SELECT k.trace, s.step_index, k.key, sum(k.value) AS value, count(*) AS events
FROM _keyed k
ASOF JOIN step_instances s ON k.trace = s.trace AND k.k_tid = s.k_tid AND k.ts_ns >= s.ts_ns
GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE token_counts AS
WITH _counted AS (
    SELECT trace, step_index,
           sum(value) FILTER (WHERE key = 'drafted') AS drafted,
           sum(value) FILTER (WHERE key = 'accepted') AS accepted,
           sum(value) FILTER (WHERE key = 'batch_size') AS batch_size,
           sum(value) FILTER (WHERE key = 'tokens') AS tokens
    FROM token_counts_by_step GROUP BY ALL
), _draft_sums AS (
    SELECT trace, step_index,
           sum(cpu_ns) FILTER (WHERE string_split(phase, '/')[-1] = 'draft'
                               AND NOT list_contains(string_split(phase, '/')[:-2], 'draft')) AS draft_cpu_ns,
           sum(gpu_op_ns) FILTER (WHERE list_contains(string_split(phase, '/'), 'draft')) AS draft_gpu_ns,
           sum(cpu_ns) FILTER (WHERE string_split(phase, '/')[-1] = 'lm_head'
                               AND list_contains(string_split(phase, '/')[:-2], 'draft')
                               AND NOT list_contains(string_split(phase, '/')[:-2], 'lm_head')) AS draft_lm_head_cpu_ns,
           sum(gpu_op_ns) FILTER (WHERE list_position(string_split(phase, '/'), 'draft')
                                        < list_position(string_split(phase, '/'), 'lm_head')) AS draft_lm_head_gpu_ns
    FROM steps_phases GROUP BY ALL
)
SELECT s.trace, s.step_index, s.step_kind, s.ts_ns, s.ts_ns + s.end_to_end_ns AS end_ns, s.wall_ns, s.gpu_busy_ns,
       s.gpu_op_ns, c.drafted, c.accepted, coalesce(c.batch_size, s.batch_size) AS batch_size, c.tokens,
       coalesce(d.draft_cpu_ns, 0) AS draft_cpu_ns,
       CASE WHEN g.trace IS NOT NULL THEN coalesce(d.draft_gpu_ns, 0) END AS draft_gpu_ns,
       coalesce(d.draft_lm_head_cpu_ns, 0) AS draft_lm_head_cpu_ns,
       CASE WHEN g.trace IS NOT NULL THEN coalesce(d.draft_lm_head_gpu_ns, 0) END AS draft_lm_head_gpu_ns
FROM steps_rows s
LEFT JOIN (SELECT DISTINCT trace FROM gpu_activity) g USING (trace)
LEFT JOIN _counted c USING (trace, step_index)
LEFT JOIN _draft_sums d USING (trace, step_index);
