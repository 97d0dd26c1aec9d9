-- tokens: what does one ACCEPTED token cost (speculative decoding: draft, verify, acceptance)?
-- @requires steps flops lib/gpu_activity lib/modules lib/token_counts lib/trace_window lib/notes
--
-- Run it with `tracekit report` (or tracekit.report.run, or `tracekit sql -f`): queries/lib/ first,
-- then the set-up of steps.sql and flops.sql (the @requires line; the set-up here reads only
-- steps.sql's, the outputs also flops.sql's flops_ops), with every getvariable() parameter at its
-- documented default (tracekit/report.py: DEFAULTS). tracekit.compare runs the set-up part (before
-- the first @output) for `diff`/`compare`, after steps.sql's set-up.
--
-- Where the counts come from: a trace does not say how many tokens a step drafted or accepted, so
-- the program records them: `tracekit.count(drafted=4, accepted=3, batch_size=1, tokens=4)` (or
-- numeric keyword args of `tracekit.phase(...)`) writes one event named
-- `tracekit.count accepted=3 batch_size=1 drafted=4 tokens=4` (Kineto: a zero-length `range` row,
-- kept out of the `ranges` view; nsys: an NVTX mark, `instant` row). The SGLang plugin records them
-- from EAGLE's verify output in every scheduler (capture/tracekit_sglang.py), samples/spec_decode.py
-- and samples/serve.py in every step. A count belongs to the latest step that began before it
-- (the same ASOF assignment as steps.sql: the step's thread, or time alone when all steps are on
-- one thread): the step it falls in, or, when it falls after a step's end, that step (SGLang's
-- step[VERIFY bs=N] range ends inside verify and the plugin records after verify returns).
-- Several events in one step add up per name. Names:
--   drafted     draft tokens proposed and verified
--   accepted    draft tokens the target accepted (the bonus token of each request NOT included)
--   batch_size  requests in the step (when not counted: the bs=N of an SGLang step name, steps.sql)
--   tokens      tokens the step produced (accepted + one bonus per request, for spec decoding);
--               when no step has it, getvariable('tokens_per_step') (--tokens-per-step) fills it
--   any other name is kept in `counts` (summed per step) but has no column
-- A step without a count of a name has NULL there (never 0): the per-token figures below only
-- use steps that have the denominator's count, and their numerators sum the SAME steps.
--
-- Inputs: events (count rows); step_instances, step_instances_one_thread (queries/lib/); steps_rows, steps_phases
-- (steps.sql set-up); flops_ops (flops.sql set-up; outputs only). Parameters: tokens_per_step.
-- Set-up: lib/token_counts.sql (the per-step counts and draft times, also read by lib/run_metrics.sql).
--
-- Output `tokens` (one row per step): trace, step_index, step_kind, wall_ms, gpu_busy_ms,
--   drafted, accepted, batch_size, tokens, acceptance_rate (accepted / drafted),
--   mean_accept_len (accepted / batch_size: accepted draft tokens per request this round),
--   ms_per_accepted (wall_ms / accepted; NULL when 0 accepted), gpu_ms_per_accepted
--   (gpu_busy_ms / accepted), draft_ms (draft_cpu_ns in ms), draft_gpu_ms
-- Output `summary` (one row per trace; sums over the steps that have each count):
--   trace, steps, steps_counted (steps with an `accepted` count), drafted, accepted, tokens,
--   tokens_source ('count' | 'tokens_per_step'), acceptance_rate (sum accepted / sum drafted over
--   steps with both), mean_accept_len (sum accepted / sum batch_size over steps with both),
--   accepted_per_step (sum accepted / steps_counted),
--   ms_per_accepted (summed step wall / sum accepted: the CPU-side step time),
--   gpu_ms_per_accepted (summed per-step GPU busy / sum accepted),
--   e2e_ms_per_accepted (first counted step start to the last counted step's end, its GPU work
--     included (steps.end_to_end_ns), gaps between steps included / sum accepted),
--   ms_per_token (summed step wall / sum tokens),
--   tokens_per_s (sum tokens / that end-to-end span),
--   draft_ms_per_accepted (summed draft CPU range time / sum accepted),
--   draft_gpu_ms_per_accepted (summed GPU time under draft / sum accepted),
--   gflops_per_accepted (matmul+attention FLOPs of flops.sql in the counted steps / sum accepted / 1e9),
--   counts_outside_steps (count events before the first step: not used), note (why a column is NULL)
--   With SGLang the counted steps are the step[VERIFY] forwards only (draft forwards are steps
--   of their own), so read e2e_ms_per_accepted there: it spans the draft steps in between.
-- Output `phases` (one row per trace and phase relative to the step, as steps.phases):
--   trace, phase, accepted (the denominator: sum over counted steps), cpu_ms_per_accepted (CPU
--   range time of the phase), gpu_ms_per_accepted (GPU ops launched directly in the phase:
--   exclusive), incl_gpu_ms_per_accepted (the phase and every phase under it: inclusive); the GPU
--   columns are NULL for a trace without GPU ops; phase_source (steps.phases': 'range' | 'module' |
--   'frame', a module path where no user range below the step covers the work: lib/modules.sql)
-- Output `draft_split` (one row per trace: lm_head against the rest of the draft decode, over
--   all its steps): trace, steps, draft_ms_per_step, lm_head_ms_per_step (lm_head ranges under
--   draft), rest_ms_per_step (draft - lm_head), lm_head_share (lm_head / draft), the same four on
--   the GPU (draft_gpu_ms_per_step, lm_head_gpu_ms_per_step, rest_gpu_ms_per_step,
--   lm_head_gpu_share; NULL without GPU ops), lm_head_ms_per_accepted and rest_ms_per_accepted
--   (CPU, summed over the steps with an accepted count / their accepted tokens)
-- Output `lengths` (the acceptance distribution; one row per trace and accepted count of a step):
--   trace, accepted, steps, share (of counted steps), wall_ms_p50, wall_ms_mean, wall_ms_p90
--
-- How to read: ms_per_accepted falls when a change buys more accepted tokens than it costs time;
-- acceptance_rate and mean_accept_len say whether it came from the draft or from speed.

