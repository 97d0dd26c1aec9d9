-- lib/run_metrics: the numbers of ONE run that compare.sql and diff.sql put side by side.
-- @requires collectives comm lib/caps lib/gpu_activity lib/idle lib/step_instances lib/token_counts
-- @requires lib/trace_window steps lib/notes
-- @param warmup_steps COUNT 1 --warmup steps dropped at the start of each trace for the noise statistics
--     (run_metrics_step_values)
-- @param label TEXT - the run's label (tracekit.compare sets it per run)
-- @param label_index COUNT - the run's position, 0 = the baseline (the first run given)
--
-- A run is one label's traces (one file, or a folder of ranks). tracekit.compare executes this
-- file once per run, after queries/lib/ and the set-up part of steps.sql, with the views over that
-- run's files only (so two runs may hold traces of the same name), and with the variables
-- label / label_index set. Each execution appends the run's rows to the table run_metrics.
-- Nothing here defines a new notion: steps and per-step phases are those of steps.sql, GPU busy
-- is lib/idle's idle_device_busy, kernels are grouped by name as in kernels.sql.
--
-- Inputs: gpu_activity, trace_window, idle_device_busy, caps (queries/lib/); steps_rows, steps_phases (from
-- steps.sql's set-up). Variables: the @param lines above, and step_pattern.
--
-- Output: table run_metrics, one row per (label, metric):
--   label, label_index  the run (label_index 0 = the baseline: the first run given)
--   metric      the address used by `--fail-if`: '<name>.<measure>' (names may hold dots; a
--               measure never does). Names: 'run', 'step', a phase (relative to its step, as in
--               steps.phases; 'phase:' is prefixed when the phase is literally called run/step),
--               'kernel:<kernel name>'
--   scope       run | step | phase | kernel
--   name        'run', 'step', the phase, or the kernel name
--   measure     what is measured (list below); unit: ms | count | ratio
--   value       the number (DOUBLE); NULL when the data it needs is missing (see note)
--   numerator, denominator   what value divides by what
--   additive    TRUE for sums (a phase or kernel absent from a run counts 0 there), FALSE for means
--   note        why value is NULL and which capture option fixes it; NULL otherwise
--
-- Measures. Every "per step" divides by the run's step count (all step instances of all its
-- traces and step kinds together, the innermost ranges matching step_pattern):
--   run.traces          traces in the run
--   run.wall_ms         longest trace window of the run (ranks run side by side)
--   run.gpu_busy_ms     union of GPU op intervals per device, summed over devices and traces
--   run.gpu_op_ms       summed GPU op duration;  run.gpu_ops: GPU ops
--   run.steps           step instances
--   step.wall_ms        summed end-to-end span / steps (steps.end_to_end_ns: step start to the later of
--                       the step's end and its last GPU op's end; an async step's GPU work counts)
--   step.gpu_busy_ms    summed per-step GPU busy (steps.sql gpu_busy_ns) / steps
--   step.gpu_op_ms      summed duration of GPU ops launched in steps / steps;  step.gpu_ops: ops / steps
--   step.launches       launching runtime calls (graph launches excluded) / steps
--   step.sync_stall_ms  host time blocked in sync calls / steps
--   step.gpu_busy_share summed per-step GPU busy / summed per-step end-to-end span on the step's devices
--                       (steps.e2e_dev_ns: the headline's 'GPU busy / end to end')
--   <phase>.ms_per_step      summed CPU range time of the phase (inclusive of child ranges) / steps
--   <phase>.gpu_ms_per_step  summed duration of GPU ops launched in the phase (exclusive) / steps
--   <phase>.calls_per_step   range instances of the phase / steps
--   kernel:<name>.total_ms   summed duration of the op name;  .count executions;  .mean_ms total / count
-- A run with no GPU op at all (a CPU-only capture) has every step./phase GPU measure NULL with a note
-- saying which capture option records them, never a zero (run.gpu_ops stays 0: it counts rows).
-- Multi-GPU block (second INSERT; needs the set-up parts of comm.sql and collectives.sql):
--   comm.exposed_ms_per_step  communication not under compute inside step windows (comm.sql by_step),
--                        summed over devices and steps / steps;  comm.ms_per_step: all of it
--   comm.overlap_share   run total: |comm under compute| / |comm| (HTA's comm/comp overlap), over devices
--   mem.exposed_ms_per_step   the same for memcpy/memset
--   rank.wait_ms_per_step     summed waits of every rank at matched collectives (collectives.sql
--                        waits) / steps (all ranks' step instances: the mean wait per rank and step)
--   rank.skew_ms_per_step     summed skew (latest - earliest aligned step end, collectives.sql
--                        step_skew) / steps matched on >= 2 ranks;  NULL for a single-rank run
--
-- Token and inclusive metrics (the block at the end of this file; inputs also token_counts from
-- tokens.sql's set-up):
--   <phase>.incl_gpu_ms_per_step  summed duration of GPU ops launched in the phase OR in any phase
--                       under it (draft = draft + draft/lm_head + draft/sampler ...) / steps
--   tokens.accepted_per_step   sum of `accepted` counts / steps that have one
--   tokens.acceptance_rate     sum accepted / sum drafted (steps with both)
--   tokens.ms_per_accepted     summed step CPU range time (steps.wall_ns) / sum accepted (steps with an accepted count)
--   tokens.gpu_ms_per_accepted summed per-step GPU busy / sum accepted
--   tokens.draft_ms_per_accepted  summed CPU time of the draft ranges / sum accepted
--   tokens.tokens_per_s        sum of `tokens` counts / seconds from the first to the last step with one
--   (NULL with a note when no step recorded tracekit.count(accepted=...), or none was accepted)
--
-- Output: table run_metrics_step_values, the per-step distributions behind the noise-aware comparison
-- (tracekit/noise.py): label, label_index, metric, trace, step_index, value, one row per step
-- AFTER THE WARM-UP (steps with step_index <= getvariable('warmup_steps') in their trace are
-- dropped; `--warmup N`, default 1) and per metric of: step.wall_ms (end-to-end, as above),
-- step.gpu_busy_ms (steps with GPU ops), <phase>.ms_per_step (phases with ranges) and, when the run
-- has GPU ops, step.gpu_op_ms, <phase>.gpu_ms_per_step, <phase>.incl_gpu_ms_per_step; a phase
-- absent from a step counts 0 in that step. The means in
-- run_metrics use every step; only the medians, intervals and rank tests use this table.
--
-- How to read: run this through compare.sql (N runs) or diff.sql (A vs B), not alone.

-- The steps a run's per-step metrics are over: real steps only. A trace where no range matched the step pattern
-- (lib/step_instances: its '(whole trace)' steps, one per process over the capture's window) has none here: two
-- captures' windows are not steps, so its step metrics stay NULL with the note, as before whole-trace steps.
CREATE OR REPLACE TEMP TABLE _rm_steps AS SELECT * FROM steps_rows WHERE NOT step_instances_whole(step_kind);
CREATE OR REPLACE TEMP TABLE _rm_phases AS SELECT * FROM steps_phases WHERE NOT step_instances_whole(step_kind);
CREATE OR REPLACE TEMP TABLE _rm_tokens AS SELECT * FROM token_counts WHERE NOT step_instances_whole(step_kind);

CREATE TEMP TABLE IF NOT EXISTS run_metrics (
    label VARCHAR, label_index INTEGER, metric VARCHAR, scope VARCHAR, name VARCHAR, measure VARCHAR,
    unit VARCHAR, value DOUBLE, numerator VARCHAR, denominator VARCHAR, additive BOOLEAN, note VARCHAR);

DELETE FROM run_metrics WHERE label = getvariable('label');

-- The notes of a metric that is NULL because the run has no steps / no GPU op (every block below uses them).
CREATE OR REPLACE TEMP MACRO _rm_no_step_note() AS
    'no range matched the step pattern ' || getvariable('step_pattern')
    || ': pass --step-pattern, or mark the loop with tracekit.phase("step")';
CREATE OR REPLACE TEMP MACRO _rm_no_gpu_note() AS
    'no GPU ops in this run: capture CUDA activity (' || notes_fix_cuda_torch() || ')';

INSERT INTO run_metrics
WITH _counts AS (
    SELECT (SELECT count(*) FROM _rm_steps) AS steps,
           _rm_no_step_note() AS no_step_note,
           (SELECT count(*) FROM gpu_activity) AS gpu_ops,
           _rm_no_gpu_note() AS no_gpu_note,
           (SELECT bool_and(has_runtime) FROM caps) AS has_runtime,
           (SELECT bool_and(has_sync) FROM caps) AS has_sync
), _step_sums AS (
    SELECT sum(end_to_end_ns) AS wall_ns, sum(coalesce(gpu_busy_ns, 0)) AS busy_ns, sum(gpu_op_ns) AS op_ns,
           sum(e2e_dev_ns) AS span_ns,
           sum(gpu_ops) AS ops, sum(launches) AS launches, sum(sync_stall_ns) AS stall_ns
    FROM _rm_steps
), _by_phase AS (
    SELECT CASE WHEN phase IN ('run', 'step', 'tokens') OR starts_with(phase, 'kernel:') THEN 'phase:' || phase
                ELSE phase END AS id,
           phase, sum(cpu_ns) AS cpu_ns, sum(range_instances) AS inst, sum(gpu_op_ns) AS gpu_op_ns
    FROM _rm_phases GROUP BY phase
), _by_kernel AS (
    SELECT name, sum(dur_ns) AS ns, count(*) AS n FROM gpu_activity GROUP BY name
), _rows(metric, scope, name, measure, unit, value, numerator, denominator, additive, note) AS (
    SELECT 'run.traces', 'run', 'run', 'traces', 'count', (SELECT count(*) FROM trace_window), 'traces', '-', TRUE, NULL
    UNION ALL
    SELECT 'run.wall_ms', 'run', 'run', 'wall_ms', 'ms', (SELECT max(window_ns) FROM trace_window) / 1e6,
           'longest trace window (first start to last end)', '-', TRUE, NULL
    UNION ALL
    SELECT 'run.gpu_busy_ms', 'run', 'run', 'gpu_busy_ms', 'ms', (SELECT sum(busy_ns) FROM idle_device_busy) / 1e6,
           'union of GPU op intervals per device, summed', '-', TRUE, CASE WHEN gpu_ops = 0 THEN no_gpu_note END
    FROM _counts
    UNION ALL
    SELECT 'run.gpu_op_ms', 'run', 'run', 'gpu_op_ms', 'ms', (SELECT sum(dur_ns) FROM gpu_activity) / 1e6,
           'summed GPU op duration', '-', TRUE, CASE WHEN gpu_ops = 0 THEN no_gpu_note END FROM _counts
    UNION ALL
    SELECT 'run.gpu_ops', 'run', 'run', 'gpu_ops', 'count', gpu_ops, 'GPU ops', '-', TRUE, NULL FROM _counts
    UNION ALL
    SELECT 'run.steps', 'run', 'run', 'steps', 'count', steps, 'step instances', '-', TRUE,
           CASE WHEN steps = 0 THEN no_step_note END FROM _counts
    UNION ALL
    SELECT 'step.' || m, 'step', 'step', m, u, CASE WHEN _counts.steps > 0 THEN v END, num, 'steps', FALSE,
           CASE WHEN _counts.steps = 0 THEN no_step_note WHEN v IS NULL THEN miss END
    FROM _counts, _step_sums, (VALUES
        ('wall_ms', 'ms', _step_sums.wall_ns / 1e6 / _counts.steps,
         'summed step end-to-end span (CPU start to last GPU end)', NULL),
        ('gpu_busy_ms', 'ms', CASE WHEN _counts.gpu_ops > 0 THEN _step_sums.busy_ns / 1e6 / _counts.steps END,
         'summed per-step GPU busy time', _counts.no_gpu_note),
        ('gpu_op_ms', 'ms', CASE WHEN _counts.gpu_ops > 0 THEN _step_sums.op_ns / 1e6 / _counts.steps END,
         'summed duration of GPU ops launched in steps', _counts.no_gpu_note),
        ('gpu_ops', 'count', CASE WHEN _counts.gpu_ops > 0 THEN _step_sums.ops / _counts.steps END,
         'GPU ops launched in steps',
         _counts.no_gpu_note),
        ('launches', 'count', CASE WHEN _counts.has_runtime THEN _step_sums.launches / _counts.steps END,
         'launching runtime calls in steps (graph launches excluded)',
         notes_no_runtime_rows()),
        ('sync_stall_ms', 'ms', CASE WHEN _counts.has_sync THEN _step_sums.stall_ns / 1e6 / _counts.steps END,
         'host time blocked in sync calls in steps',
         'no sync API call captured: ' || notes_fix_cuda() || '; syncs are unknown, not zero')
    ) t(m, u, v, num, miss)
    UNION ALL
    SELECT 'step.gpu_busy_share', 'step', 'step', 'gpu_busy_share', 'ratio',
           CASE WHEN _counts.steps > 0 THEN _step_sums.busy_ns / nullif(_step_sums.span_ns, 0) END,
           'summed per-step GPU busy time', 'summed per-step end-to-end span (per device)', FALSE,
           CASE WHEN _counts.steps = 0 THEN no_step_note END FROM _counts, _step_sums
    UNION ALL
    SELECT _by_phase.id || '.ms_per_step', 'phase', phase, 'ms_per_step', 'ms', cpu_ns / 1e6 / _counts.steps,
           'summed CPU range time of the phase', 'steps', TRUE, NULL FROM _by_phase, _counts WHERE inst > 0
    UNION ALL
    SELECT _by_phase.id || '.gpu_ms_per_step', 'phase', phase, 'gpu_ms_per_step', 'ms',
           CASE WHEN _counts.gpu_ops > 0 THEN gpu_op_ns / 1e6 / _counts.steps END,
           'summed duration of GPU ops launched in the phase', 'steps', TRUE,
           CASE WHEN _counts.gpu_ops = 0 THEN no_gpu_note END FROM _by_phase, _counts
    UNION ALL
    SELECT _by_phase.id || '.calls_per_step', 'phase', phase, 'calls_per_step', 'count', inst / _counts.steps,
           'range instances of the phase', 'steps', TRUE, NULL FROM _by_phase, _counts WHERE inst > 0
    UNION ALL
    SELECT 'kernel:' || name || '.total_ms', 'kernel', name, 'total_ms', 'ms', ns / 1e6, 'summed duration', '-', TRUE,
           NULL FROM _by_kernel
    UNION ALL
    SELECT 'kernel:' || name || '.count', 'kernel', name, 'count', 'count', n, 'executions', '-', TRUE, NULL
    FROM _by_kernel
    UNION ALL
    SELECT 'kernel:' || name || '.mean_ms', 'kernel', name, 'mean_ms', 'ms', ns / 1e6 / n, 'summed duration',
           'executions', FALSE, NULL FROM _by_kernel
)
SELECT getvariable('label'), getvariable('label_index'), metric, scope, name, measure, unit, value::DOUBLE,
       numerator, denominator, additive, note
FROM _rows;

-- ---------------------------------------------------------------------------------------------
-- Token metrics, inclusive phase GPU time, per-step distributions (see the header).

INSERT INTO run_metrics
WITH _counts AS (SELECT (SELECT count(*) FROM _rm_steps) AS steps, (SELECT count(*) FROM gpu_activity) AS gpu_ops),
_phase_ids AS (
    SELECT phase,
           CASE WHEN phase IN ('run', 'step', 'tokens') OR starts_with(phase, 'kernel:') THEN 'phase:' || phase
                ELSE phase END AS id
    FROM _rm_phases GROUP BY phase
), _incl AS (
    SELECT i.id, i.phase, sum(p.gpu_op_ns) AS ns
    FROM _phase_ids i JOIN _rm_phases p ON p.phase = i.phase OR starts_with(p.phase, i.phase || '/')
    GROUP BY ALL
), _token_sums AS (
    SELECT count(accepted) AS counted, sum(accepted) AS acc,
           sum(accepted) FILTER (WHERE drafted IS NOT NULL) AS acc_d,
           sum(drafted) FILTER (WHERE accepted IS NOT NULL) AS d_acc,
           sum(wall_ns) FILTER (WHERE accepted IS NOT NULL) AS wall_ns,
           sum(gpu_busy_ns) FILTER (WHERE accepted IS NOT NULL) AS busy_ns,
           count(gpu_busy_ns) FILTER (WHERE accepted IS NOT NULL) AS busy_steps,
           sum(draft_cpu_ns) FILTER (WHERE accepted IS NOT NULL) AS draft_ns,
           sum(tokens) AS toks,
           max(end_ns) FILTER (WHERE tokens IS NOT NULL) - min(ts_ns) FILTER (WHERE tokens IS NOT NULL) AS tok_span
    FROM _rm_tokens
), _token_note AS (
    SELECT CASE WHEN _counts.steps = 0 THEN 'no step in this run (see run.steps)'
                WHEN _token_sums.counted = 0
                THEN 'no accepted-token count: record tracekit.count(accepted=..., drafted=...) in each step '
                     || '(the SGLang plugin and samples/spec_decode.py do)'
                WHEN _token_sums.acc = 0 THEN 'no draft token accepted: per accepted token is undefined' END AS note
    FROM _counts, _token_sums
), _rows(metric, scope, name, measure, unit, value, numerator, denominator, additive, note) AS (
    SELECT _incl.id || '.incl_gpu_ms_per_step', 'phase', _incl.phase, 'incl_gpu_ms_per_step', 'ms',
           CASE WHEN _counts.gpu_ops > 0 THEN ns / 1e6 / _counts.steps END,
           'summed duration of GPU ops launched in the phase or any phase under it', 'steps', TRUE,
           CASE WHEN _counts.gpu_ops = 0 THEN _rm_no_gpu_note() END
    FROM _incl, _counts
    UNION ALL
    SELECT 'tokens.' || m, 'tokens', 'tokens', m, u, CASE WHEN _token_sums.counted > 0 THEN v END, num, den, FALSE,
           CASE WHEN _token_sums.counted = 0 THEN _token_note.note
                WHEN v IS NULL THEN coalesce(miss, _token_note.note) END
    FROM _token_sums, _token_note, (VALUES
        ('accepted_per_step', 'count', _token_sums.acc / nullif(_token_sums.counted, 0), 'accepted draft tokens',
         'steps with an accepted count', NULL),
        ('acceptance_rate', 'ratio', _token_sums.acc_d / nullif(_token_sums.d_acc, 0), 'accepted draft tokens',
         'drafted tokens',
         'no drafted count: record tracekit.count(drafted=...)'),
        ('ms_per_accepted', 'ms', _token_sums.wall_ns / 1e6 / nullif(_token_sums.acc, 0), 'summed step CPU range time',
         'accepted draft tokens', NULL),
        ('gpu_ms_per_accepted', 'ms',
         CASE WHEN _token_sums.busy_steps > 0 THEN _token_sums.busy_ns / 1e6 / nullif(_token_sums.acc, 0) END,
         'summed per-step GPU busy time', 'accepted draft tokens',
         'no GPU op in the counted steps: capture CUDA activity (' || notes_fix_cuda_activity() || ')'),
        ('draft_ms_per_accepted', 'ms', _token_sums.draft_ns / 1e6 / nullif(_token_sums.acc, 0),
         'summed CPU time of the draft ranges',
         'accepted draft tokens', NULL),
        ('tokens_per_s', 'count', _token_sums.toks / nullif(_token_sums.tok_span / 1e9, 0),
         'tokens counted (accepted + bonus)',
         'seconds from the first to the last step end with a tokens count',
         'no tokens count: record tracekit.count(tokens=...)')
    ) t(m, u, v, num, den, miss)
)
SELECT getvariable('label'), getvariable('label_index'), metric, scope, name, measure, unit, value::DOUBLE,
       numerator, denominator, additive, note
FROM _rows;

-- Multi-GPU metrics (comm.sql, collectives.sql); a separate block so the ones above stay untouched.
INSERT INTO run_metrics
WITH _counts AS (
    SELECT (SELECT count(*) FROM _rm_steps) AS steps, (SELECT count(*) FROM gpu_activity) AS gpu_ops,
           (SELECT count(*) FROM collectives_rank_steps) > 0 AS multi,
           (SELECT count(DISTINCT step_key) FROM collectives_rank_steps) AS keys,
           _rm_no_step_note() AS no_step_note,
           _rm_no_gpu_note() AS no_gpu_note
), _comm_sums AS (
    SELECT sum(comm_exposed_ns) AS comm_exp, sum(comm_ns) AS comm, sum(mem_exposed_ns) AS mem_exp FROM comm_steps
), _overlap_sums AS (
    SELECT sum(len * f_comm) AS comm, sum(len * f_comm_ov) AS comm_ov FROM comm_segments
), _rank_sums AS (
    SELECT (SELECT sum(skew_ns)
            FROM (SELECT max(end_ns) - min(end_ns) AS skew_ns FROM collectives_rank_steps
                  GROUP BY step_key HAVING count(*) >= 2)) AS skew,
           (SELECT sum(wait_ns) FROM collectives_waits) AS wait
), _rows(metric, scope, name, measure, unit, value, numerator, denominator, additive, note) AS (
    SELECT 'comm.' || m, 'comm', 'comm', m, 'ms',
           CASE WHEN _counts.steps > 0 AND _counts.gpu_ops > 0 THEN coalesce(v, 0) / 1e6 / _counts.steps END,
           num, 'steps', TRUE,
           CASE WHEN _counts.gpu_ops = 0 THEN no_gpu_note WHEN _counts.steps = 0 THEN no_step_note END
    FROM _counts, _comm_sums, (VALUES ('exposed_ms_per_step', _comm_sums.comm_exp,
                          'communication kernel time not under compute, in steps, summed over devices'),
                         ('ms_per_step', _comm_sums.comm,
                          'communication kernel time (union per device) in steps, summed over devices')) t(m, v, num)
    UNION ALL
    SELECT 'comm.overlap_share', 'comm', 'comm', 'overlap_share', 'ratio',
           _overlap_sums.comm_ov / nullif(_overlap_sums.comm, 0),
           'communication time under compute', 'communication time (union per device, summed)', FALSE,
           CASE WHEN coalesce(_overlap_sums.comm, 0) = 0 THEN comm_no_comm() || ' in this run' END
    FROM _overlap_sums
    UNION ALL
    SELECT 'mem.exposed_ms_per_step', 'mem', 'mem', 'exposed_ms_per_step', 'ms',
           CASE WHEN _counts.steps > 0 AND _counts.gpu_ops > 0
                THEN coalesce(_comm_sums.mem_exp, 0) / 1e6 / _counts.steps END,
           'memcpy/memset time not under compute, in steps, summed over devices', 'steps', TRUE,
           CASE WHEN _counts.gpu_ops = 0 THEN no_gpu_note WHEN _counts.steps = 0 THEN no_step_note END
    FROM _counts, _comm_sums
    UNION ALL
    SELECT 'rank.wait_ms_per_step', 'rank', 'rank', 'wait_ms_per_step', 'ms',
           CASE WHEN _counts.multi AND _counts.steps > 0 THEN coalesce(_rank_sums.wait, 0) / 1e6 / _counts.steps END,
           'waits of every rank at matched collectives', 'steps (all ranks)', TRUE,
           CASE WHEN _counts.steps = 0 THEN no_step_note WHEN NOT _counts.multi
                THEN 'one rank only: cross-rank waits need one trace per rank (a folder of rank traces)' END
    FROM _counts, _rank_sums
    UNION ALL
    SELECT 'rank.skew_ms_per_step', 'rank', 'rank', 'skew_ms_per_step', 'ms',
           CASE WHEN _counts.multi AND _counts.keys > 0 THEN _rank_sums.skew / 1e6 / _counts.keys END,
           'latest minus earliest aligned step end, summed over steps', 'steps matched on >= 2 ranks', FALSE,
           CASE WHEN _counts.steps = 0 THEN no_step_note WHEN NOT _counts.multi
                THEN 'one rank only: step skew needs one trace per rank (a folder of rank traces)' END
    FROM _counts, _rank_sums
)
SELECT getvariable('label'), getvariable('label_index'), metric, scope, name, measure, unit, value::DOUBLE,
       numerator, denominator, additive, note
FROM _rows;

CREATE TEMP TABLE IF NOT EXISTS run_metrics_step_values (
    label VARCHAR, label_index INTEGER, metric VARCHAR, trace VARCHAR, step_index BIGINT, value DOUBLE);

DELETE FROM run_metrics_step_values WHERE label = getvariable('label');

INSERT INTO run_metrics_step_values
WITH _steps_kept AS (
    SELECT trace, step_index, end_to_end_ns, gpu_busy_ns, gpu_op_ns FROM _rm_steps
    WHERE step_index > coalesce(TRY_CAST(getvariable('warmup_steps') AS BIGINT), 0)
), _phase_ids AS (
    SELECT phase,
           CASE WHEN phase IN ('run', 'step', 'tokens') OR starts_with(phase, 'kernel:') THEN 'phase:' || phase
                ELSE phase END AS id,
           sum(range_instances) > 0 AS has_ranges
    FROM _rm_phases GROUP BY phase
), _grid AS (
    SELECT s.trace, s.step_index, i.phase, i.id, i.has_ranges FROM _steps_kept s CROSS JOIN _phase_ids i
), _phase_values AS (
    SELECT g.trace, g.step_index, g.id, g.has_ranges, coalesce(p.cpu_ns, 0) AS cpu_ns,
           coalesce(p.gpu_op_ns, 0) AS gpu_ns
    FROM _grid g LEFT JOIN _rm_phases p USING (trace, step_index, phase)
), _incl AS (
    SELECT g.trace, g.step_index, g.id, coalesce(sum(q.gpu_op_ns), 0) AS incl_ns
    FROM _grid g LEFT JOIN _rm_phases q
      ON q.trace = g.trace AND q.step_index = g.step_index
         AND (q.phase = g.phase OR starts_with(q.phase, g.phase || '/'))
    GROUP BY ALL
), _step_values(metric, trace, step_index, value) AS (
    SELECT 'step.wall_ms', trace, step_index, end_to_end_ns / 1e6 FROM _steps_kept
    UNION ALL SELECT 'step.gpu_busy_ms', trace, step_index, gpu_busy_ns / 1e6 FROM _steps_kept
              WHERE gpu_busy_ns IS NOT NULL
    UNION ALL SELECT 'step.gpu_op_ms', trace, step_index, gpu_op_ns / 1e6 FROM _steps_kept
              WHERE EXISTS (FROM gpu_activity)
    UNION ALL SELECT id || '.ms_per_step', trace, step_index, cpu_ns / 1e6 FROM _phase_values WHERE has_ranges
    UNION ALL SELECT id || '.gpu_ms_per_step', trace, step_index, gpu_ns / 1e6 FROM _phase_values
              WHERE EXISTS (FROM gpu_activity)
    UNION ALL SELECT id || '.incl_gpu_ms_per_step', trace, step_index, incl_ns / 1e6 FROM _incl
              WHERE EXISTS (FROM gpu_activity)
)
SELECT getvariable('label'), getvariable('label_index'), metric, trace, step_index, value::DOUBLE FROM _step_values;
