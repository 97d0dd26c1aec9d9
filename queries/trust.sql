-- trust: how far can the other analyses be trusted on this trace?
-- @requires lib/api lib/caps lib/gpu_activity lib/notes lib/runtime lib/trace_window
--
-- Run it with `tracekit report` (or tracekit.report.run): that loads the modules on its @requires line first and sets
-- every getvariable() parameter to its default (its @param line; docs/queries.md).
--
-- One row per (trace, flag). Flags:
--   graph_replayed_share   GPU op time replayed by CUDA graph launches: those ops carry only the
--                          launch's phase, so per-phase and lm_head numbers cannot split them (warn),
--                          unless `tracekit graphmap -o` mapped >= 99% of them (ops with
--                          args."@graphmap"): then info, with mapped / graph-replayed ops in the
--                          message. The advice names graphmap; nsys --cuda-graph-trace=node only on
--                          non-ROCm traces (no hip* runtime calls)
--   missing_sync_events    no gpu_sync rows AND no sync runtime calls: syncs and sync_blocked idle
--                          cannot be seen (value NULL, not 0)
--   no_gpu_sync_rows       sync runtime calls exist but no GPU-side sync records (info)
--   kernels_without_launch GPU ops with no launching runtime call (trimmed window, or a runtime
--                          activity not captured): they have no phase
--   same_stream_overlap    GPU ops that start before the previous op on the same device+stream
--                          ended (clock rounding or skew, or a converter problem). Kernels launched with
--                          cudaLaunchKernelEx(C) / cuLaunchKernelEx (launch_name starting so) may overlap
--                          their predecessor by design (Hopper/Blackwell programmatic dependent launch):
--                          the message says how many of the overlapping ops were, naming the calls
--   clock_resolution       timestamps on a 1 us grid (Kineto µs traces): ops shorter than 1 us
--                          show as 0 or 1 us; zero-duration GPU ops are counted
--   no_gpu_activity        no GPU op, no runtime row, no sync record: a CPU-only run, said once (warn);
--                          no_gpu_ops, no_runtime_rows and missing_sync_events are then 'info'
--   no_gpu_ops             the trace has no GPU ops at all
--   no_runtime_rows        no CUDA/HIP runtime rows: launches, queueing, phases of GPU ops unknown
--   duplicate_correlation  GPU ops whose correlation id matches several runtime calls (ids reused, e.g.
--                          HIP traces): each is linked to the latest of them that started at or before
--                          it (tracekit/ingest/link.py), so its launch, phase and idle cause rest on
--                          that choice. value = such ops / GPU ops
--
-- Inputs: events, gpu_activity, runtime_calls (queries/lib/). No parameters.
--
-- Output columns:
--   trace, flag
--   severity     info | warn (warn when the flag can change a conclusion)
--   value        the measured quantity (a share in [0,1] or a count); NULL when not measurable
--   numerator    what value counts (ns or rows);  denominator: what it is divided by
--   message      what it means and what to do
--
-- How to read: every report prints the warn rows next to its tables.