-- @output tokens
-- @column trace               TEXT      the trace (input file name) the row is about
-- @column step_index          ID        the step's number in its trace (1.. in time order)
-- @column step_kind           TEXT      the kind of step (steps.sql: the step name with per-step fields
--                                       dropped)
-- @column wall_ms             NUMBER    the step's wall time (its CPU range), ms
-- @column gpu_busy_ms         NUMBER    the step's GPU busy time, ms
-- @column drafted             NUMBER    draft tokens proposed and verified
-- @column accepted            NUMBER    draft tokens the target accepted (the bonus token of each request NOT
--                                       included)
-- @column batch_size          NUMBER    requests in the step
-- @column tokens              NUMBER    tokens the step processed (a count event, the step name, or --tokens-
--                                       per-step)
-- @column acceptance_rate     NUMBER    accepted / drafted
-- @column mean_accept_len     MEAN      accepted / batch_size: accepted draft tokens per request this round
-- @column ms_per_accepted     NUMBER    wall_ms / accepted; NULL when 0 accepted
-- @column gpu_ms_per_accepted NUMBER    gpu_busy_ms / accepted
-- @column draft_ms            NUMBER    draft_cpu_ns in ms
-- @column draft_gpu_ms        NUMBER    GPU op time launched in the step's draft ranges, ms
SELECT trace, step_index, step_kind, wall_ns / 1e6 AS wall_ms, gpu_busy_ns / 1e6 AS gpu_busy_ms,
       drafted, accepted, batch_size, tokens,
       accepted / nullif(drafted, 0) AS acceptance_rate, accepted / nullif(batch_size, 0) AS mean_accept_len,
       wall_ns / 1e6 / nullif(accepted, 0) AS ms_per_accepted,
       gpu_busy_ns / 1e6 / nullif(accepted, 0) AS gpu_ms_per_accepted,
       draft_cpu_ns / 1e6 AS draft_ms, draft_gpu_ns / 1e6 AS draft_gpu_ms
