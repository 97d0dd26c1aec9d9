-- steps: what does one step cost, and where does its time go?
-- @requires lib/caps lib/gpu_activity lib/idle lib/modules lib/runtime lib/step_instances lib/intervals
--
-- Run it with `tracekit report` (or tracekit.report.run): that loads the modules on its @requires line first and sets
-- every getvariable() parameter to its default (its @param line; docs/queries.md).
--
-- Step instances are `range` rows whose name fully matches getvariable('step_pattern')
-- (default: ProfilerStep#N, SGLang step[MODE bs=N ...], vLLM execute_[B_]context_C(T)_generation_G(T),
-- step, decode_step, *_step). When step ranges nest, only the innermost are kept (a ProfilerStep
-- holding several decode_steps gives the decode steps). The name is parsed into step_mode,
-- batch_size, tokens, context_/generation_ reqs and tokens, and step_kind keeps batch sizes apart:
-- step[DECODE bs=8] and step[DECODE bs=16] are two kinds; vLLM steps are kinds by their (context,
-- generation) request counts; other names have digits replaced by N (ProfilerStep#3 and #4: one
-- kind). The rules are in queries/lib/ (step_instances).
--
-- Which events belong to a step: runtime calls, cpu_ops and ranges that START inside the step
-- on the step's thread; GPU ops whose launching call started inside the step on that thread.
-- When all steps of a trace are on one thread (the usual torch.profiler case), events of
-- other threads (e.g. the autograd thread) are assigned by time alone. Assignment is an ASOF
-- (sorted) join, never an interval range join.
--
-- Inputs: ranges, events (cpu_op rows); gpu_activity, runtime_calls, step_instances, step_instances_one_thread
--   (queries/lib/).
-- Parameters: getvariable('step_pattern') (regex, full match).
--
-- Output `steps`: one row per step
--   trace, step_index (1.. in time order per trace), step_kind, step_name, tid, ts_ns
--   step_mode, batch_size, tokens, context_reqs, context_tokens, generation_reqs,
--   host_launch_ns, host_blocking_ns, host_runtime_other_ns, host_outside_runtime_ns
--                         the CPU span on the step's own thread in four buckets that add up to wall_ns:
--                         kernel and graph launch calls; blocking syncs and copies; every other runtime
--                         call (async copies, memsets, events, queries, allocation, ...); the rest (Python,
--                         framework, cpu_ops outside runtime calls). Runtime calls that start in the
--                         step, clipped to its end; nested calls counted once (in the outermost).
--                         NULL when the trace has no runtime rows.
-- Output `stats`: mean / p50 / p99 / min / max over the steps of each kind, one row per metric
-- Output `phases`: per step and phase (phase_path relative to the step; '(other)' = directly in
--   the step): cpu_ns (summed range time, inclusive of children), range_instances, gpu_op_ns,
--   gpu_ops, launches (these three NULL in a trace without GPU ops), wall_ns (the step's), cpu_share = cpu_ns / wall_ns
--   (inclusive of child ranges: phases nested in each other are listed side by side, so shares of nested phases add
--   up to more than 1; headline.phase_tree has the exclusive split that adds up to 1),
--   phase_source ('range' | 'module' | 'frame'; several comma-separated when a path came from more than
--   one; NULL for '(other)' with nothing launched by a range).
--   Phases are EFFECTIVE phases (lib/modules.sql): where no user range below the step covers a launch, the
--   module hierarchy around it (with_modules=True: `Qwen2Model/Qwen2DecoderLayer/Qwen2MLP`, instance
--   indices dropped; else `forward` frames). A module phase's cpu_ns is the summed time of its module
--   intervals (range_instances counts them) less user ranges directly inside them (lib/modules.sql modules_cpu).
-- Output `phase_stats`: per step kind and phase over all steps of that kind: steps (of the kind),
--   steps_with_phase, mean_cpu_ns and mean_gpu_op_ns (per step of the kind, 0 where absent),
--   p50_cpu_ns_present (median over the steps that have the phase), cpu_share = sum cpu_ns /
--   sum wall_ns, gpu_share = sum gpu_op_ns / sum of the steps' gpu_op_ns (the LenVM-style table),
--   phase_source (as in `phases`, over the kind's steps)
-- Output `median_step_ops`: per trace, every GPU op and CPU range of the median step (wall closest
--   to the trace's p50; equal distance: the lower step_index) of the trace's most frequent step kind
--   (equal counts: the first in text order): the input of the HTML timeline. Per trace, so that a
--   trace gives the same rows alone or inside a dataset.
--
-- How to read: mean +- p99 of wall_ns says how stable a step is; gpu_busy_share well under 1
-- with launches high points to launch overhead; sync_stall_ns to host syncs.

-- step_instances and step_instances_one_thread (the step instances) are defined in queries/lib/:
-- gpu_idle uses them too.

-- runtime calls and cpu_ops per step, aggregated straight away (the per-row assignment is never stored).
-- Launch, graph launch and blocking are classes of api_classes (queries/lib/): a synchronous copy
-- that moved data (hipMemcpyWithStream) is a blocking call, never a launch.
CREATE OR REPLACE TEMP TABLE _cpu_agg AS
WITH _cpu_calls AS (
    SELECT trace, tid, ts_ns, end_ns, dur_ns, api_class FROM runtime_calls
    UNION ALL
    SELECT trace, tid, ts_ns, ts_ns + greatest(dur_ns, 0), greatest(dur_ns, 0), NULL
    FROM events WHERE kind = 'cpu_op'
), _keyed_calls AS (
    SELECT c.*, CASE WHEN o.one_thread THEN -1 ELSE c.tid END AS k_tid
    FROM _cpu_calls c JOIN step_instances_one_thread o USING (trace)
)
SELECT k.trace, s.step_index, max(k.end_ns) - min(k.ts_ns) AS cpu_span_ns,
       count(*) FILTER (WHERE k.api_class = 'launch') AS launches,
       sum(k.dur_ns) FILTER (WHERE k.api_class = 'launch') AS launch_host_ns,
       count(*) FILTER (WHERE k.api_class = 'graph_launch') AS graph_launches,
       sum(k.dur_ns) FILTER (WHERE k.api_class = 'graph_launch') AS graph_launch_host_ns,
       count(*) FILTER (WHERE k.api_class = 'blocking') AS sync_calls,
       sum(k.dur_ns) FILTER (WHERE k.api_class = 'blocking') AS sync_stall_ns
FROM _keyed_calls k
ASOF JOIN step_instances s ON k.trace = s.trace AND k.k_tid = s.k_tid AND k.ts_ns >= s.ts_ns
WHERE k.ts_ns < s.end_ns
GROUP BY k.trace, s.step_index;

-- The host time of the step's own thread (the thread of its range, which launches its work), split
-- so that every ns of the CPU span is in exactly one bucket: runtime calls that start inside the
-- step on that thread, clipped to the step end; a call nested in (or overlapping) an earlier call
-- counts only for the time no earlier call covers, so the outermost call takes the time
-- (a driver call inside a runtime call is not counted twice).
CREATE OR REPLACE TEMP TABLE _host_agg AS
WITH _step_calls AS (
    SELECT s.trace, s.step_index, s.end_ns AS step_end, r.ts_ns, least(r.end_ns, s.end_ns) AS end_ns,
           r.api_class, r.row_id
    FROM (SELECT trace, pid, tid, ts_ns, end_ns, api_class, row_id FROM runtime_calls) r
    ASOF JOIN (SELECT trace, pid, tid, ts_ns, end_ns, step_index FROM step_instances) s
      ON r.trace = s.trace AND r.pid = s.pid AND r.tid = s.tid AND r.ts_ns >= s.ts_ns
    WHERE r.ts_ns < s.end_ns
), _owned_calls AS (
    SELECT *, greatest(end_ns - greatest(ts_ns, coalesce(max(end_ns) OVER (
                  PARTITION BY trace, step_index ORDER BY ts_ns, end_ns DESC, row_id
                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), ts_ns)), 0) AS own_ns
    FROM _step_calls
)
SELECT trace, step_index,
       sum(own_ns) FILTER (WHERE api_class IN ('launch', 'graph_launch')) AS host_launch_ns,
       sum(own_ns) FILTER (WHERE api_class = 'blocking') AS host_blocking_ns,
       sum(own_ns) FILTER (WHERE api_class NOT IN ('launch', 'graph_launch', 'blocking')) AS host_runtime_other_ns,
       sum(own_ns) AS host_runtime_ns
FROM _owned_calls GROUP BY ALL;

-- phase_path: the stored (range) path, as the timeline draws it; eff_phase_path / phase_source: the
-- effective phase (lib/modules.sql), which the phase tree, steps.phases and tokens read.
CREATE OR REPLACE TEMP TABLE steps_gpu AS
WITH _launched_ops AS (
    SELECT g.gid, g.trace, g.ts_ns, g.dur_ns, g.end_ns, g.device, g.stream, g.correlation, g.phase_path, g.graph,
           g.launch_ts_ns, CASE WHEN o.one_thread THEN -1 ELSE g.launch_tid END AS k_tid,
           p.eff_phase_path, p.phase_source
    FROM gpu_activity g JOIN step_instances_one_thread o USING (trace) JOIN modules_gpu_phase p USING (gid)
    WHERE g.launch_ts_ns IS NOT NULL
)
SELECT k.*, s.step_index, s.phase_path AS step_path FROM _launched_ops k
ASOF JOIN step_instances s ON k.trace = s.trace AND k.k_tid = s.k_tid AND k.launch_ts_ns >= s.ts_ns
WHERE k.launch_ts_ns < s.end_ns;

CREATE OR REPLACE TEMP TABLE steps_ranges AS
WITH _keyed_ranges AS (
    SELECT r.trace, r.tid, r.seq, r.name, r.ts_ns, greatest(r.dur_ns, 0) AS dur_ns, r.phase_path,
           CASE WHEN o.one_thread THEN -1 ELSE r.tid END AS k_tid
    FROM ranges r JOIN step_instances_one_thread o USING (trace)
)
SELECT k.*, s.step_index, s.phase_path AS step_path FROM _keyed_ranges k
ASOF JOIN step_instances s ON k.trace = s.trace AND k.k_tid = s.k_tid AND k.ts_ns >= s.ts_ns
WHERE k.ts_ns < s.end_ns AND k.seq <> s.seq;

-- The CPU time of module phases (lib/modules.sql modules_cpu: +1 module intervals, -1 user ranges inside them),
-- assigned to steps as steps_ranges is: the phase tree and steps.phases add it to the ranges' time.
CREATE OR REPLACE TEMP TABLE steps_modules AS
WITH _keyed_modules AS (
    SELECT m.*, CASE WHEN o.one_thread THEN -1 ELSE m.tid END AS k_tid
    FROM modules_cpu m JOIN step_instances_one_thread o USING (trace)
)
SELECT k.*, s.step_index, s.phase_path AS step_path FROM _keyed_modules k
ASOF JOIN step_instances s ON k.trace = s.trace AND k.k_tid = s.k_tid AND k.ts_ns >= s.ts_ns
WHERE k.ts_ns < s.end_ns;

-- A path relative to its step (lib/step_instances' step_instances_rel_path), '(other)' for the step's own path (and
-- for '(none)' in a whole trace's step), the path itself when it is outside the step.
CREATE OR REPLACE TEMP MACRO steps_rel_phase(pp, step_path) AS CASE
    WHEN pp = step_path OR (step_path IS NULL AND pp = '(none)') THEN '(other)'
    ELSE coalesce(step_instances_rel_path(pp, step_path), pp) END;

-- Per step and device it ran ops on: the GPU span there, the union of the step's op intervals
-- (busy_ns), and the device's idle time inside the step's end-to-end window W = [step start,
-- max(step end, last end of the step's GPU ops on any device)]: lib/idle's idle_intervals (the gaps and
-- the trace window's edges, exactly the intervals gpu_idle.sql's gpu_idle_all classifies), clipped to W.
CREATE OR REPLACE TEMP TABLE steps_devices AS
WITH _step_ops AS (
    SELECT trace, step_index, device, ts_ns, end_ns, (trace, step_index, device) AS grp, 0 AS tie FROM steps_gpu
), _busy AS (  -- the union of the step's op intervals per device (lib/intervals)
    SELECT trace, step_index, device, sum(e - s) AS busy_ns FROM (
        SELECT trace, step_index, device, island, min(ts_ns) AS s, max(end_ns) AS e
        FROM intervals_union(_step_ops) GROUP BY ALL
    ) GROUP BY ALL
), _device_spans AS (
    SELECT trace, step_index, device, min(ts_ns) AS s, max(end_ns) AS e FROM steps_gpu GROUP BY ALL
), _windows AS (
    SELECT d.trace, d.step_index, d.device, d.s, d.e, st.ts_ns AS w0,
           greatest(st.end_ns, max(d.e) OVER (PARTITION BY d.trace, d.step_index)) AS w1
    FROM _device_spans d JOIN step_instances st USING (trace, step_index)
), _idle AS (  -- the device idle intervals (lib/idle idle_intervals, what gpu_idle.sql classifies) clipped to W
    SELECT w.trace, w.step_index, w.device,
           sum(least(i.gap_end_ns, w.w1) - greatest(i.gap_start_ns, w.w0)) AS idle_ns
    FROM _windows w JOIN idle_intervals i ON i.trace = w.trace AND i.device = w.device
                             AND i.gap_start_ns < w.w1 AND i.gap_end_ns > w.w0
    GROUP BY ALL
)
SELECT w.trace, w.step_index, w.device, w.e - w.s AS gpu_span_ns, w.w1 - w.w0 AS e2e_ns, b.busy_ns,
       coalesce(i.idle_ns, 0) AS idle_ns, (w.w1 - w.w0) - b.busy_ns - coalesce(i.idle_ns, 0) AS other_ns
FROM _windows w JOIN _busy b USING (trace, step_index, device) LEFT JOIN _idle i USING (trace, step_index, device);

CREATE OR REPLACE TEMP TABLE steps_rows AS
WITH _gpu_per_step AS (
    SELECT trace, step_index, max(end_ns) - min(ts_ns) AS gpu_span_ns, max(end_ns) AS gpu_end_ns,
           sum(dur_ns) AS gpu_op_ns, count(*) AS gpu_ops, count(*) FILTER (WHERE graph) AS graph_nodes,
           sum(dur_ns) FILTER (WHERE graph) AS graph_node_ns
    FROM steps_gpu GROUP BY ALL
), _devices_per_step AS (
    SELECT trace, step_index, sum(gpu_span_ns) AS gpu_span_dev_ns, sum(e2e_ns) AS e2e_dev_ns,
           sum(busy_ns) AS gpu_busy_ns, sum(idle_ns) AS gpu_idle_ns, sum(other_ns) AS gpu_other_ns
    FROM steps_devices GROUP BY ALL
)
SELECT s.trace, s.step_index, s.step_kind, s.name AS step_name, s.tid, s.ts_ns,
       s.step_mode, s.batch_size, s.tokens, s.context_reqs, s.context_tokens, s.generation_reqs, s.generation_tokens,
       (s.end_ns - s.ts_ns) AS wall_ns, c.cpu_span_ns, g.gpu_span_ns,
       greatest(s.end_ns, coalesce(g.gpu_end_ns, s.end_ns)) - s.ts_ns AS end_to_end_ns,
       d.gpu_span_dev_ns::BIGINT AS gpu_span_dev_ns, d.e2e_dev_ns::BIGINT AS e2e_dev_ns,
       d.gpu_busy_ns::BIGINT AS gpu_busy_ns,
       d.gpu_idle_ns::BIGINT AS gpu_idle_ns, d.gpu_other_ns::BIGINT AS gpu_other_ns,
       CASE WHEN k.has_gpu THEN coalesce(g.gpu_op_ns, 0)::BIGINT END AS gpu_op_ns,
       CASE WHEN k.has_gpu THEN coalesce(g.gpu_ops, 0) END AS gpu_ops,
       CASE WHEN k.has_runtime THEN coalesce(c.launches, 0) END AS launches,
       CASE WHEN k.has_runtime THEN coalesce(c.launch_host_ns, 0)::BIGINT END AS launch_host_ns,
       CASE WHEN k.has_runtime THEN coalesce(c.graph_launches, 0) END AS graph_launches,
       CASE WHEN k.has_runtime THEN coalesce(c.graph_launch_host_ns, 0)::BIGINT END AS graph_launch_host_ns,
       CASE WHEN k.has_gpu THEN coalesce(g.graph_nodes, 0) END AS graph_nodes,
       CASE WHEN k.has_gpu THEN coalesce(g.graph_node_ns, 0)::BIGINT END AS graph_node_ns,
       CASE WHEN k.has_sync THEN coalesce(c.sync_calls, 0) END AS sync_calls,
       CASE WHEN k.has_sync THEN coalesce(c.sync_stall_ns, 0)::BIGINT END AS sync_stall_ns,
       CASE WHEN k.has_runtime THEN coalesce(h.host_launch_ns, 0)::BIGINT END AS host_launch_ns,
       CASE WHEN k.has_runtime THEN coalesce(h.host_blocking_ns, 0)::BIGINT END AS host_blocking_ns,
       CASE WHEN k.has_runtime THEN coalesce(h.host_runtime_other_ns, 0)::BIGINT END AS host_runtime_other_ns,
       CASE WHEN k.has_runtime THEN ((s.end_ns - s.ts_ns) - coalesce(h.host_runtime_ns, 0))::BIGINT END
           AS host_outside_runtime_ns,
       d.gpu_busy_ns / nullif(d.e2e_dev_ns, 0) AS gpu_busy_share_e2e,
       d.gpu_busy_ns / nullif(d.gpu_span_dev_ns, 0) AS gpu_busy_share_span
FROM step_instances s
LEFT JOIN _gpu_per_step g USING (trace, step_index)
LEFT JOIN _devices_per_step d USING (trace, step_index)
LEFT JOIN _cpu_agg c USING (trace, step_index)
LEFT JOIN _host_agg h USING (trace, step_index)
JOIN caps k USING (trace);

CREATE OR REPLACE TEMP TABLE steps_phases AS
WITH _cpu_per_phase AS (
    SELECT trace, step_index, phase, sum(cpu_ns) AS cpu_ns, sum(n) AS range_instances,
           string_agg(DISTINCT src, ',' ORDER BY src) AS src
    FROM (SELECT trace, step_index, steps_rel_phase(phase_path, step_path) AS phase, dur_ns AS cpu_ns, 1 AS n,
                 'range' AS src
          FROM steps_ranges
          UNION ALL
          SELECT trace, step_index, steps_rel_phase(phase_path, step_path), sign * dur_ns,
                 CASE WHEN sign > 0 THEN 1 ELSE 0 END, phase_source
          FROM steps_modules)
    GROUP BY ALL
), _gpu_per_phase AS (
    SELECT trace, step_index, steps_rel_phase(eff_phase_path, step_path) AS phase, sum(dur_ns) AS gpu_op_ns,
           count(*) AS gpu_ops, count(DISTINCT correlation) AS launches,
           string_agg(DISTINCT phase_source, ',' ORDER BY phase_source) AS src
    FROM steps_gpu GROUP BY ALL
)
SELECT s.trace, s.step_index, s.step_kind, phase, r.cpu_ns::BIGINT AS cpu_ns,
       coalesce(r.range_instances, 0) AS range_instances,
       CASE WHEN k.has_gpu THEN coalesce(g.gpu_op_ns, 0)::BIGINT END AS gpu_op_ns,
       CASE WHEN k.has_gpu THEN coalesce(g.gpu_ops, 0) END AS gpu_ops,
       CASE WHEN k.has_gpu THEN coalesce(g.launches, 0) END AS launches,
       s.wall_ns, r.cpu_ns / nullif(s.wall_ns, 0) AS cpu_share,
       CASE WHEN phase <> '(other)' THEN modules_src_union(r.src, g.src) END AS phase_source
FROM _cpu_per_phase r FULL JOIN _gpu_per_phase g USING (trace, step_index, phase)
JOIN steps_rows s USING (trace, step_index)
JOIN caps k USING (trace);

-- The median step of each trace, the one rule the timeline (median_step_ops here, timeline.sql for
-- the HTML) and its Perfetto export use: among the steps of the trace's most frequent step kind
-- (ties: the first kind by name), the one whose wall_ns is closest to their median (quantile_disc;
-- ties: the lower step_index). A whole trace (lib/step_instances: no step matched) has none: its "step" is every
-- event of the trace, which `tracekit export-chrome` writes.
CREATE OR REPLACE TEMP TABLE steps_median AS
WITH _kind AS (
    SELECT trace, step_kind FROM steps_rows WHERE NOT step_instances_whole(step_kind) GROUP BY trace, step_kind
    QUALIFY row_number() OVER (PARTITION BY trace ORDER BY count(*) DESC, step_kind) = 1
), _median_wall AS (
    SELECT trace, quantile_disc(wall_ns, 0.5) AS p50 FROM steps_rows JOIN _kind USING (trace, step_kind) GROUP BY trace
)
SELECT s.trace, s.step_index, s.step_kind, s.step_name, s.ts_ns AS step_ts_ns, s.wall_ns AS step_wall_ns
FROM steps_rows s JOIN _kind USING (trace, step_kind) JOIN _median_wall USING (trace)
QUALIFY row_number() OVER (PARTITION BY s.trace ORDER BY abs(s.wall_ns - _median_wall.p50), s.step_index) = 1;

-- @output steps
-- @column trace                   TEXT      the trace (input file name) the row is about
-- @column step_index              ID        the step's number in its trace (1.. in time order)
-- @column step_kind               TEXT      the kind of step (steps.sql: the step name with per-step fields
--                                           dropped)
-- @column step_name               TEXT      the step range's name as captured
-- @column tid                     ID        thread id
-- @column ts_ns                   TIMESTAMP start
-- @column step_mode               TEXT      parsed from the step name (SGLang MODE; vLLM CONTEXT | GENERATION
--                                           | MIXED)
-- @column batch_size              COUNT     requests in the step, parsed from the name (NULL when it does not
--                                           carry it)
-- @column tokens                  COUNT     tokens in the step, parsed from the name
-- @column context_reqs            COUNT     vLLM: context (prefill) requests
-- @column context_tokens          COUNT     vLLM: context tokens
-- @column generation_reqs         COUNT     vLLM: generation (decode) requests
-- @column generation_tokens       COUNT     vLLM: generation tokens (NULL when the name does not carry them)
-- @column wall_ns                 DURATION  step range duration (the step's CPU span)
-- @column cpu_span_ns             DURATION  first start to last end of its runtime calls and cpu_ops (NULL:
--                                           none)
-- @column gpu_span_ns             DURATION  first start to last end of its GPU ops (NULL: the step launched
--                                           none)
-- @column end_to_end_ns           DURATION  step start to max(step end, last end of its GPU ops): an
--                                           asynchronous step's GPU work can outlast its CPU range many times
--                                           over
-- @column gpu_span_dev_ns         DURATION  first start to last end of its GPU ops per device, summed over
--                                           devices (= gpu_span_ns on one GPU): the denominator of
--                                           gpu_busy_share_span
-- @column e2e_dev_ns              DURATION  end_to_end_ns once per device the step ran ops on (=
--                                           end_to_end_ns on one GPU): the denominator of gpu_busy_share_e2e;
--                                           on each such device it is gpu_busy_ns + gpu_other_ns +
--                                           gpu_idle_ns
-- @column gpu_busy_ns             DURATION  union of its GPU op intervals per device, summed over devices
-- @column gpu_idle_ns             DURATION  time in that window the device ran no op at all (gpu_idle.sql's
--                                           intervals, whose causes headline splits it by)
-- @column gpu_other_ns            DURATION  time in that window the device ran only ops NOT launched in this
--                                           step (ops with no launch record, launched before the trace
--                                           window; other steps' ops)
-- @column gpu_op_ns               DURATION  summed duration of its GPU ops
-- @column gpu_ops                 COUNT     its GPU ops (kernels + memcpy + memset, graph nodes included)
-- @column launches                COUNT     kernel launch calls (class `launch` of lib/api's
--                                           api_classes): not copies, memsets or graph launches, whether or
--                                           not their kernel is in the trace
-- @column launch_host_ns          DURATION  summed host duration of the kernel launch calls
-- @column graph_launches          COUNT     graph launch calls (class `graph_launch`); graph_launch_host_ns
--                                           their summed host duration
-- @column graph_launch_host_ns    DURATION  summed host duration of the graph launch calls
-- @column graph_nodes             COUNT     GPU ops replayed by those graph launches; graph_node_ns their
--                                           summed duration
-- @column graph_node_ns           DURATION  summed duration of the GPU ops replayed by those graph launches
-- @column sync_calls              COUNT     blocking calls (class `blocking`: syncs and synchronous copies)
--                                           in the step
-- @column sync_stall_ns           DURATION  their summed duration (host time blocked)
-- @column host_launch_ns          DURATION  host time in launch calls (kernel and graph launches)
-- @column host_blocking_ns        DURATION  host time in blocking calls (syncs, synchronous copies)
-- @column host_runtime_other_ns   DURATION  host time in other runtime calls
-- @column host_outside_runtime_ns DURATION  the step's CPU span outside any runtime call (Python, framework
--                                           work)
-- @column gpu_busy_share_e2e      SHARE     gpu_busy_ns / e2e_dev_ns: the step as its user lives it (from its
--                                           start to its last GPU op's end), idle before the first op and
--                                           after the CPU range included
-- @column gpu_busy_share_span     SHARE     gpu_busy_ns / gpu_span_dev_ns (<= 1): busy share between the
--                                           step's first and last GPU op only (NULL without GPU ops, both)
SELECT * FROM steps_rows ORDER BY trace, step_index;

-- @output stats
-- @column trace     TEXT      the trace (input file name) the row is about
-- @column step_kind TEXT      the kind of step (steps.sql: the step name with per-step fields dropped)
-- @column metric    TEXT      what the row measures (metric names of lib/run_metrics.sql or columns of steps)
-- @column steps     COUNT     steps of the kind
-- @column mean      VALUE     mean over the steps, in the row's unit
-- @column p50       VALUE     median over the steps, in the row's unit
-- @column p99       VALUE     99th percentile over the steps, in the row's unit
-- @column min       VALUE     smallest value over the steps, in the row's unit
-- @column max       VALUE     largest value over the steps, in the row's unit
WITH _long_metrics AS (
    UNPIVOT (SELECT trace, step_kind, wall_ns::DOUBLE AS wall_ns, cpu_span_ns::DOUBLE AS cpu_span_ns,
                    gpu_span_ns::DOUBLE AS gpu_span_ns, end_to_end_ns::DOUBLE AS end_to_end_ns,
                    gpu_busy_ns::DOUBLE AS gpu_busy_ns,
                    gpu_op_ns::DOUBLE AS gpu_op_ns, gpu_ops::DOUBLE AS gpu_ops, launches::DOUBLE AS launches,
                    graph_launches::DOUBLE AS graph_launches, graph_launch_host_ns::DOUBLE AS graph_launch_host_ns,
                    graph_nodes::DOUBLE AS graph_nodes, sync_calls::DOUBLE AS sync_calls,
                    sync_stall_ns::DOUBLE AS sync_stall_ns, gpu_busy_share_e2e, gpu_busy_share_span
             FROM steps_rows)
    ON COLUMNS(* EXCLUDE (trace, step_kind)) INTO NAME metric VALUE v
)
-- mean summed in value order (list_avg of a sorted list): gpu_busy_share is a fraction, and a parallel avg()
-- adds in the order threads deliver rows, which changed its last bit from run to run
SELECT trace, step_kind, metric, count(v) AS steps, list_avg(list(v ORDER BY v)) AS mean, quantile_cont(v, 0.5) AS p50,
       quantile_cont(v, 0.99) AS p99, min(v) AS min, max(v) AS max
FROM _long_metrics GROUP BY trace, step_kind, metric
ORDER BY trace, step_kind, list_position(['wall_ns', 'cpu_span_ns', 'gpu_span_ns', 'end_to_end_ns', 'gpu_busy_ns',
         'gpu_op_ns', 'gpu_ops', 'launches', 'graph_launches', 'graph_launch_host_ns', 'graph_nodes', 'sync_calls',
         'sync_stall_ns', 'gpu_busy_share_e2e', 'gpu_busy_share_span'], metric);

-- @output phases
-- @column trace           TEXT      the trace (input file name) the row is about
-- @column step_index      ID        the step's number in its trace (1.. in time order)
-- @column step_kind       TEXT      the kind of step (steps.sql: the step name with per-step fields dropped)
-- @column phase           TEXT      the phase (a range name; '(other)' = directly in the step, in no phase of
--                                   it)
-- @column cpu_ns          DURATION  summed range time, inclusive of children
-- @column range_instances COUNT     range instances of the phase in the step
-- @column gpu_op_ns       DURATION  their summed duration
-- @column gpu_ops         COUNT     GPU ops launched in the phase in this step
-- @column launches        COUNT     kernel launch calls in the phase in this step
-- @column wall_ns         DURATION  the step's wall time (its range duration)
-- @column cpu_share       SHARE     cpu_ns / wall_ns (inclusive of child ranges)
-- @column phase_source    TEXT      'range' | 'module' | 'frame'; several comma-separated when a path came
--                                   from more than one; NULL for '(other)' with nothing launched by a range
SELECT * FROM steps_phases ORDER BY trace, step_index, gpu_op_ns DESC NULLS LAST, cpu_ns DESC NULLS LAST, phase;

-- @output phase_stats
-- @column trace              TEXT      the trace (input file name) the row is about
-- @column step_kind          TEXT      the kind of step (steps.sql: the step name with per-step fields
--                                      dropped)
-- @column phase              TEXT      the phase (a range name; '(other)' = directly in the step, in no phase
--                                      of it)
-- @column steps              COUNT     steps of the kind
-- @column steps_with_phase   COUNT     steps of the kind that have the phase
-- @column mean_cpu_ns        DURATION  mean CPU time of the phase per step that has it
-- @column p50_cpu_ns_present DURATION  median over the steps that have the phase
-- @column mean_gpu_op_ns     DURATION  mean GPU op time of the phase per step of the kind, 0 where absent
-- @column cpu_share          SHARE     sum cpu_ns / sum wall_ns over the kind's steps
-- @column gpu_share          SHARE     sum gpu_op_ns / sum of the steps' gpu_op_ns (the LenVM-style table)
-- @column phase_source       TEXT      'range' | 'module' | 'frame'; several comma-separated when a path came
--                                      from more than one; NULL for '(other)' with nothing launched by a
--                                      range
--
--                                      range
WITH _per_kind AS (
    SELECT trace, step_kind, count(*) AS steps, sum(wall_ns) AS k_wall_ns, sum(gpu_op_ns) AS k_gpu_op_ns
    FROM steps_rows GROUP BY ALL
)
SELECT p.trace, p.step_kind, p.phase, any_value(k.steps) AS steps, count(*) AS steps_with_phase,
       coalesce(sum(p.cpu_ns), 0) / any_value(k.steps) AS mean_cpu_ns,
       quantile_cont(p.cpu_ns, 0.5) AS p50_cpu_ns_present,
       sum(p.gpu_op_ns) / any_value(k.steps) AS mean_gpu_op_ns,
       coalesce(sum(p.cpu_ns), 0) / any_value(k.k_wall_ns) AS cpu_share,
       sum(p.gpu_op_ns) / nullif(any_value(k.k_gpu_op_ns), 0) AS gpu_share,
       modules_src_agg(p.phase_source) AS phase_source
FROM steps_phases p JOIN _per_kind k USING (trace, step_kind)
GROUP BY p.trace, p.step_kind, p.phase
ORDER BY p.trace, p.step_kind, coalesce(mean_gpu_op_ns, 0) + mean_cpu_ns DESC, p.phase;

-- @output median_step_ops
-- @column trace        TEXT      the trace (input file name) the row is about
-- @column step_index   ID        the step's number in its trace (1.. in time order)
-- @column step_name    TEXT      the step range's name as captured
-- @column step_ts_ns   TIMESTAMP start of the median step
-- @column step_wall_ns DURATION  wall time of the median step
-- @column lane         TEXT      'CPU tid N' | 'GPU g stream s' (display order: CPU lanes by tid, then GPU by
--                                g, stream). g is trace_devices.gpu_index, the GPU index `tracekit info`
--                                prints (a ROCm HSA agent id mapped to its listed GPU; tracekit.store
--                                documents the rule); the op's device id when the trace lists no GPU; 'GPU ?
--                                (agent d)' when the HSA agent id d maps to no one listed GPU; 'GPU ?' for
--                                ops with no device id
-- @column name         TEXT      the op or range name
-- @column ts_ns        TIMESTAMP start
-- @column dur_ns       DURATION  duration
-- @column phase_path   TEXT      the stored (range) path, as the timeline draws it; eff_phase_path /
--                                phase_source: the
SELECT m.trace, m.step_index, m.step_name, m.step_ts_ns, m.step_wall_ns,
       'GPU ' || g.device || ' stream ' || coalesce(g.stream::VARCHAR, '?') AS lane, n.name, g.ts_ns, g.dur_ns,
       steps_rel_phase(g.phase_path, g.step_path) AS phase_path
FROM steps_gpu g JOIN steps_median m USING (trace, step_index) JOIN gpu_activity n USING (gid)
UNION ALL
SELECT m.trace, m.step_index, m.step_name, m.step_ts_ns, m.step_wall_ns,
       'CPU ranges (tid ' || r.tid || ')', r.name, r.ts_ns, r.dur_ns, steps_rel_phase(r.phase_path, r.step_path)
FROM steps_ranges r JOIN steps_median m USING (trace, step_index)
ORDER BY trace, lane, ts_ns, dur_ns, name;
