-- diff: what changed from run A (baseline) to run B, and does it break a CI gate?
-- @requires compare
--
-- Run it with `tracekit diff A B [--fail-if COND]...` (or tracekit.compare.diff): a diff is a
-- compare of two labelled runs, so it runs lib/run_metrics.sql once per run and compare.sql's
-- set-up (compare_matrix) first. A = label_index 0, B = label_index 1.
--
-- Inputs: compare_matrix (compare.sql); _conditions (the parsed --fail-if conditions, written by
-- tracekit.compare: condition, metric, op, mode, threshold, level: NULL or the @LEVEL as a
-- fraction); _noise (tracekit/noise.py: per metric and level, the ratio of per-step medians of
-- B over A, its bootstrap interval ci_lo..ci_hi, the rank-test p_value, the verdict; from
-- lib/run_metrics.sql's run_metrics_step_values, warm-up steps dropped). Parameters:
-- getvariable('top_n') (default 50): rows of the `kernels` output.
--
-- Output `diff` (one row per run / step / phase metric; metrics as defined in lib/run_metrics.sql):
--   metric, scope, name, measure, unit, numerator, denominator (what the metric divides by what)
-- Output `kernels` (the top_n kernel names whose total time moved, largest |delta| first):
--   name, status (both | new: only in B | vanished: only in A), a_ms, b_ms (total_ms),
--   delta_ms, ratio, a_count, b_count, a_mean_ms, b_mean_ms
-- Output `new_vanished`: every kernel name found in only one of the runs, same columns.
-- Output `noise` (one row per step/phase metric with per-step values in both runs, at the 95%
--   level): metric, unit, n_a, n_b (steps after warm-up), median_a, median_b, ratio (median_b /
--   median_a), ci_lo, ci_hi (bootstrap interval of ratio), level, p_value (Mann-Whitney, two-sided),
--   verdict (higher | lower: the interval excludes 1; within noise: it contains 1; NULL: < 3 steps)
--   Sorted: metrics that moved beyond noise first, then by |log ratio|.
-- Output `gate` (one row per --fail-if condition):
--
-- How to read: sort `diff` by |delta| to see what moved; ratio > 1 means B is larger.

CREATE OR REPLACE TEMP TABLE _ab AS
SELECT a.metric, a.scope, a.name, a.measure, a.unit, a.numerator, a.denominator, a.value AS a, b.value AS b,
       b.value - a.value AS delta,
       b.value / nullif(a.value, 0) AS ratio, (b.value - a.value) / nullif(a.value, 0) AS rel,
       CASE WHEN a.note = b.note THEN 'A and B: ' || a.note
            ELSE nullif(concat_ws('; ', CASE WHEN a.note IS NOT NULL THEN 'A: ' || a.note END,
                                        CASE WHEN b.note IS NOT NULL THEN 'B: ' || b.note END), '') END AS note
FROM compare_matrix a JOIN compare_matrix b ON b.metric = a.metric AND b.label_index = 1
WHERE a.label_index = 0;

CREATE OR REPLACE TEMP TABLE _kab AS
SELECT t.name,
       CASE WHEN c.a = 0 AND c.b > 0 THEN 'new' WHEN c.b = 0 AND c.a > 0 THEN 'vanished' ELSE 'both' END AS status,
       t.a AS a_ms, t.b AS b_ms, t.delta AS delta_ms, t.ratio, c.a::BIGINT AS a_count, c.b::BIGINT AS b_count,
       m.a AS a_mean_ms, m.b AS b_mean_ms
FROM _ab t
JOIN _ab c ON c.scope = 'kernel' AND c.name = t.name AND c.measure = 'count'
JOIN _ab m ON m.scope = 'kernel' AND m.name = t.name AND m.measure = 'mean_ms'
WHERE t.scope = 'kernel' AND t.measure = 'total_ms';

-- @output diff
-- @column metric      TEXT      what the row measures (metric names of lib/run_metrics.sql or columns of steps)
-- @column scope       TEXT      what the row covers
-- @column name        TEXT      the op or range name
-- @column measure     TEXT      which quantity the row compares
-- @column unit        TEXT      the unit of the row's values: ns | count | share
-- @column numerator   TEXT      what value counts
-- @column denominator TEXT      what value is divided by
-- @column a           VALUE     the metric in A
-- @column b           VALUE     the metric in B
-- @column delta       VALUE     b - a (in unit)
-- @column ratio       NUMBER    b / a (NULL when a is 0 or NULL)
-- @column rel         NUMBER    (b - a) / a (NULL when a is 0 or NULL)
-- @column note        NOTE      'A: ...' / 'B: ...' when a side is NULL (what is missing, which capture
--                               option fixes it) or its phase is absent from that run; 'A and B: ...' when
--                               both say the same
--
--                               both say the same
SELECT metric, scope, name, measure, unit, numerator, denominator, a, b, delta, ratio, rel, note
FROM _ab WHERE scope <> 'kernel'
ORDER BY list_position(['run', 'step', 'phase'], scope),
         max(greatest(coalesce(a, 0), coalesce(b, 0))) FILTER (WHERE measure = 'ms_per_step')
             OVER (PARTITION BY scope, name) DESC NULLS LAST,
         name, measure;

-- @output kernels
-- @column name      TEXT      the op or range name
-- @column status    TEXT      both | new: only in B | vanished: only in A
-- @column a_ms      NUMBER    A's value, ms
-- @column b_ms      NUMBER    B's value, ms
-- @column delta_ms  NUMBER    B - A, ms
-- @column ratio     NUMBER    b / a (NULL when a is 0 or NULL)
-- @column a_count   COUNT     A's count
-- @column b_count   COUNT     B's count
-- @column a_mean_ms NUMBER    A's mean per call, ms
-- @column b_mean_ms NUMBER    B's mean per call, ms
SELECT * FROM _kab
WHERE delta_ms <> 0 OR a_count <> b_count OR delta_ms IS NULL
ORDER BY abs(delta_ms) DESC NULLS LAST, name
LIMIT getvariable('top_n');

-- @output new_vanished
-- @column name      TEXT      the op or range name
-- @column status    TEXT      both | new: only in B | vanished: only in A
-- @column a_ms      NUMBER    A's value, ms
-- @column b_ms      NUMBER    B's value, ms
-- @column delta_ms  NUMBER    B - A, ms
-- @column ratio     NUMBER    b / a (NULL when a is 0 or NULL)
-- @column a_count   COUNT     A's count
-- @column b_count   COUNT     B's count
-- @column a_mean_ms NUMBER    A's mean per call, ms
-- @column b_mean_ms NUMBER    B's mean per call, ms
SELECT * FROM _kab WHERE status <> 'both' ORDER BY status, greatest(a_ms, b_ms) DESC, name;

-- @output noise
-- @column metric   TEXT      what the row measures (metric names of lib/run_metrics.sql or columns of steps)
-- @column unit     TEXT      the unit of the row's values: ns | count | share
-- @column n_a      COUNT     A's steps after warm-up
-- @column n_b      COUNT     B's steps after warm-up
-- @column median_a NUMBER    A's median per-step value
-- @column median_b NUMBER    B's median per-step value
-- @column ratio    NUMBER    median_b / median_a
-- @column ci_lo    NUMBER    lower end of the bootstrap interval of ratio
-- @column ci_hi    NUMBER    upper end of the bootstrap interval of ratio
-- @column level    NUMBER    the interval's level (0.95)
-- @column p_value  P_VALUE   Mann-Whitney, two-sided
-- @column verdict  TEXT      higher | lower: the interval excludes 1; within noise: it contains 1; NULL: < 3
--                            steps
SELECT n.metric, t.unit, n.n_base AS n_a, n.n AS n_b, n.median_base AS median_a, n.median AS median_b, n.ratio,
       n.ci_lo, n.ci_hi, n.level, n.p_value, n.verdict
FROM _noise n LEFT JOIN _ab t USING (metric)
WHERE n.label_index = 1 AND n.level = 0.95
ORDER BY n.verdict = 'within noise' OR n.verdict IS NULL, abs(ln(nullif(n.ratio, 0))) DESC NULLS LAST, n.metric;

-- @output gate
-- @column condition    TEXT      the --fail-if condition as written
-- @column metric       TEXT      what the row measures (metric names of lib/run_metrics.sql or columns of steps)
-- @column op           TEXT      the condition's comparison operator
-- @column mode         TEXT      rel: (b-a)/a | ratio: b/a | abs: b-a
-- @column threshold    NUMBER    the condition's threshold (rel, ratio: a fraction; abs: in the metric's
--                                unit)
-- @column level        NUMBER    NULL for a plain condition; with @LEVEL the fraction (0.95), and then
--                                observed is the ratio of medians (ratio - 1 for rel) and the condition holds
--                                only when the whole interval does: for > and >= its lower end, for < and <=
--                                its upper end
-- @column observed     NUMBER    the quantity compared with the threshold (rel and ratio: +-inf when a = 0 <
--                                |b|)
-- @column ci_lo        NUMBER    lower end of the interval of observed (NULL without @LEVEL)
-- @column ci_hi        NUMBER    upper end of the interval of observed (NULL without @LEVEL)
-- @column fired        BOOL      TRUE when `observed op threshold` holds; NULL when it cannot be evaluated
-- @column within_noise BOOL      TRUE when @LEVEL and the point estimate meets the condition but the interval
--                                does not (the gate stays quiet and says why)
-- @column error        TEXT      why it cannot be evaluated (unknown metric, a side without a value, a time
--                                threshold on a metric that is not a time, @LEVEL on a metric without per-
--                                step values or with fewer than 3 steps)
-- @column reason       TEXT      one line: condition, A, B, delta (and relative change); with @LEVEL the
--                                medians, the interval, the p-value and "within noise" when that is why it
--                                did not fire
--
--                                did not fire
WITH _joined_conditions AS (
    SELECT c.*, t.metric IS NOT NULL AS known, t.unit, t.a, t.b, t.delta, t.note,
           n.metric IS NOT NULL AS has_dist, n.median_base, n.median, n.p_value,
           CASE c.mode WHEN 'rel' THEN n.ratio - 1 ELSE n.ratio END AS n_obs,
           CASE c.mode WHEN 'rel' THEN n.ci_lo - 1 ELSE n.ci_lo END AS ci_lo,
           CASE c.mode WHEN 'rel' THEN n.ci_hi - 1 ELSE n.ci_hi END AS ci_hi,
           CASE c.mode
               WHEN 'rel' THEN CASE WHEN t.a = 0 THEN CASE WHEN t.b > 0 THEN 'inf'::DOUBLE
                                                          WHEN t.b < 0 THEN '-inf'::DOUBLE
                                                          ELSE 0 END
                                    ELSE t.rel END
               WHEN 'ratio' THEN CASE WHEN t.a = 0 THEN CASE WHEN t.b > 0 THEN 'inf'::DOUBLE
                                                            WHEN t.b < 0 THEN '-inf'::DOUBLE END
                                      ELSE t.ratio END
               ELSE t.delta END AS observed
    FROM _conditions c LEFT JOIN _ab t ON t.metric = c.metric
    LEFT JOIN _noise n ON n.metric = c.metric AND n.label_index = 1 AND n.level = c.level
), _with_errors AS (
    SELECT *, CASE WHEN NOT known THEN 'unknown metric ' || metric || ' (the metric column of --json lists them)'
                   WHEN mode = 'abs_time' AND unit <> 'ms'
                       THEN metric || ' is a ' || unit || ', not a time: give a plain number'
                   WHEN level IS NOT NULL AND NOT has_dist
                       THEN metric || ' has no per-step values in A and B: @LEVEL works on step.* and phase metrics'
                   WHEN level IS NOT NULL AND ci_lo IS NULL
                       THEN metric || ': no interval (fewer than 3 steps after the warm-up in A or B, or a median of 0 '
                            || 'in A): lower --warmup or capture more steps'
                   WHEN a IS NULL OR b IS NULL THEN metric || ' has no value: ' || coalesce(note, 'NULL')
                   WHEN observed IS NULL THEN metric || ' is 0 in A and in B: a ratio is undefined' END AS error
    FROM _joined_conditions
), _evaluated AS (
    SELECT *, CASE WHEN level IS NULL THEN observed ELSE n_obs END AS obs,
           CASE op WHEN '>' THEN CASE WHEN level IS NULL THEN observed ELSE ci_lo END > threshold
                   WHEN '>=' THEN CASE WHEN level IS NULL THEN observed ELSE ci_lo END >= threshold
                   WHEN '<' THEN CASE WHEN level IS NULL THEN observed ELSE ci_hi END < threshold
                   WHEN '<=' THEN CASE WHEN level IS NULL THEN observed ELSE ci_hi END <= threshold END AS holds,
           CASE op WHEN '>' THEN n_obs > threshold WHEN '>=' THEN n_obs >= threshold
                   WHEN '<' THEN n_obs < threshold WHEN '<=' THEN n_obs <= threshold END AS point_holds
    FROM _with_errors
)
SELECT condition, metric, op, mode, threshold, level, obs AS observed,
       CASE WHEN level IS NOT NULL THEN ci_lo END AS ci_lo, CASE WHEN level IS NOT NULL THEN ci_hi END AS ci_hi,
       CASE WHEN error IS NULL THEN holds END AS fired,
       CASE WHEN error IS NULL AND level IS NOT NULL THEN NOT holds AND point_holds END AS within_noise,
       error,
       CASE WHEN error IS NOT NULL THEN condition || ': ' || error
            WHEN level IS NULL THEN
           condition || ': A ' || printf('%.4g', a) || ' ' || unit || ', B ' || printf('%.4g', b) || ' ' || unit
           || ', delta ' || printf('%+.4g', delta) || ' ' || unit
           || CASE WHEN a <> 0 THEN printf(' (%+.1f%%)', 100 * delta / a) ELSE ' (A is 0)' END
       ELSE
           condition || ': median per step A ' || printf('%.4g', median_base) || ' ' || unit
           || ', B ' || printf('%.4g', median) || ' ' || unit
           || CASE mode WHEN 'rel' THEN printf(', change %+.1f%% [%+.1f%%, %+.1f%%]',
                                               100 * n_obs, 100 * ci_lo, 100 * ci_hi)
                        ELSE printf(', ratio %.3f [%.3f, %.3f]', n_obs, ci_lo, ci_hi) END
           || printf(' @%g%%, p=%.2g', 100 * level, p_value)
           || CASE WHEN holds THEN '' WHEN point_holds THEN ': within noise (the interval reaches the threshold)'
                   ELSE '' END
       END AS reason
FROM _evaluated
ORDER BY seq;