FROM token_counts ORDER BY trace, step_index;

-- @output summary
-- @column trace                     TEXT      the trace (input file name) the row is about
-- @column steps                     COUNT     steps in the trace
-- @column steps_counted             COUNT     steps with an `accepted` count
-- @column drafted                   NUMBER    draft tokens proposed and verified
-- @column accepted                  NUMBER    draft tokens the target accepted (the bonus token of each
--                                             request NOT included)
-- @column tokens                    NUMBER    sum of the steps' tokens
-- @column tokens_source             TEXT      'count' | 'tokens_per_step'
-- @column acceptance_rate           NUMBER    accepted / drafted
-- @column mean_accept_len           MEAN      accepted / batch_size over the counted steps: accepted draft
--                                             tokens per request
-- @column accepted_per_step         NUMBER    sum accepted / steps_counted
-- @column ms_per_accepted           NUMBER    wall_ms / accepted; NULL when 0 accepted
-- @column gpu_ms_per_accepted       NUMBER    gpu_busy_ms / accepted
-- @column e2e_ms_per_accepted       NUMBER    first counted step start to the last counted step's end, its
--                                             GPU work included (steps.end_to_end_ns), gaps between steps
--                                             included / sum accepted
-- @column ms_per_token              NUMBER    summed step wall / sum tokens
-- @column tokens_per_s              NUMBER    sum tokens / that end-to-end span
-- @column draft_ms_per_accepted     NUMBER    summed draft CPU range time / sum accepted
-- @column draft_gpu_ms_per_accepted NUMBER    summed GPU time under draft / sum accepted
-- @column gflops_per_accepted       NUMBER    matmul+attention FLOPs of flops.sql in the counted steps / sum
--                                             accepted / 1e9
-- @column counts_outside_steps      COUNT     count events before the first step: not used
-- @column note                      NOTE      why a value of the row is NULL or what to keep in mind reading
--                                             it
WITH _tokens_per_step_arg AS (SELECT TRY_CAST(getvariable('tokens_per_step') AS DOUBLE) AS tps),
_counted AS (
    SELECT trace, count(*) AS steps, count(accepted) AS steps_counted,
           sum(drafted) AS drafted, sum(accepted) AS accepted,
           bool_or(tokens IS NOT NULL) AS has_tokens,
           sum(accepted) FILTER (WHERE drafted IS NOT NULL) AS acc_d,
           sum(drafted) FILTER (WHERE accepted IS NOT NULL) AS d_acc,
           sum(accepted) FILTER (WHERE batch_size IS NOT NULL) AS acc_b,
           sum(batch_size) FILTER (WHERE accepted IS NOT NULL) AS b_acc,
           sum(wall_ns) FILTER (WHERE accepted IS NOT NULL) AS wall_acc,
           sum(gpu_busy_ns) FILTER (WHERE accepted IS NOT NULL) AS busy_acc,
           count(gpu_busy_ns) FILTER (WHERE accepted IS NOT NULL) AS busy_steps,
           max(end_ns) FILTER (WHERE accepted IS NOT NULL) - min(ts_ns) FILTER (WHERE accepted IS NOT NULL) AS span_acc,
           sum(draft_cpu_ns) FILTER (WHERE accepted IS NOT NULL) AS draft_acc,
           sum(draft_gpu_ns) FILTER (WHERE accepted IS NOT NULL) AS draft_gpu_acc
    FROM token_counts GROUP BY trace
), _token_totals AS (  -- tokens: recorded counts, else the constant --tokens-per-step for every step
    SELECT s.trace,
           CASE WHEN bool_or(s.tokens IS NOT NULL) THEN sum(s.tokens)
                ELSE any_value(_tokens_per_step_arg.tps) * count(*) END AS tokens,
           CASE WHEN bool_or(s.tokens IS NOT NULL) THEN sum(s.wall_ns) FILTER (WHERE s.tokens IS NOT NULL)
                ELSE sum(s.wall_ns) END AS wall_tok,
           CASE WHEN bool_or(s.tokens IS NOT NULL) THEN max(s.end_ns) FILTER (WHERE s.tokens IS NOT NULL)
                                                        - min(s.ts_ns) FILTER (WHERE s.tokens IS NOT NULL)
                ELSE max(s.end_ns) - min(s.ts_ns) END AS span_tok,
           CASE WHEN bool_or(s.tokens IS NOT NULL) THEN 'count'
                WHEN any_value(_tokens_per_step_arg.tps) IS NOT NULL THEN 'tokens_per_step' END AS tokens_source
    FROM token_counts s, _tokens_per_step_arg GROUP BY s.trace
), _step_flops AS (
    SELECT o.trace, sum(o.flops) AS flops, count(*) AS ops, count(o.flops) AS ops_with_flops
    FROM flops_ops o JOIN token_counts s ON s.trace = o.trace AND s.step_index = o.step_index AND s.accepted IS NOT NULL
    GROUP BY o.trace
), _outside_counts AS (
    SELECT c.trace, count(*) - coalesce(any_value(u.used), 0) AS outside FROM token_counts_events c
    LEFT JOIN (SELECT trace, sum(events) AS used FROM token_counts_by_step GROUP BY trace) u USING (trace)
    GROUP BY c.trace
)
SELECT w.trace, coalesce(a.steps, 0) AS steps, coalesce(a.steps_counted, 0) AS steps_counted,
       a.drafted, a.accepted, t.tokens, t.tokens_source,
       a.acc_d / nullif(a.d_acc, 0) AS acceptance_rate,
       a.acc_b / nullif(a.b_acc, 0) AS mean_accept_len,
       a.accepted / nullif(a.steps_counted, 0) AS accepted_per_step,
       a.wall_acc / 1e6 / nullif(a.accepted, 0) AS ms_per_accepted,
       CASE WHEN a.busy_steps > 0 THEN a.busy_acc / 1e6 / nullif(a.accepted, 0) END AS gpu_ms_per_accepted,
       a.span_acc / 1e6 / nullif(a.accepted, 0) AS e2e_ms_per_accepted,
       t.wall_tok / 1e6 / nullif(t.tokens, 0) AS ms_per_token,
       t.tokens / nullif(t.span_tok / 1e9, 0) AS tokens_per_s,
       a.draft_acc / 1e6 / nullif(a.accepted, 0) AS draft_ms_per_accepted,
       CASE WHEN a.busy_steps > 0 THEN a.draft_gpu_acc / 1e6 / nullif(a.accepted, 0) END AS draft_gpu_ms_per_accepted,
       CASE WHEN f.ops > 0 AND f.ops = f.ops_with_flops
            THEN f.flops / nullif(a.accepted, 0) / 1e9 END AS gflops_per_accepted,
       coalesce(o.outside, 0)::BIGINT AS counts_outside_steps,
       nullif(concat_ws('; ',
           CASE WHEN coalesce(a.steps, 0) = 0
                THEN 'no step: per-token figures need steps (--step-pattern, or tracekit.phase("step"))'
                WHEN a.steps_counted = 0
                THEN 'no accepted-token count in any step: record tracekit.count(accepted=..., drafted=..., '
                     || 'batch_size=...) inside each step (the SGLang plugin and samples/spec_decode.py do it under '
                     || 'tracekit capture)'
                WHEN a.accepted = 0 THEN 'no draft token was accepted: per-accepted-token figures are undefined' END,
           CASE WHEN a.steps_counted > 0 AND a.steps_counted < a.steps
                THEN (a.steps - a.steps_counted) || ' of ' || a.steps
                     || ' steps have no accepted count and are left out' END,
           CASE WHEN a.steps_counted > 0 AND a.busy_steps = 0
                THEN 'no GPU op in the counted steps: GPU figures need CUDA activity (' || notes_fix_cuda_activity()
                     || ')' END,
           CASE WHEN a.steps_counted > 0 AND a.d_acc IS NULL
                THEN 'no drafted count: acceptance_rate needs tracekit.count(drafted=...)' END,
           CASE WHEN a.steps_counted > 0 AND a.b_acc IS NULL
                THEN 'no batch_size count: mean_accept_len needs tracekit.count(batch_size=...)' END,
           CASE WHEN t.tokens IS NULL AND coalesce(a.steps, 0) > 0
                THEN 'no tokens count: record tracekit.count(tokens=...) or pass --tokens-per-step' END,
           CASE WHEN a.steps_counted > 0 AND coalesce(f.ops, 0) = 0
                THEN 'no matmul/attention cpu_op with shapes in the counted steps: GFLOPs need torch.profiler with '
                     || 'record_shapes=True'
                WHEN a.steps_counted > 0 AND f.ops > f.ops_with_flops
                THEN (f.ops - f.ops_with_flops)
                     || ' matmul/attention ops have no FLOPs (see flops.sql): GFLOPs left NULL' END,
           CASE WHEN o.outside > 0 THEN o.outside || ' count values before the first step were not used' END
       ), '') AS note
