-- compare: how do N labelled runs differ (a sweep: top-k = 1..5, batch sizes, two builds)?
--
-- Run it with `tracekit compare --label k=1 a.parquet --label k=2 b.parquet ...` (or
-- tracekit.compare.compare): that runs lib/run_metrics.sql once per run, filling the table
-- run_metrics, then this file once over all runs. The first run given is the baseline.
--
-- Inputs: run_metrics (see lib/run_metrics.sql for every metric and its definition); _noise
-- (tracekit/noise.py over lib/run_metrics.sql's run_metrics_step_values: per metric and run, the ratio of
-- per-step medians to the baseline's, its 95% bootstrap interval and rank-test p-value). No parameters.
--
-- Set-up (_labels private; compare_matrix public, read by diff.sql):
--   _labels  label, label_index of every run
--   compare_matrix  every metric of any run, for every run (label x metric), with the value filled in:
--            a run where a phase or kernel does not occur gets 0 for sums (additive) and NULL for
--            means, and NULL for everything when that run has no step (phases) or no GPU op
--            (kernels) at all: absent data is never a zero. Columns: label, label_index, metric,
--            scope, name, measure, unit, numerator, denominator, value, present (the run itself
--            produced the row), note.
--
-- Output `compare` (long: one row per run and metric, the label a column):
--   label, label_index, metric, scope, name, measure, unit, numerator, denominator (what value divides)
-- Output `sweep` (one row per run, the LenVM sweep table): label, traces, steps,
--   wall_ms (run.wall_ms), wall_ratio (wall_ms / baseline's), step_wall_ms (step.wall_ms),
--   step_wall_ratio, step_gpu_busy_ms, gpu_busy_ms (run.gpu_busy_ms), gpu_op_ms (run.gpu_op_ms)
-- Output `phases` (one row per run and phase, the 12 phases with the largest ms_per_step in any
--   run): label, label_index, phase, ms_per_step, ratio (ms_per_step / baseline's), gpu_ms_per_step,
--   calls_per_step (all as in lib/run_metrics.sql)
--
-- Output `noise` (one row per run and metric of step.wall_ms, step.gpu_busy_ms, tokens-free step/
--   phase metrics with per-step values; the baseline has none): label, label_index, metric,
--   n_base, n (steps after warm-up), median_base, median, ratio (median / median_base), ci_lo,
--   ci_hi (95% bootstrap interval of ratio), p_value (Mann-Whitney vs the baseline), verdict
--   (higher | lower | within noise)
--
-- Output `tokens` (one row per run, the per-gamma / per-setting statistics table): label, steps
--   (after the warm-up), wall_ms_p10, wall_ms_p50, wall_ms_p90, wall_ms_mean (step.wall_ms per step,
--   from run_metrics_step_values), accepted_per_step, acceptance_rate, ms_per_accepted, tokens_per_s
--   (the tokens.* metrics of lib/run_metrics.sql; NULL without tracekit.count events)
-- Output `step_values` (one row per run and step after the warm-up: the distribution plot's
--   input and the per-position latency): label, label_index, trace, step_index, wall_ms
--
-- How to read: `sweep` answers "how much slower is each setting"; `phases` says which phase moved;
-- `noise` says which of those moves are more than step-to-step noise.
-- `tracekit compare --sql` can query run_metrics, compare_matrix and `events` (with its label column).

CREATE OR REPLACE TEMP TABLE _labels AS
SELECT DISTINCT label, label_index FROM run_metrics;

CREATE OR REPLACE TEMP TABLE compare_matrix AS
WITH _metric_ids AS (
    SELECT metric, any_value(scope) AS scope, any_value(name) AS name, any_value(measure) AS measure,
           any_value(unit) AS unit, any_value(numerator) AS numerator, any_value(denominator) AS denominator,
           bool_or(additive) AS additive
    FROM run_metrics GROUP BY metric
), _run_counts AS (
    SELECT label, max(value) FILTER (WHERE metric = 'run.steps') AS steps,
           max(value) FILTER (WHERE metric = 'run.gpu_ops') AS gpu_ops
    FROM run_metrics GROUP BY label
)
SELECT l.label, l.label_index, i.metric, i.scope, i.name, i.measure, i.unit, i.numerator, i.denominator,
       CASE WHEN r.metric IS NOT NULL THEN r.value
            WHEN NOT i.additive THEN NULL
            WHEN i.scope = 'phase' AND c.steps > 0 THEN 0
            WHEN i.scope = 'kernel' AND c.gpu_ops > 0 THEN 0 END AS value,
       r.metric IS NOT NULL AS present,
       CASE WHEN r.metric IS NOT NULL THEN r.note
            WHEN i.scope = 'phase' AND coalesce(c.steps, 0) = 0 THEN 'no step in this run (see run.steps)'
            WHEN i.scope = 'kernel' AND coalesce(c.gpu_ops, 0) = 0 THEN 'no GPU op in this run (see run.gpu_ops)'
            WHEN i.additive THEN 'absent from this run'
            ELSE 'absent from this run: no value' END AS note
FROM _labels l CROSS JOIN _metric_ids i
LEFT JOIN run_metrics r ON r.label = l.label AND r.metric = i.metric
LEFT JOIN _run_counts c ON c.label = l.label;

-- @output compare
-- @column label       TEXT      the run's label (--label, else the file name)
-- @column label_index ID        the run's position (0 = the baseline: the first run given)
-- @column metric      TEXT      what the row measures (metric names of lib/run_metrics.sql or columns of steps)
-- @column scope       TEXT      what the row covers
-- @column name        TEXT      the op or range name
-- @column measure     TEXT      which quantity the row compares
-- @column unit        TEXT      the unit of the row's values: ns | count | share
-- @column numerator   TEXT      what value counts
-- @column denominator TEXT      what value is divided by
-- @column value       VALUE     the run's value
-- @column base_value  NUMBER    the baseline run's value
-- @column delta       VALUE     value - base_value
-- @column ratio       NUMBER    value / base_value (NULL when base_value is 0 or NULL)
-- @column note        NOTE      why a value is NULL, or that the phase/kernel is absent from the run
SELECT m.label, m.label_index, m.metric, m.scope, m.name, m.measure, m.unit, m.numerator, m.denominator,
       m.value, b.value AS base_value,
       m.value - b.value AS delta, m.value / nullif(b.value, 0) AS ratio, m.note
FROM compare_matrix m
JOIN compare_matrix b ON b.metric = m.metric AND b.label_index = (SELECT min(label_index) FROM _labels)
ORDER BY list_position(['run', 'step', 'phase', 'kernel'], m.scope), m.name, m.measure, m.label_index;

-- @output sweep
-- @column label            TEXT      the run's label (--label, else the file name)
-- @column traces           COUNT     traces of the run
-- @column steps            COUNT     steps of the run
-- @column wall_ms          NUMBER    run.wall_ms
-- @column wall_ratio       NUMBER    wall_ms / the baseline's
-- @column step_wall_ms     NUMBER    step.wall_ms
-- @column step_wall_ratio  NUMBER    median step wall time / the baseline's
-- @column step_gpu_busy_ms NUMBER    median per-step GPU busy time, ms
-- @column gpu_busy_ms      NUMBER    run.gpu_busy_ms
-- @column gpu_op_ms        NUMBER    run.gpu_op_ms
WITH _per_run AS (
    SELECT label, label_index,
           max(value) FILTER (WHERE metric = 'run.traces') AS traces,
           max(value) FILTER (WHERE metric = 'run.steps') AS steps,
           max(value) FILTER (WHERE metric = 'run.wall_ms') AS wall_ms,
           max(value) FILTER (WHERE metric = 'step.wall_ms') AS step_wall_ms,
           max(value) FILTER (WHERE metric = 'step.gpu_busy_ms') AS step_gpu_busy_ms,
           max(value) FILTER (WHERE metric = 'run.gpu_busy_ms') AS gpu_busy_ms,
           max(value) FILTER (WHERE metric = 'run.gpu_op_ms') AS gpu_op_ms
    FROM compare_matrix GROUP BY label, label_index
), _baseline AS (SELECT * FROM _per_run WHERE label_index = (SELECT min(label_index) FROM _labels))
SELECT w.label, w.traces::BIGINT AS traces, w.steps::BIGINT AS steps, w.wall_ms,
       w.wall_ms / nullif(b.wall_ms, 0) AS wall_ratio, w.step_wall_ms,
       w.step_wall_ms / nullif(b.step_wall_ms, 0) AS step_wall_ratio,
       w.step_gpu_busy_ms, w.gpu_busy_ms, w.gpu_op_ms
FROM _per_run w, _baseline b
ORDER BY w.label_index;

-- @output phases
-- @column label           TEXT      the run's label (--label, else the file name)
-- @column label_index     ID        the run's position (0 = the baseline: the first run given)
-- @column phase           TEXT      the phase (a range name; '(other)' = directly in the step, in no phase of
--                                   it)
-- @column ms_per_step     NUMBER    the phase's CPU range time per step, ms
-- @column ratio           NUMBER    ms_per_step / the baseline's
-- @column gpu_ms_per_step NUMBER    the phase's GPU op time per step, ms
-- @column calls_per_step  NUMBER    launch calls per step (as in lib/run_metrics.sql)
WITH _top_phases AS (
    SELECT name FROM compare_matrix WHERE measure = 'ms_per_step'
    GROUP BY name ORDER BY max(value) DESC NULLS LAST, name LIMIT 12
), _per_phase AS (
    SELECT label, label_index, name AS phase,
           max(value) FILTER (WHERE measure = 'ms_per_step') AS ms_per_step,
           max(value) FILTER (WHERE measure = 'gpu_ms_per_step') AS gpu_ms_per_step,
           max(value) FILTER (WHERE measure = 'calls_per_step') AS calls_per_step
    FROM compare_matrix WHERE scope = 'phase' AND name IN (SELECT name FROM _top_phases)
    GROUP BY ALL
)
SELECT p.label, p.label_index, p.phase, p.ms_per_step, p.ms_per_step / nullif(b.ms_per_step, 0) AS ratio,
       p.gpu_ms_per_step, p.calls_per_step
FROM _per_phase p JOIN _per_phase b ON b.phase = p.phase AND b.label_index = (SELECT min(label_index) FROM _labels)
ORDER BY p.label_index, p.ms_per_step DESC NULLS LAST, p.phase;

-- @output noise
-- @column label       TEXT      the run's label (--label, else the file name)
-- @column label_index ID        the run's position (0 = the baseline: the first run given)
-- @column metric      TEXT      what the row measures (metric names of lib/run_metrics.sql or columns of steps)
-- @column n_base      COUNT     steps of the baseline after warm-up
-- @column n           COUNT     steps after warm-up
-- @column median_base NUMBER    the baseline's median
-- @column median      NUMBER    this run's median
-- @column ratio       NUMBER    median / median_base
-- @column ci_lo       NUMBER    lower end of the 95% bootstrap interval of ratio
-- @column ci_hi       NUMBER    upper end of the 95% bootstrap interval of ratio
-- @column p_value     P_VALUE   Mann-Whitney vs the baseline
-- @column verdict     TEXT      higher | lower | within noise
SELECT label, label_index, metric, n_base, n, median_base, median, ratio, ci_lo, ci_hi, p_value, verdict
FROM _noise WHERE level = 0.95
ORDER BY label_index, list_position(['step.wall_ms', 'step.gpu_busy_ms', 'step.gpu_op_ms'], metric) NULLS LAST,
         abs(ln(nullif(ratio, 0))) DESC NULLS LAST, metric;

-- @output tokens
-- @column label             TEXT      the run's label (--label, else the file name)
-- @column steps             COUNT     steps of the run
-- @column wall_ms_p10       NUMBER    10th percentile of the step wall time, ms
-- @column wall_ms_p50       NUMBER    median step wall time, ms
-- @column wall_ms_p90       NUMBER    90th percentile of the step wall time, ms
-- @column wall_ms_mean      NUMBER    mean step wall time, ms
-- @column accepted_per_step NUMBER    sum of accepted counts / steps that have one
-- @column acceptance_rate   NUMBER    sum accepted / sum drafted (steps with both)
-- @column ms_per_accepted   NUMBER    summed step CPU range time / sum accepted, ms
-- @column tokens_per_s      NUMBER    tokens per second (tokens.* metrics of lib/run_metrics.sql; NULL without
--                                     tracekit.count events)
WITH _step_walls AS (
    SELECT label, count(*) AS steps, quantile_cont(value, 0.1) AS wall_ms_p10, quantile_cont(value, 0.5) AS wall_ms_p50,
           quantile_cont(value, 0.9) AS wall_ms_p90,
           avg(value ORDER BY trace, step_index) AS wall_ms_mean  -- summed in a fixed order: floating-point sums
                                                                  -- depend on it
    FROM run_metrics_step_values WHERE metric = 'step.wall_ms' GROUP BY label
)
SELECT l.label, coalesce(d.steps, 0) AS steps, d.wall_ms_p10, d.wall_ms_p50, d.wall_ms_p90, d.wall_ms_mean,
       max(m.value) FILTER (WHERE m.metric = 'tokens.accepted_per_step') AS accepted_per_step,
       max(m.value) FILTER (WHERE m.metric = 'tokens.acceptance_rate') AS acceptance_rate,
       max(m.value) FILTER (WHERE m.metric = 'tokens.ms_per_accepted') AS ms_per_accepted,
       max(m.value) FILTER (WHERE m.metric = 'tokens.tokens_per_s') AS tokens_per_s
FROM _labels l LEFT JOIN _step_walls d USING (label)
LEFT JOIN compare_matrix m ON m.label = l.label AND m.scope = 'tokens'
GROUP BY l.label, l.label_index, d.steps, d.wall_ms_p10, d.wall_ms_p50, d.wall_ms_p90, d.wall_ms_mean
ORDER BY l.label_index;

-- @output step_values
-- @column label       TEXT      the run's label (--label, else the file name)
-- @column label_index ID        the run's position (0 = the baseline: the first run given)
-- @column trace       TEXT      the trace (input file name) the row is about
-- @column step_index  ID        the step's number in its trace (1.. in time order)
-- @column wall_ms     NUMBER    the step's wall time, ms
SELECT label, label_index, trace, step_index, value AS wall_ms FROM run_metrics_step_values
WHERE metric = 'step.wall_ms' ORDER BY label_index, trace, step_index;
