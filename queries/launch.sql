-- launch: what does launching cost, and how long does work queue before the GPU starts it?
-- @requires lib/frames lib/gpu_activity lib/runtime
--
-- Run it with `tracekit report` (or tracekit.report.run): that loads the modules on its @requires line first and sets
-- every getvariable() parameter to its default (its @param line; docs/queries.md).
--
-- One row per (trace, phase_path, launch API). A launch is a runtime call that launched at
-- least one GPU op (matched by correlation at convert time). Queueing delay of a launch =
-- start of its first GPU op - start of the launch call (includes the call's own host time and
-- any wait behind earlier work on the stream; HTA's "launch delay" instead subtracts the call's
-- end and clips at 0, also given here as launch_delay_*).
--
-- Inputs: gpu_activity (queries/lib/); frames_runtime (lib/frames.sql). No parameters.
--
-- Output `launch` columns:
--
-- Output `by_frame`: launch sites in the code, one row per (trace, user_frame): user_frame is the
--   innermost frame of user code around the launch call (not torch internals, not built-ins),
--   `file(line): function`, from the trace's Python frames (with_stack=True; lib/frames.sql says which
--   frames are user code). Ordered by host_ns.
--
-- How to read: short_share near 1 with a large host_ns means the phase is launch bound
-- (candidates for CUDA graphs or fusion); a large queue_p50_ns means the CPU runs ahead and the
-- GPU is the bottleneck.

-- @output launch
-- @column trace               TEXT      the trace (input file name) the row is about
-- @column phase_path          TEXT      the phase of the launch call
-- @column launch_name         TEXT      the launch call's API name
-- @column launches            COUNT     distinct launch calls
-- @column gpu_ops             COUNT     GPU ops they launched (a graph launch launches many)
-- @column host_ns             DURATION  summed duration of the launch calls (CPU time spent launching)
-- @column host_mean_ns        DURATION  host_ns / launches
-- @column queue_p50_ns        DURATION  median queueing delay over the launches (first op start - call start)
-- @column queue_p99_ns        DURATION  99th percentile of the queueing delay
-- @column queue_max_ns        DURATION  longest queueing delay
-- @column launch_delay_p50_ns DURATION  median launch delay (HTA definition: first op start - call end, >= 0)
-- @column launch_delay_p99_ns DURATION  99th percentile of the launch delay
-- @column short_ops           COUNT     GPU ops shorter than their own launch call (non-graph launches only)
-- @column short_ops_ns        DURATION  their summed GPU duration
-- @column short_share         SHARE     short_ops / gpu_ops of non-graph launches (NULL when there are none)
-- @column api_class           TEXT      the call's class (lib/api's api_classes): launch | graph_launch |
--                                       enqueue (async copies and memsets) | blocking (synchronous copies:
--                                       their host time is a sync stall, not launch cost) | ...
WITH _per_launch AS (
    SELECT trace, correlation, min(phase_path) AS phase_path, min(launch_name) AS launch_name,  -- one launch: one value
           min(launch_ts_ns) AS launch_ts_ns, min(launch_dur_ns) AS launch_dur_ns,
           min(ts_ns) AS first_op_ns, count(*) AS gpu_ops, bool_or(graph) AS graph,
           count(*) FILTER (WHERE NOT graph AND dur_ns < launch_dur_ns) AS short_ops,
           sum(dur_ns) FILTER (WHERE NOT graph AND dur_ns < launch_dur_ns) AS short_ops_ns
    FROM gpu_activity WHERE launch_name IS NOT NULL
    GROUP BY trace, correlation
)
SELECT trace, phase_path, launch_name, count(*) AS launches, sum(gpu_ops)::BIGINT AS gpu_ops,
       sum(launch_dur_ns)::BIGINT AS host_ns, avg(launch_dur_ns) AS host_mean_ns,
       quantile_cont(first_op_ns - launch_ts_ns, 0.5) AS queue_p50_ns,
       quantile_cont(first_op_ns - launch_ts_ns, 0.99) AS queue_p99_ns,
       max(first_op_ns - launch_ts_ns) AS queue_max_ns,
       quantile_cont(greatest(first_op_ns - launch_ts_ns - launch_dur_ns, 0), 0.5) AS launch_delay_p50_ns,
       quantile_cont(greatest(first_op_ns - launch_ts_ns - launch_dur_ns, 0), 0.99) AS launch_delay_p99_ns,
       coalesce(sum(short_ops), 0)::BIGINT AS short_ops, coalesce(sum(short_ops_ns), 0)::BIGINT AS short_ops_ns,
       sum(short_ops) / nullif(sum(gpu_ops) FILTER (WHERE NOT graph), 0) AS short_share,
       any_value(c.api_class) AS api_class