FROM trace_window w
LEFT JOIN _counted a USING (trace)
LEFT JOIN _token_totals t USING (trace)
LEFT JOIN _step_flops f USING (trace)
LEFT JOIN _outside_counts o USING (trace)
ORDER BY w.trace;

-- @output phases
-- @column trace                    TEXT      the trace (input file name) the row is about
-- @column phase                    TEXT      the phase (a range name; '(other)' = directly in the step, in no
--                                            phase of it)
-- @column accepted                 NUMBER    draft tokens the target accepted (the bonus token of each
--                                            request NOT included)
-- @column cpu_ms_per_accepted      NUMBER    CPU range time of the phase / accepted tokens, ms
-- @column gpu_ms_per_accepted      NUMBER    GPU op time of the phase / accepted tokens, ms
-- @column incl_gpu_ms_per_accepted NUMBER    the same with every phase under it included, ms
-- @column phase_source             TEXT      'range' | 'module' | 'frame' (as steps.phases)
--
--                                            no user range below the step covers the work: lib/modules.sql
WITH _accepted_per_trace AS (
    SELECT trace, sum(accepted) AS accepted FROM token_counts WHERE accepted IS NOT NULL GROUP BY trace
), _per_phase AS (
    SELECT p.trace, p.phase, sum(p.cpu_ns) AS cpu_ns, sum(p.gpu_op_ns) AS gpu_ns,
           modules_src_agg(p.phase_source) AS phase_source
    FROM steps_phases p JOIN token_counts s USING (trace, step_index)
    WHERE s.accepted IS NOT NULL GROUP BY ALL
), _inclusive AS (  -- inclusive: the phase and every phase path under it
    SELECT a.trace, a.phase, sum(b.gpu_ns) AS incl_gpu_ns
    FROM _per_phase a
    JOIN _per_phase b ON b.trace = a.trace AND (b.phase = a.phase OR starts_with(b.phase, a.phase || '/'))
    GROUP BY ALL
)
SELECT p.trace, p.phase, c.accepted, p.cpu_ns / 1e6 / nullif(c.accepted, 0) AS cpu_ms_per_accepted,
       CASE WHEN g.trace IS NOT NULL THEN p.gpu_ns / 1e6 / nullif(c.accepted, 0) END AS gpu_ms_per_accepted,
       CASE WHEN g.trace IS NOT NULL THEN i.incl_gpu_ns / 1e6 / nullif(c.accepted, 0) END AS incl_gpu_ms_per_accepted,
       p.phase_source
