-- across_traces: how do the traces (ranks) of a dataset compare, step by step?
--
-- Run it with `tracekit aggregate RESULTS`, over the tables `tracekit report DATASET --out RESULTS`
-- writes (one folder per report output, one Parquet file per trace): it registers one view per table,
-- named like the output with '.' replaced by '_' (`steps`, `traces`, `gpu_idle_causes`, ...). Every
-- input row is per trace, so this is the only place that looks across traces; any engine can run
-- the same SQL over those folders.
--
-- Steps are matched across traces by step_kind and kind_index, the n-th step of that kind in the
-- trace (1.. in time order): rank 3's 5th `step[DECODE bs=8]` is compared with every other rank's
-- 5th. Step time is steps.end_to_end_ns (step start to the end of its last GPU op; an asynchronous
-- step's GPU work runs past its CPU range). rank comes from the `traces` table (the sidecar rows:
-- the rank the trace states), NULL when the trace states none.
-- Ties never depend on row order: of traces with equal step time, the slowest/fastest is the one
-- of lowest rank (NULL last), then the first in text order.
--
-- Inputs: views steps, traces (tracekit.cli.aggregate). No parameters.
--
-- Output `by_step`: one row per step kind and kind_index that at least one trace has:
--   step_kind, kind_index
--   slowest_trace, slowest_rank, fastest_trace, fastest_rank
--
-- Output `across_traces`: one row per step kind:
--   step_kind, traces (traces with at least one step of the kind), steps_matched (kind_index values
--   present in every one of those traces), mean_spread_ns (mean of by_step.spread_ns over the
--   matched steps), max_spread_ns, mean_spread_share = sum(spread_ns) / sum(max_ns) over the matched
--   steps (DENOMINATOR: the slowest traces' summed step time), most_often_slowest_trace and its rank,
--   times_slowest (matched steps at which it was the slowest; equal counts: lowest rank, then text order).
--
-- Output `per_trace`: one row per trace and step kind: trace, rank, step_kind, steps, p50_ns (of
--   end_to_end_ns, quantile_disc), dataset_p50_ns (median over traces of their p50_ns),
--   times_slowest (matched steps at which this trace was the slowest), steps_matched.
--
-- How to read: a high mean_spread_share with one trace most often slowest is a straggler rank (look
-- at its gpu_idle and syncs); a spread without a recurring slowest trace is noise or load imbalance.

CREATE OR REPLACE TEMP TABLE _xt_steps AS
SELECT s.trace, t.rank, s.step_kind, s.step_index, s.end_to_end_ns,
       row_number() OVER (PARTITION BY s.trace, s.step_kind ORDER BY s.step_index) AS kind_index
FROM steps s
LEFT JOIN (SELECT trace, min(rank) AS rank FROM traces GROUP BY trace) t USING (trace);

CREATE OR REPLACE TEMP TABLE _xt_by_step AS
SELECT step_kind, kind_index, count(*) AS traces,
       min(end_to_end_ns) AS min_ns, quantile_disc(end_to_end_ns, 0.5) AS median_ns, max(end_to_end_ns) AS max_ns,
       max(end_to_end_ns) - min(end_to_end_ns) AS spread_ns,
       (max(end_to_end_ns) - min(end_to_end_ns)) / nullif(max(end_to_end_ns), 0) AS spread_share,
       first(trace ORDER BY end_to_end_ns DESC, rank NULLS LAST, trace) AS slowest_trace,
       first(rank ORDER BY end_to_end_ns DESC, rank NULLS LAST, trace) AS slowest_rank,
       first(trace ORDER BY end_to_end_ns, rank NULLS LAST, trace) AS fastest_trace,
       first(rank ORDER BY end_to_end_ns, rank NULLS LAST, trace) AS fastest_rank
FROM _xt_steps GROUP BY step_kind, kind_index;

CREATE OR REPLACE TEMP TABLE _xt_matched AS  -- steps every trace of the kind has
SELECT b.* FROM _xt_by_step b
JOIN (SELECT step_kind, count(DISTINCT trace) AS n FROM _xt_steps GROUP BY step_kind) k USING (step_kind)
WHERE b.traces = k.n;

-- @output by_step
-- @column step_kind     TEXT      the kind of step (steps.sql: the step name with per-step fields dropped)
-- @column kind_index    ID        the n-th step of its kind in each trace (how steps are matched across
--                                 traces)
-- @column traces        COUNT     traces that have this step
-- @column min_ns        DURATION  shortest end_to_end_ns of the step over those traces
-- @column median_ns     DURATION  median end_to_end_ns (an actual value: quantile_disc)
-- @column max_ns        DURATION  longest end_to_end_ns of the step over those traces
-- @column spread_ns     DURATION  max_ns - min_ns: how long the fastest trace waits for the slowest at this
--                                 step
-- @column spread_share  SHARE     spread_ns / max_ns (DENOMINATOR: the slowest trace's step time)
-- @column slowest_trace TEXT      the trace with the longest step
-- @column slowest_rank  COUNT     its rank
-- @column fastest_trace TEXT      the trace with the shortest step
-- @column fastest_rank  COUNT     its rank
SELECT * FROM _xt_by_step ORDER BY step_kind, kind_index;

-- @output across_traces
-- @column step_kind                TEXT      the kind of step (steps.sql: the step name with per-step fields
--                                            dropped)
-- @column traces                   COUNT     traces that have this step
-- @column steps_matched            COUNT     kind_index values present in every one of those traces
-- @column mean_spread_ns           DURATION  mean of by_step.spread_ns over the matched steps
-- @column max_spread_ns            DURATION  largest spread (slowest - fastest) over the matched steps
-- @column mean_spread_share        SHARE     sum(spread_ns) / sum(max_ns) over the matched steps
--                                            (DENOMINATOR: the slowest traces' summed step time)
-- @column most_often_slowest_trace TEXT      the trace slowest in most matched steps
-- @column most_often_slowest_rank  COUNT     its rank
-- @column times_slowest            COUNT     matched steps at which it was the slowest; equal counts: lowest
--                                            rank, then text order
--
--                                            rank, then text order
WITH _kinds AS (SELECT step_kind, count(DISTINCT trace) AS traces FROM _xt_steps GROUP BY step_kind),
_slow AS (
    SELECT step_kind, slowest_trace, any_value(slowest_rank) AS slowest_rank, count(*) AS n
    FROM _xt_matched GROUP BY step_kind, slowest_trace
), _top_slowest AS (
    SELECT step_kind, first(slowest_trace ORDER BY n DESC, slowest_rank NULLS LAST, slowest_trace) AS trace,
           first(slowest_rank ORDER BY n DESC, slowest_rank NULLS LAST, slowest_trace) AS rank, max(n) AS times_slowest
    FROM _slow GROUP BY step_kind
), _spread AS (
    SELECT step_kind, count(*) AS steps_matched, avg(spread_ns) AS mean_spread_ns, max(spread_ns) AS max_spread_ns,
           sum(spread_ns) / nullif(sum(max_ns), 0) AS mean_spread_share
    FROM _xt_matched GROUP BY step_kind
)
SELECT k.step_kind, k.traces, coalesce(m.steps_matched, 0) AS steps_matched, m.mean_spread_ns, m.max_spread_ns,
       m.mean_spread_share, t.trace AS most_often_slowest_trace, t.rank AS most_often_slowest_rank, t.times_slowest
FROM _kinds k LEFT JOIN _spread m USING (step_kind) LEFT JOIN _top_slowest t USING (step_kind)
ORDER BY k.step_kind;

-- @output per_trace
-- @column trace          TEXT      the trace (input file name) the row is about
-- @column rank           ID        the trace's rank (NULL last)
-- @column step_kind      TEXT      the kind of step (steps.sql: the step name with per-step fields dropped)
-- @column steps          COUNT     steps of the kind
-- @column p50_ns         DURATION  median end_to_end_ns of its steps of the kind
-- @column dataset_p50_ns DURATION  median over traces of their p50_ns
-- @column vs_dataset     NUMBER    p50_ns / dataset_p50_ns (DENOMINATOR: the dataset's median trace)
-- @column times_slowest  COUNT     matched steps at which it was the slowest; equal counts: lowest rank, then
--                                  text order
-- @column steps_matched  COUNT     kind_index values present in every one of those traces
WITH _per_trace AS (
    SELECT trace, any_value(rank) AS rank, step_kind, count(*) AS steps, quantile_disc(end_to_end_ns, 0.5) AS p50_ns
    FROM _xt_steps GROUP BY trace, step_kind
), _dataset AS (SELECT step_kind, quantile_disc(p50_ns, 0.5) AS dataset_p50_ns FROM _per_trace GROUP BY step_kind),
_slowest AS (SELECT step_kind, slowest_trace AS trace, count(*) AS times_slowest FROM _xt_matched GROUP BY ALL),
_matched AS (SELECT step_kind, count(*) AS steps_matched FROM _xt_matched GROUP BY step_kind)
SELECT p.trace, p.rank, p.step_kind, p.steps, p.p50_ns, d.dataset_p50_ns,
       p.p50_ns / nullif(d.dataset_p50_ns, 0) AS vs_dataset,
       coalesce(s.times_slowest, 0) AS times_slowest, coalesce(n.steps_matched, 0) AS steps_matched
FROM _per_trace p JOIN _dataset d USING (step_kind) LEFT JOIN _slowest s USING (step_kind, trace)
LEFT JOIN _matched n USING (step_kind)
ORDER BY p.step_kind, p.rank NULLS LAST, p.trace;
