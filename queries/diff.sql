-- diff: what changed from run A (baseline) to run B, and does it break a CI gate?
--
-- Run it with `tracekit diff A B [--fail-if COND]...` (or tracekit.compare.diff): a diff is a
-- compare of two labelled runs, so it runs _run_metrics.sql once per run and compare.sql's
-- set-up (_matrix) first. A = label_index 0, B = label_index 1.
--
-- Inputs: _matrix (compare.sql); _conditions (the parsed --fail-if conditions, written by
-- tracekit.compare: condition, metric, op, mode, threshold, shown). Parameters:
-- getvariable('top_n') (default 50): rows of the `kernels` output.
--
-- Output `diff` (one row per run / step / phase metric; metrics as defined in _run_metrics.sql):
--   metric, scope, name, measure, unit, numerator, denominator (what the metric divides by what)
--   a, b        the metric in A and in B
--   delta       b - a (in unit)
--   ratio       b / a (NULL when a is 0 or NULL)
--   rel         (b - a) / a (NULL when a is 0 or NULL)
--   note        'A: ...' / 'B: ...' when a side is NULL (what is missing, which capture option
--               fixes it) or its phase is absent from that run
-- Output `kernels` (the top_n kernel names whose total time moved, largest |delta| first):
--   name, status (both | new: only in B | vanished: only in A), a_ms, b_ms (total_ms),
--   delta_ms, ratio, a_count, b_count, a_mean_ms, b_mean_ms
-- Output `new_vanished`: every kernel name found in only one of the runs, same columns.
-- Output `gate` (one row per --fail-if condition):
--   condition   as written;  metric, op, mode (rel: (b-a)/a | ratio: b/a | abs: b-a), threshold
--   observed    the quantity compared with the threshold (rel and ratio: +-inf when a = 0 < |b|)
--   fired       TRUE when `observed op threshold` holds; NULL when it cannot be evaluated
--   error       why it cannot be evaluated (unknown metric, a side without a value, a time
--               threshold on a metric that is not a time)
--   reason      one line: condition, A, B, delta (and relative change)
--
-- How to read: sort `diff` by |delta| to see what moved; ratio > 1 means B is larger.

CREATE OR REPLACE TEMP TABLE _ab AS
SELECT a.metric, a.scope, a.name, a.measure, a.unit, a.numerator, a.denominator, a.value AS a, b.value AS b, b.value - a.value AS delta,
       b.value / nullif(a.value, 0) AS ratio, (b.value - a.value) / nullif(a.value, 0) AS rel,
       nullif(concat_ws('; ', CASE WHEN a.note IS NOT NULL THEN 'A: ' || a.note END,
                              CASE WHEN b.note IS NOT NULL THEN 'B: ' || b.note END), '') AS note
FROM _matrix a JOIN _matrix b ON b.metric = a.metric AND b.label_index = 1
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
SELECT metric, scope, name, measure, unit, numerator, denominator, a, b, delta, ratio, rel, note
FROM _ab WHERE scope <> 'kernel'
ORDER BY list_position(['run', 'step', 'phase'], scope),
         max(greatest(coalesce(a, 0), coalesce(b, 0))) FILTER (WHERE measure = 'ms_per_step')
             OVER (PARTITION BY scope, name) DESC NULLS LAST,
         name, measure;

-- @output kernels
SELECT * FROM _kab
WHERE delta_ms <> 0 OR a_count <> b_count OR delta_ms IS NULL
ORDER BY abs(delta_ms) DESC NULLS LAST, name
LIMIT getvariable('top_n');

-- @output new_vanished
SELECT * FROM _kab WHERE status <> 'both' ORDER BY status, greatest(a_ms, b_ms) DESC, name;

-- @output gate
WITH _o AS (
    SELECT c.*, t.metric IS NOT NULL AS known, t.unit, t.a, t.b, t.delta, t.note,
           CASE c.mode
               WHEN 'rel' THEN CASE WHEN t.a = 0 THEN CASE WHEN t.b > 0 THEN 'inf'::DOUBLE WHEN t.b < 0 THEN '-inf'::DOUBLE
                                                          ELSE 0 END
                                    ELSE t.rel END
               WHEN 'ratio' THEN CASE WHEN t.a = 0 THEN CASE WHEN t.b > 0 THEN 'inf'::DOUBLE WHEN t.b < 0 THEN '-inf'::DOUBLE END
                                      ELSE t.ratio END
               ELSE t.delta END AS observed
    FROM _conditions c LEFT JOIN _ab t ON t.metric = c.metric
), _e AS (
    SELECT *, CASE WHEN NOT known THEN 'unknown metric ' || metric || ' (the metric column of --json lists them)'
                   WHEN mode = 'abs_time' AND unit <> 'ms' THEN metric || ' is a ' || unit || ', not a time: give a plain number'
                   WHEN a IS NULL OR b IS NULL THEN metric || ' has no value: ' || coalesce(note, 'NULL')
                   WHEN observed IS NULL THEN metric || ' is 0 in A and in B: a ratio is undefined' END AS error
    FROM _o
)
SELECT condition, metric, op, mode, threshold, observed,
       CASE WHEN error IS NULL THEN CASE op WHEN '>' THEN observed > threshold WHEN '>=' THEN observed >= threshold
                                            WHEN '<' THEN observed < threshold WHEN '<=' THEN observed <= threshold END END AS fired,
       error,
       CASE WHEN error IS NULL THEN
           condition || ': A ' || printf('%.4g', a) || ' ' || unit || ', B ' || printf('%.4g', b) || ' ' || unit
           || ', delta ' || printf('%+.4g', delta) || ' ' || unit
           || CASE WHEN a <> 0 THEN printf(' (%+.1f%%)', 100 * delta / a) ELSE ' (A is 0)' END
       ELSE condition || ': ' || error END AS reason
FROM _e
ORDER BY seq;