FROM _per_phase p JOIN _accepted_per_trace c USING (trace) JOIN _inclusive i USING (trace, phase)
LEFT JOIN (SELECT DISTINCT trace FROM gpu_activity) g USING (trace)
ORDER BY p.trace, coalesce(p.cpu_ns, 0) + p.gpu_ns DESC, p.phase;

-- @output draft_split
-- @column trace                   TEXT      the trace (input file name) the row is about
-- @column steps                   COUNT     steps counted
-- @column draft_ms_per_step       NUMBER    CPU time of the draft ranges per step, ms
-- @column lm_head_ms_per_step     NUMBER    CPU time of the lm_head ranges under draft per step, ms
-- @column rest_ms_per_step        NUMBER    draft - lm_head per step, ms
-- @column lm_head_share           SHARE     lm_head / draft (CPU time)
-- @column draft_gpu_ms_per_step   NUMBER    GPU op time of the draft ranges per step, ms
-- @column lm_head_gpu_ms_per_step NUMBER    GPU op time of the LM head inside the draft per step, ms
-- @column rest_gpu_ms_per_step    NUMBER    draft GPU op time outside the LM head per step, ms
-- @column lm_head_gpu_share       SHARE     lm_head_gpu_ms_per_step / draft_gpu_ms_per_step
-- @column lm_head_ms_per_accepted NUMBER    LM head time per accepted token, ms
-- @column rest_ms_per_accepted    NUMBER    draft CPU time outside lm_head, summed over the steps with an
--                                           accepted count / their accepted tokens, ms
SELECT trace, count(*) AS steps,
       sum(draft_cpu_ns) / 1e6 / count(*) AS draft_ms_per_step,
       sum(draft_lm_head_cpu_ns) / 1e6 / count(*) AS lm_head_ms_per_step,
       (sum(draft_cpu_ns) - sum(draft_lm_head_cpu_ns)) / 1e6 / count(*) AS rest_ms_per_step,
       sum(draft_lm_head_cpu_ns) / nullif(sum(draft_cpu_ns), 0) AS lm_head_share,
       sum(draft_gpu_ns) / 1e6 / count(*) AS draft_gpu_ms_per_step,
       sum(draft_lm_head_gpu_ns) / 1e6 / count(*) AS lm_head_gpu_ms_per_step,
       (sum(draft_gpu_ns) - sum(draft_lm_head_gpu_ns)) / 1e6 / count(*) AS rest_gpu_ms_per_step,
       sum(draft_lm_head_gpu_ns) / nullif(sum(draft_gpu_ns), 0) AS lm_head_gpu_share,
       sum(draft_lm_head_cpu_ns) FILTER (WHERE accepted IS NOT NULL) / 1e6 / nullif(sum(accepted), 0)
           AS lm_head_ms_per_accepted,
       (sum(draft_cpu_ns) FILTER (WHERE accepted IS NOT NULL)
        - sum(draft_lm_head_cpu_ns) FILTER (WHERE accepted IS NOT NULL))
           / 1e6 / nullif(sum(accepted), 0) AS rest_ms_per_accepted
FROM token_counts GROUP BY trace ORDER BY trace;

-- @output lengths
-- @column trace        TEXT      the trace (input file name) the row is about
-- @column accepted     NUMBER    accepted tokens of a step (the row's length)
-- @column steps        COUNT     steps with that count
-- @column share        SHARE     steps / counted steps
-- @column wall_ms_p50  NUMBER    median step wall time, ms
-- @column wall_ms_mean NUMBER    mean step wall time, ms
-- @column wall_ms_p90  NUMBER    90th percentile of the step wall time, ms
WITH _counted_steps AS (SELECT * FROM token_counts WHERE accepted IS NOT NULL)
SELECT trace, accepted, count(*) AS steps,
       count(*) / sum(count(*)) OVER (PARTITION BY trace) AS share,
       quantile_cont(wall_ns, 0.5) / 1e6 AS wall_ms_p50, avg(wall_ns) / 1e6 AS wall_ms_mean,
       quantile_cont(wall_ns, 0.9) / 1e6 AS wall_ms_p90
FROM _counted_steps GROUP BY trace, accepted
ORDER BY trace, accepted;