FROM _per_launch
LEFT JOIN (SELECT name, max(api_class) AS api_class FROM runtime_calls GROUP BY name) c ON c.name = launch_name
GROUP BY trace, phase_path, launch_name
ORDER BY trace, host_ns DESC, phase_path, launch_name;

-- @output by_frame
-- @column trace      TEXT      the trace (input file name) the row is about
-- @column user_frame FRAME     the innermost user-code Python frame around the launch calls; NULL: the
--                              launches no user frame encloses (note says why)
-- @column launches   COUNT     distinct kernel and graph launch calls (api_classes: a copy or memset call,
--                              even a blocking one such as hipMemcpyWithStream, is not a launch)
-- @column gpu_ops    COUNT     GPU ops they launched
-- @column host_ns    DURATION  summed duration of the launch calls
-- @column gpu_op_ns  DURATION  summed duration of the GPU ops they launched (overlapping ops each counted)
-- @column host_share SHARE     host_ns / host_ns of all launches of the trace (DENOMINATOR: every launch
--                              call)
-- @column note       NOTE      NULL, or for the NULL frame: 'the trace has no Python frames ...' (recorded
--                              without with_stack=True) | 'no user-code frame encloses these launches ...'
WITH _per_launch AS (
    SELECT trace, correlation, min(launch_tid) AS launch_tid,
           min(launch_ts_ns) AS launch_ts_ns,  -- one launch: one value
           min(launch_dur_ns) AS launch_dur_ns, count(*) AS gpu_ops, sum(dur_ns) AS gpu_op_ns
    FROM gpu_activity
    WHERE launch_name IN (SELECT DISTINCT name FROM runtime_calls WHERE api_class IN ('launch', 'graph_launch'))
    GROUP BY trace, correlation
), _launch_frames AS (
    SELECT l.*, f.user_frame FROM _per_launch l
    LEFT JOIN frames_runtime f ON f.trace = l.trace AND f.correlation = l.correlation AND f.tid = l.launch_tid
     AND f.ts_ns = l.launch_ts_ns AND f.launched
)
SELECT f.trace, f.user_frame, count(*) AS launches, sum(f.gpu_ops)::BIGINT AS gpu_ops,
       sum(f.launch_dur_ns)::BIGINT AS host_ns, sum(f.gpu_op_ns)::BIGINT AS gpu_op_ns,
       sum(f.launch_dur_ns) / nullif(sum(sum(f.launch_dur_ns)) OVER (PARTITION BY f.trace), 0) AS host_share,
       CASE WHEN f.user_frame IS NOT NULL THEN NULL
            WHEN NOT any_value(p.has_python) THEN 'the trace has no Python frames (record with torch.profiler '
                 || 'with_stack=True to name the code that launched)'
            ELSE 'no user-code frame encloses these launches (only torch internals and built-ins, or no Python '
                 || 'frame at all: e.g. launches from a C++ thread)' END AS note
FROM _launch_frames f JOIN frames_py_caps p ON p.trace = f.trace
GROUP BY f.trace, f.user_frame
ORDER BY f.trace, host_ns DESC, f.user_frame NULLS FIRST;