-- @output trust
-- @column trace       TEXT      the trace (input file name) the row is about
-- @column flag        TEXT      the trust check's name
-- @column severity    TEXT      info | warn (warn when the flag can change a conclusion)
-- @column value       NUMBER    the measured quantity (a share in [0,1] or a count); NULL when not measurable
-- @column numerator   TEXT      what value counts (ns or rows)
-- @column denominator TEXT      what it is divided by
-- @column message     NOTE      what it means and what to do
WITH _gpu_totals AS (
    SELECT trace, count(*) AS ops, sum(dur_ns) AS op_ns,
           sum(dur_ns) FILTER (WHERE graph) AS graph_ns, count(*) FILTER (WHERE graph) AS graph_ops,
           count(*) FILTER (WHERE launch_name IS NULL) AS unlaunched,
           sum(dur_ns) FILTER (WHERE launch_name IS NULL) AS unlaunched_ns,
           count(*) FILTER (WHERE dur_ns = 0) AS zero_dur
    FROM gpu_activity GROUP BY trace
), _stream_overlaps AS (
    SELECT trace, count(*) FILTER (WHERE ts_ns < prev_end) AS overlaps, count(*) AS ops,
           count(*) FILTER (WHERE ts_ns < prev_end AND pdl) AS pdl_overlaps,
           string_agg(DISTINCT launch_name, ', ' ORDER BY launch_name)
               FILTER (WHERE ts_ns < prev_end AND pdl) AS pdl_calls
    FROM (
        SELECT trace, ts_ns, launch_name,
               coalesce(regexp_matches(launch_name, '^(cudaLaunchKernelEx|cuLaunchKernelEx)'), FALSE) AS pdl,
               max(end_ns) OVER (PARTITION BY trace, device, stream ORDER BY ts_ns, end_ns
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
        FROM gpu_activity) GROUP BY trace
), _gpu_syncs AS (
    SELECT e.trace,
           count(*) FILTER (WHERE e.kind = 'gpu_sync') AS gpu_sync_rows
    FROM events e WHERE e.kind IN ('gpu_sync') GROUP BY e.trace
), _runtime_totals AS (
    SELECT trace, count(*) FILTER (WHERE is_sync) AS sync_calls, count(*) AS runtime_rows
    FROM runtime_calls GROUP BY trace
), _timing_grid AS (
    SELECT trace, count(*) AS timed, count(*) FILTER (WHERE ts_ns % 1000 = 0 AND dur_ns % 1000 = 0) AS on_us_grid,
           any_value(source) AS source
    FROM events WHERE kind IN ('kernel', 'memcpy', 'memset', 'runtime', 'range', 'cpu_op') GROUP BY trace
), _traces AS (SELECT w.trace, r.source FROM trace_window w LEFT JOIN _timing_grid r USING (trace))
-- graph_replayed_share (block owned by graphmap): graph-replayed ops that `tracekit graphmap -o`
-- mapped carry args."@graphmap"; when >= 99% of the graph-replayed ops are mapped the flag is info.
SELECT t.trace, 'graph_replayed_share' AS flag,
       CASE WHEN coalesce(g.graph_ns, 0) > 0 AND coalesce(gm.mapped, 0) < 0.99 * g.graph_ops
            THEN 'warn' ELSE 'info' END AS severity,
       coalesce(g.graph_ns, 0) / nullif(g.op_ns, 0) AS value,
       'graph-replayed GPU op ns = ' || coalesce(g.graph_ns, 0)
       || ' (' || coalesce(g.graph_ops, 0) || ' ops)' AS numerator,
       'all GPU op ns = ' || coalesce(g.op_ns, 0) AS denominator,
       CASE WHEN coalesce(g.graph_ns, 0) = 0 THEN 'no CUDA graph replays'
            WHEN coalesce(gm.mapped, 0) >= 0.99 * g.graph_ops THEN
                'graph-replayed ops mapped by tracekit graphmap: ' || gm.mapped || ' of ' || g.graph_ops || ' ('
                || round(100.0 * gm.mapped / g.graph_ops, 2) || '%) carry the phase and shapes of their reference op'
            ELSE 'ops replayed by CUDA graphs take the phase of their graph launch'
                 || CASE WHEN coalesce(gm.mapped, 0) > 0
                         THEN ' (' || gm.mapped || ' of ' || g.graph_ops || ' mapped by tracekit graphmap, '
                         || round(100.0 * gm.mapped / g.graph_ops, 2) || '%)' ELSE '' END
                 || '; per-phase splits inside the graph: run `tracekit graphmap` with a reference '
                 || '(an eager run or a profile of the graph capture)'
                 || CASE WHEN hip.rocm THEN '' ELSE ', nsys --cuda-graph-trace=node' END
                 || ', or capture with graphs disabled' END AS message
FROM _traces t LEFT JOIN _gpu_totals g USING (trace)
LEFT JOIN (SELECT trace, count(*) FILTER (WHERE contains(args, '"@graphmap"')) AS mapped
           FROM (SELECT trace, args FROM kernels WHERE api_is_graph_launch(launch_name))
           GROUP BY trace) gm USING (trace)
LEFT JOIN (SELECT trace, bool_or(starts_with(name, 'hip')) AS rocm FROM runtime_calls GROUP BY trace) hip USING (trace)
UNION ALL
SELECT t.trace, CASE WHEN coalesce(s.gpu_sync_rows, 0) = 0 AND coalesce(rs.sync_calls, 0) = 0 THEN 'missing_sync_events'
                     WHEN coalesce(s.gpu_sync_rows, 0) = 0 THEN 'no_gpu_sync_rows' ELSE 'sync_events' END,
       CASE WHEN coalesce(s.gpu_sync_rows, 0) = 0 AND coalesce(rs.sync_calls, 0) = 0 AND (k.has_gpu OR k.has_runtime)
            THEN 'warn' ELSE 'info' END,
       CASE WHEN coalesce(s.gpu_sync_rows, 0) = 0 AND coalesce(rs.sync_calls, 0) = 0 THEN NULL
            ELSE coalesce(rs.sync_calls, 0) + coalesce(s.gpu_sync_rows, 0) END,
       'sync runtime calls = ' || coalesce(rs.sync_calls, 0) || ', gpu_sync rows = ' || coalesce(s.gpu_sync_rows, 0),
       'runtime rows = ' || coalesce(rs.runtime_rows, 0),
       CASE WHEN coalesce(s.gpu_sync_rows, 0) = 0 AND coalesce(rs.sync_calls, 0) = 0 THEN
                CASE WHEN t.source = 'nsys'
                     THEN 'no sync API calls or sync records: capture with nsys profile --trace=cuda '
                          || '(CUDA API + synchronization)'
                     ELSE 'no sync API calls or cuda_sync events: profile with '
                          || 'activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA] and '
                          || 'experimental_config=torch.profiler._ExperimentalConfig(enable_cuda_sync_events=True)' END
                || '; syncs and sync_blocked idle time are unknown, not zero'
            WHEN coalesce(s.gpu_sync_rows, 0) = 0
            THEN 'sync API calls seen but no GPU-side sync records (Kineto: enable_cuda_sync_events=True)'
            ELSE 'sync API calls and GPU-side sync records present' END
FROM _traces t LEFT JOIN _gpu_syncs s USING (trace) LEFT JOIN _runtime_totals rs USING (trace) JOIN caps k USING (trace)
UNION ALL
SELECT t.trace, 'kernels_without_launch', CASE WHEN coalesce(g.unlaunched, 0) > 0 THEN 'warn' ELSE 'info' END,
       g.unlaunched / nullif(g.ops, 0),
       'GPU ops without launch = ' || coalesce(g.unlaunched, 0) || ' (' || coalesce(g.unlaunched_ns, 0) || ' ns)',
       'GPU ops = ' || coalesce(g.ops, 0),
       CASE WHEN coalesce(g.unlaunched, 0) > 0
            THEN 'these GPU ops have no launching call (trace window trimmed, or runtime '
            || 'activity not captured): they count in kernels and gpu_idle but have no phase, step or launch stats'
            ELSE 'every GPU op has its launching call' END
FROM _traces t LEFT JOIN _gpu_totals g USING (trace)
UNION ALL
SELECT t.trace, 'same_stream_overlap', CASE WHEN coalesce(o.overlaps, 0) > 0 THEN 'warn' ELSE 'info' END,
       o.overlaps / nullif(o.ops, 0),
       'GPU ops starting before the previous op on their stream ended = ' || coalesce(o.overlaps, 0),
       'GPU ops = ' || coalesce(o.ops, 0),
       CASE WHEN coalesce(o.overlaps, 0) > 0 THEN 'ops on one stream overlap: clock rounding or skew'
            || CASE WHEN o.pdl_overlaps > 0 THEN '; ' || o.pdl_overlaps || ' of them launched with ' || o.pdl_calls
                    || ' (programmatic dependent launch lets them overlap by design)' ELSE '' END
            || '; union-busy times stay correct, summed op times double count the overlap'
            ELSE 'no overlap within a stream' END
FROM _traces t LEFT JOIN _stream_overlaps o USING (trace)
UNION ALL
SELECT t.trace, 'clock_resolution', CASE WHEN r.on_us_grid = r.timed THEN 'warn' ELSE 'info' END,
       r.on_us_grid / nullif(r.timed, 0),
       'timed rows on a 1 us grid = ' || coalesce(r.on_us_grid, 0)
       || '; zero-duration GPU ops = ' || coalesce(g.zero_dur, 0),
       'timed rows (GPU ops, runtime, range, cpu_op) = ' || coalesce(r.timed, 0),
       CASE WHEN r.on_us_grid = r.timed THEN 'timestamps have 1 us resolution: ops shorter than 1 us show as 0-1 us, '
            || 'short gaps and launch delays are rounded' ELSE 'sub-microsecond timestamps' END
FROM _traces t LEFT JOIN _timing_grid r USING (trace) LEFT JOIN _gpu_totals g USING (trace)
UNION ALL
SELECT t.trace, 'no_gpu_activity', 'warn', NULL, 'GPU ops, runtime rows and sync records = 0', '-',
       notes_no_gpu_activity(k.capture_activities) || '; every GPU number is NULL'
FROM _traces t JOIN caps k USING (trace) WHERE NOT (k.has_gpu OR k.has_runtime OR k.has_sync)
UNION ALL
SELECT t.trace, 'no_gpu_ops', CASE WHEN k.has_runtime OR k.has_sync THEN 'warn' ELSE 'info' END, NULL,
       'GPU ops = 0', '-',
       'no kernel/memcpy/memset rows: GPU analyses are empty (was CUDA activity captured?)'
FROM _traces t JOIN caps k USING (trace) WHERE NOT k.has_gpu
UNION ALL
SELECT t.trace, 'no_runtime_rows', CASE WHEN k.has_gpu OR k.has_sync THEN 'warn' ELSE 'info' END, NULL,
       'runtime rows = 0', '-',
       'no CUDA/HIP runtime API rows: launches, queueing delay, steps'' launch counts and the phase of every GPU op '
       || 'are unknown (NULL). ' || notes_fix_runtime()
FROM _traces t JOIN caps k USING (trace) WHERE NOT k.has_runtime
UNION ALL
(WITH _dup_correlations AS (  -- correlation ids carried by more than one runtime call
    SELECT trace, correlation FROM runtime_calls WHERE correlation IS NOT NULL GROUP BY ALL HAVING count(*) > 1
), _dup_ops AS (
    SELECT g.trace, count(*) AS ops FROM gpu_activity g JOIN _dup_correlations d USING (trace, correlation)
    GROUP BY ALL
)
SELECT t.trace, 'duplicate_correlation', CASE WHEN coalesce(d.ops, 0) > 0 THEN 'warn' ELSE 'info' END,
       coalesce(d.ops, 0) / nullif(g.ops, 0),
       'GPU ops whose correlation id matches several runtime calls = ' || coalesce(d.ops, 0),
       'GPU ops = ' || coalesce(g.ops, 0),
       CASE WHEN coalesce(d.ops, 0) > 0 THEN 'correlation ids are reused: each of these ops is linked to the latest '
            || 'launch of its id that started at or before it; launch, phase and idle cause of those ops rest on that'
            ELSE 'correlation ids are unique' END
FROM _traces t LEFT JOIN _gpu_totals g USING (trace) LEFT JOIN _dup_ops d USING (trace))
ORDER BY 1, 2;
