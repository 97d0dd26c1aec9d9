-- comm: exposed communication and memory-copy time per device, per step, per phase.
-- @requires lib/gpu_activity lib/step_instances
--
-- Run it with `tracekit report` (or tracekit.report.run): that loads the modules on its @requires line first.
--
-- Classes of GPU ops (queries/lib/ op_class): communication (the kernels of category `communication` in
-- kernel_categories.csv: NCCL/RCCL/HCCL, DeepEP, NVSHMEM, mscclpp, userbuffers, the custom all-reduce kernels
-- of vLLM/SGLang/AITER and TensorRT-LLM/FlashInfer, kernels named all_to_all/all_gather/reduce_scatter; HTA's
-- kernel types know only NCCL's names), memory (memcpy and memset) and compute (every other kernel). Per (trace,
-- device) each class's ops are merged into a union of intervals
-- (all streams together): C (compute), M (communication), Y (memory). Then
--   comm_ns          = |M|            communication kernel time, overlaps between comm ops counted once
--   comm_overlap_ns  = |M ∩ C|        the part of it hidden under compute on the same device
--   comm_exposed_ns  = |M| - |M ∩ C|  the part nothing computes under: the step waits for it
-- and the same three for memory (mem_*: |Y|, |Y ∩ C|, |Y| - |Y ∩ C|). comm_overlap_share =
-- comm_overlap_ns / comm_ns is HTA's get_comm_comp_overlap (percent there); the kernel_types output is
-- HTA's get_gpu_kernel_breakdown type table (time during which exactly that set of classes runs).
-- NCCL's NVTX ranges (nsys) are CPU-side calls, not GPU time: they are not counted here
-- (collectives.sql reads the collective type from them).
--
-- How: every op boundary of a device is swept once into segments with the classes running there
-- (state bitmask: 1 compute, 2 comm, 4 memory); per measure, running totals over its segments give the
-- measure of any window [a, b) as G(b) - G(a), found with two ASOF joins (steps, and each op for the
-- per-phase view). Window functions run over the segments once; measured on 64 ranks in BENCHMARKS.md.
--
-- Inputs: gpu_activity, gpu_activity_names, gpu_activity_devices, step_instances (queries/lib/).
--
-- Output `comm` (one row per trace, device that ran GPU ops; the run total):
-- Output `kernel_types` (trace, device, kernel_type): time_ns during which exactly these classes run
--   (labels as HTA's: COMPUTATION, COMMUNICATION, MEMORY, 'COMPUTATION overlapping COMMUNICATION', ...),
-- Output `by_step` (trace, step_index, step_name, device): wall_ns (the step range; DENOMINATOR of the
--   shares), comm_ns, comm_overlap_ns, comm_exposed_ns, comm_exposed_share, mem_ns, mem_overlap_ns,
--   (comm_exposed_share NULL on a device with no communication kernel at all, as in `comm`).
-- Output `by_phase` (trace, device, phase_path of the launching call, relative to the step holding the
--   launch as in steps.phases ('(other)' = directly in the step, in no phase of it; full path outside steps); rows with
--   comm or memory ops):
--   comm_ops, comm_op_ns (summed op durations), comm_overlap_ns (each op's time under compute,
--   summed), comm_exposed_ns = comm_op_ns - comm_overlap_ns, comm_exposed_share = comm_exposed_ns /
--   comm_op_ns, comm_exposed_ns_per_step (/ the trace's steps; NULL without steps), and mem_* alike.
--   Per-op sums: where two communication ops overlap each other they count twice here and once in `comm`.
--
-- How to read: comm_exposed_ns is time the GPU spends only communicating (or idle-waiting inside a
-- communication kernel for a late peer: collectives.sql `waits` says who); overlap is communication compute hides.

-- The words for "no communication kernel", one place (comm's note, run_metrics' comm.overlap_share note).
CREATE OR REPLACE TEMP MACRO comm_no_comm() AS
    'no communication kernel (NCCL/RCCL, DeepEP, NVSHMEM, custom all-reduce: '
    || 'queries/kernel_categories.csv)';

-- Segments [s, e) between consecutive op boundaries of a device, with how many ops of each class run
-- there: one running sum of packed counters (compute + 2^20 comm + 2^40 memory), then the class
-- flags. No merge pass: a class runs where its counter is > 0.
CREATE OR REPLACE TEMP TABLE comm_segments AS
WITH _weighted_ops AS (
    SELECT trace, device, ts_ns, end_ns,
           CASE op_class WHEN 'compute' THEN 1 WHEN 'communication' THEN 1048576 ELSE 1099511627776 END AS w
    FROM gpu_activity WHERE end_ns > ts_ns  -- zero-length ops add no time
), _boundaries AS (
    SELECT trace, device, t, sum(d)::BIGINT AS d
    FROM (SELECT trace, device, ts_ns AS t, w AS d FROM _weighted_ops
          UNION ALL SELECT trace, device, end_ns, -w FROM _weighted_ops)
    GROUP BY ALL
), _counted_segments AS (
    SELECT trace, device, t AS s, lead(t) OVER w AS e, (sum(d) OVER (w ROWS UNBOUNDED PRECEDING))::BIGINT AS cnt
    FROM _boundaries WINDOW w AS (PARTITION BY trace, device ORDER BY t)
), _flagged_segments AS (
    SELECT trace, device, s, e, e - s AS len, ((cnt & 1048575) > 0)::INTEGER AS f_comp,
           (((cnt >> 20) & 1048575) > 0)::INTEGER AS f_comm, ((cnt >> 40) > 0)::INTEGER AS f_mem
    FROM _counted_segments WHERE e IS NOT NULL
)
SELECT trace, device, s, e, len, f_comp + 2 * f_comm + 4 * f_mem AS state, f_comp, f_comm, f_comp * f_comm AS f_comm_ov,
       f_mem, f_comp * f_mem AS f_mem_ov, (f_comp + f_comm + f_mem > 0)::INTEGER AS f_busy
FROM _flagged_segments;

-- Per measure m (comp, comm, comm_ov, mem, mem_ov): the segments where it holds, with the total of m
-- before each (c). The measure of any window [a, b) is then G(b) - G(a), G(t) = c + least(t, e) - s of
-- the last m-segment starting at or before t (an ASOF join): no interval join.
CREATE OR REPLACE TEMP TABLE _cm_cum AS
WITH _measure_segments AS (
    SELECT trace, device, 'comp' AS m, s, e FROM comm_segments WHERE f_comp = 1
    UNION ALL SELECT trace, device, 'comm', s, e FROM comm_segments WHERE f_comm = 1
    UNION ALL SELECT trace, device, 'comm_ov', s, e FROM comm_segments WHERE f_comm_ov = 1
    UNION ALL SELECT trace, device, 'mem', s, e FROM comm_segments WHERE f_mem = 1
    UNION ALL SELECT trace, device, 'mem_ov', s, e FROM comm_segments WHERE f_mem_ov = 1
)  -- DOUBLE running sums are exact for integer ns below 2^53 and twice as fast as HUGEINT ones
SELECT trace, device, m, s, e,
       (sum((e - s)::DOUBLE) OVER (PARTITION BY trace, device, m ORDER BY s ROWS UNBOUNDED PRECEDING))::BIGINT
           - (e - s) AS c
FROM _measure_segments;

-- Per step, device and measure: G(step end) - G(step start). Matched steps only (lib/step_instances): a whole trace
-- is counted in all, not per step (its steps, one per process, all span the trace's window).
CREATE OR REPLACE TEMP TABLE comm_steps AS
WITH _step_devices AS (
    SELECT s.trace, s.step_index, s.name AS step_name, s.ts_ns AS a, s.end_ns AS b, d.device, m.m
    FROM step_instances_matched s JOIN (SELECT DISTINCT trace, device FROM comm_segments) d USING (trace)
    CROSS JOIN (VALUES ('comm'), ('comm_ov'), ('mem'), ('mem_ov')) m(m)
), _with_start AS (
    SELECT x.*, g.c + least(x.a, g.e) - g.s AS ga
    FROM _step_devices x
    ASOF LEFT JOIN _cm_cum g ON x.trace = g.trace AND x.device = g.device AND x.m = g.m AND x.a >= g.s
), _with_end AS (
    SELECT x.*, g.c + least(x.b, g.e) - g.s AS gb
    FROM _with_start x
    ASOF LEFT JOIN _cm_cum g ON x.trace = g.trace AND x.device = g.device AND x.m = g.m AND x.b >= g.s
), _per_step_device AS (
    SELECT trace, step_index, any_value(step_name) AS step_name, device, any_value(b - a) AS wall_ns,
           sum(coalesce(gb, 0) - coalesce(ga, 0)) FILTER (WHERE m = 'comm') AS comm_ns,
           sum(coalesce(gb, 0) - coalesce(ga, 0)) FILTER (WHERE m = 'comm_ov') AS comm_overlap_ns,
           sum(coalesce(gb, 0) - coalesce(ga, 0)) FILTER (WHERE m = 'mem') AS mem_ns,
           sum(coalesce(gb, 0) - coalesce(ga, 0)) FILTER (WHERE m = 'mem_ov') AS mem_overlap_ns
    FROM _with_end GROUP BY trace, step_index, device
)
SELECT *, comm_ns - comm_overlap_ns AS comm_exposed_ns, mem_ns - mem_overlap_ns AS mem_exposed_ns FROM _per_step_device;

-- Per communication / memory op: its time under compute = Gcomp(end) - Gcomp(start).
CREATE OR REPLACE TEMP TABLE _cm_ops AS
WITH _noncompute_ops AS (
    SELECT gid, trace, device, op_class, phase_path, ts_ns, end_ns, coalesce(launch_ts_ns, ts_ns) AS at_ns
    FROM gpu_activity WHERE op_class <> 'compute'
), _step_relative_ops AS (  -- the phase relative to the step holding the launch (as steps.phases), so steps add up
    SELECT o.gid, o.trace, o.device, o.op_class, o.ts_ns, o.end_ns,
           CASE WHEN s.end_ns IS NULL OR o.at_ns >= s.end_ns THEN o.phase_path
                WHEN o.phase_path = s.phase_path THEN '(other)'
                WHEN starts_with(o.phase_path, s.phase_path || '/') THEN substr(o.phase_path, length(s.phase_path) + 2)
                ELSE o.phase_path END AS phase_path
    FROM _noncompute_ops o ASOF LEFT JOIN step_instances_matched s ON o.trace = s.trace AND o.at_ns >= s.ts_ns
), _comp AS (
    SELECT trace, device, s, e, c FROM _cm_cum WHERE m = 'comp'
), _with_start AS (
    SELECT o.*, g.c + least(o.ts_ns, g.e) - g.s AS ga
    FROM _step_relative_ops o ASOF LEFT JOIN _comp g ON o.trace = g.trace AND o.device = g.device AND o.ts_ns >= g.s
), _with_end AS (
    SELECT o.*, g.c + least(o.end_ns, g.e) - g.s AS gb
    FROM _with_start o ASOF LEFT JOIN _comp g ON o.trace = g.trace AND o.device = g.device AND o.end_ns >= g.s
)
SELECT gid, trace, device, op_class, phase_path, end_ns - ts_ns AS op_ns,
       coalesce(gb, 0) - coalesce(ga, 0) AS overlap_ns
FROM _with_end;

CREATE OR REPLACE TEMP TABLE _cm_nsteps AS
SELECT w.trace, count(s.step_index) AS steps
FROM (SELECT DISTINCT trace FROM gpu_activity) w LEFT JOIN step_instances_matched s USING (trace) GROUP BY w.trace;

CREATE OR REPLACE TEMP TABLE _cm_dev AS
WITH _segment_totals AS (
    SELECT trace, device, min(s) AS first_ns, max(e) AS last_ns, sum(len * f_busy) AS busy_ns,
           sum(len * f_comp) AS compute_ns, sum(len * f_comm) AS comm_ns, sum(len * f_comm_ov) AS comm_overlap_ns,
           sum(len * f_mem) AS mem_ns, sum(len * f_mem_ov) AS mem_overlap_ns
    FROM comm_segments GROUP BY trace, device
), _op_counts AS (
    SELECT trace, device, count(*) FILTER (WHERE op_class = 'communication') AS comm_ops,
           count(*) FILTER (WHERE op_class = 'memory') AS mem_ops
    FROM gpu_activity GROUP BY trace, device
), _libraries AS (  -- the libraries of a device's communication kernels, most summed time first
    SELECT trace, device, string_agg(library, ', ' ORDER BY t DESC, library) AS comm_libraries
    FROM (SELECT g.trace, g.device, coalesce(n.library, '?') AS library, sum(g.dur_ns) AS t
          FROM gpu_activity g JOIN gpu_activity_names n USING (kind, name)
          WHERE g.op_class = 'communication' GROUP BY ALL)
    GROUP BY ALL
), _step_totals AS (
    SELECT trace, device, sum(comm_exposed_ns) AS step_comm_exposed_ns, sum(mem_exposed_ns) AS step_mem_exposed_ns
    FROM comm_steps GROUP BY trace, device
)
SELECT n.trace, n.device, dg.gpu, t.last_ns - t.first_ns AS gpu_window_ns, t.busy_ns, t.compute_ns,
       n.comm_ops, l.comm_libraries, coalesce(t.comm_ns, 0) AS comm_ns,
       coalesce(t.comm_overlap_ns, 0) AS comm_overlap_ns,
       n.mem_ops, coalesce(t.mem_ns, 0) AS mem_ns, coalesce(t.mem_overlap_ns, 0) AS mem_overlap_ns,
       k.steps, st.step_comm_exposed_ns, st.step_mem_exposed_ns
FROM _op_counts n LEFT JOIN _segment_totals t USING (trace, device) JOIN _cm_nsteps k USING (trace)
LEFT JOIN _step_totals st USING (trace, device) LEFT JOIN _libraries l USING (trace, device)
LEFT JOIN gpu_activity_devices dg USING (trace, device);

-- @output comm
-- @column trace                    TEXT      the trace (input file name) the row is about
-- @column device                   ID        GPU device id as the trace gives it
-- @column gpu                      TEXT      the device as every line names it (lib/gpu_activity's
--                                            gpu_activity_devices: 'GPU 0', 'GPU ? (agent 9)')
-- @column gpu_window_ns            DURATION  first GPU op start to last GPU op end (HTA's kernel_time);
--                                            DENOMINATOR of *_exposed_share
-- @column busy_ns                  DURATION  union of all GPU ops on the device
-- @column compute_ns               DURATION  union of compute kernels on the device
-- @column comm_ops                 COUNT     communication kernels
-- @column comm_libraries           TEXT      the libraries of its communication kernels
--                                            (kernel_categories.csv `library`), by time
-- @column comm_ns                  DURATION  |M|: communication kernel time, overlaps between comm ops
--                                            counted once
-- @column comm_overlap_ns          DURATION  |M ∩ C|: the part of it hidden under compute on the same device
-- @column comm_exposed_ns          DURATION  |M| - |M ∩ C|: the part nothing computes under
-- @column comm_overlap_share       SHARE     comm_overlap_ns / comm_ns
-- @column comm_exposed_share       SHARE     comm_exposed_ns / gpu_window_ns (NULL, not 0, on a device
--                                            without communication)
-- @column mem_ops                  COUNT     memcpy / memset ops
-- @column mem_ns                   DURATION  |memcpy/memset union|
-- @column mem_overlap_ns           DURATION  its part under compute
-- @column mem_exposed_ns           DURATION  its part nothing computes under
-- @column mem_overlap_share        SHARE     mem_overlap_ns / mem_ns
-- @column mem_exposed_share        SHARE     mem_exposed_ns / gpu_window_ns
-- @column steps                    COUNT     step instances of the trace (step_instances)
-- @column comm_exposed_ns_per_step DURATION  exposed time inside step windows, summed over steps, / steps
--                                            (NULL when no step matched the step pattern: see note)
-- @column mem_exposed_ns_per_step  DURATION  exposed time inside step windows, summed over steps, / steps
--                                            (NULL when no step matched the step pattern: see note)
-- @column note                     NOTE      why a value is NULL
SELECT trace, device, gpu, gpu_window_ns, busy_ns::BIGINT AS busy_ns, compute_ns::BIGINT AS compute_ns,
       comm_ops, comm_libraries, comm_ns::BIGINT AS comm_ns, comm_overlap_ns::BIGINT AS comm_overlap_ns,
       (comm_ns - comm_overlap_ns)::BIGINT AS comm_exposed_ns,
       CASE WHEN comm_ops > 0 THEN comm_overlap_ns / nullif(comm_ns, 0) END AS comm_overlap_share,
       CASE WHEN comm_ops > 0 THEN (comm_ns - comm_overlap_ns) / nullif(gpu_window_ns, 0) END AS comm_exposed_share,
       mem_ops, mem_ns::BIGINT AS mem_ns, mem_overlap_ns::BIGINT AS mem_overlap_ns,
       (mem_ns - mem_overlap_ns)::BIGINT AS mem_exposed_ns,
       mem_overlap_ns / nullif(mem_ns, 0) AS mem_overlap_share,
       (mem_ns - mem_overlap_ns) / nullif(gpu_window_ns, 0) AS mem_exposed_share,
       steps,
       CASE WHEN steps > 0 THEN coalesce(step_comm_exposed_ns, 0) / steps END AS comm_exposed_ns_per_step,
       CASE WHEN steps > 0 THEN coalesce(step_mem_exposed_ns, 0) / steps END AS mem_exposed_ns_per_step,
       concat_ws('; ',
           CASE WHEN comm_ops = 0
                THEN comm_no_comm() || ' on this device: comm_overlap_share and comm_exposed_share are undefined' END,
           CASE WHEN steps = 0 THEN 'no range matched the step pattern ' || getvariable('step_pattern')
                || ': per-step values need --step-pattern or tracekit.phase("step")' END) AS note
FROM _cm_dev ORDER BY trace, device;

-- @output kernel_types
-- @column trace         TEXT      the trace (input file name) the row is about
-- @column device        ID        GPU device id as the trace gives it
-- @column kernel_type   TEXT      the set of op classes running together (e.g. compute+communication)
-- @column time_ns       DURATION  time during which exactly these classes run
-- @column share_of_busy SHARE     time_ns / busy_ns (the labels of a device add up to busy_ns)
WITH _state_times AS (SELECT trace, device, state, sum(len) AS time_ns FROM comm_segments WHERE state > 0 GROUP BY ALL)
SELECT s.trace, s.device,
       concat_ws(' overlapping ', CASE WHEN s.state & 1 > 0 THEN 'COMPUTATION' END,
                 CASE WHEN s.state & 2 > 0 THEN 'COMMUNICATION' END,
                 CASE WHEN s.state & 4 > 0 THEN 'MEMORY' END) AS kernel_type,
       s.time_ns::BIGINT AS time_ns, s.time_ns / d.busy_ns AS share_of_busy
FROM _state_times s JOIN _cm_dev d USING (trace, device)
ORDER BY s.trace, s.device, s.time_ns DESC, s.state;

-- @output by_step
-- @column trace              TEXT      the trace (input file name) the row is about
-- @column step_index         ID        the step's number in its trace (1.. in time order)
-- @column step_name          TEXT      the step range's name as captured
-- @column device             ID        GPU device id as the trace gives it
-- @column wall_ns            DURATION  the step range; DENOMINATOR of the shares
-- @column comm_ns            DURATION  communication kernel time inside the step's window
-- @column comm_overlap_ns    DURATION  its part under compute
-- @column comm_exposed_ns    DURATION  its part nothing computes under
-- @column comm_exposed_share SHARE     comm_exposed_ns / wall_ns
-- @column mem_ns             DURATION  memcpy/memset time inside the step's window
-- @column mem_overlap_ns     DURATION  its part under compute
-- @column mem_exposed_ns     DURATION  its part nothing computes under
-- @column mem_exposed_share  SHARE     mem_exposed_ns / wall_ns
SELECT s.trace, s.step_index, s.step_name, s.device, s.wall_ns,
       s.comm_ns::BIGINT AS comm_ns, s.comm_overlap_ns::BIGINT AS comm_overlap_ns,
       s.comm_exposed_ns::BIGINT AS comm_exposed_ns,
       CASE WHEN d.comm_ops > 0 THEN s.comm_exposed_ns / nullif(s.wall_ns, 0) END AS comm_exposed_share,
       s.mem_ns::BIGINT AS mem_ns, s.mem_overlap_ns::BIGINT AS mem_overlap_ns,
       s.mem_exposed_ns::BIGINT AS mem_exposed_ns,
       s.mem_exposed_ns / nullif(s.wall_ns, 0) AS mem_exposed_share
FROM comm_steps s JOIN _cm_dev d USING (trace, device) ORDER BY s.trace, s.step_index, s.device;

-- @output by_phase
-- @column trace                    TEXT      the trace (input file name) the row is about
-- @column device                   ID        GPU device id as the trace gives it
-- @column phase_path               TEXT      the '/'-joined names of the ranges around the row ('(none)'
--                                            outside every range)
-- @column comm_ops                 COUNT     communication kernels launched in the phase
-- @column comm_op_ns               DURATION  their summed durations
-- @column comm_overlap_ns          DURATION  their part under compute
-- @column comm_exposed_ns          DURATION  their part nothing computes under
-- @column comm_exposed_share       SHARE     comm_exposed_ns / gpu_window_ns
-- @column comm_exposed_ns_per_step DURATION  exposed time inside step windows, summed over steps, / steps
--                                            (NULL when no step matched the step pattern: see note)
-- @column mem_ops                  COUNT     memcpy/memset ops launched in the phase
-- @column mem_op_ns                DURATION  summed duration of memcpy / memset ops in the phase
-- @column mem_overlap_ns           DURATION  their part under compute
-- @column mem_exposed_ns           DURATION  their part nothing computes under
-- @column mem_exposed_ns_per_step  DURATION  exposed time inside step windows, summed over steps, / steps
--                                            (NULL when no step matched the step pattern: see note)
SELECT o.trace, o.device, o.phase_path,
       count(*) FILTER (WHERE op_class = 'communication') AS comm_ops,
       coalesce(sum(op_ns) FILTER (WHERE op_class = 'communication'), 0)::BIGINT AS comm_op_ns,
       coalesce(sum(overlap_ns) FILTER (WHERE op_class = 'communication'), 0)::BIGINT AS comm_overlap_ns,
       coalesce(sum(op_ns - overlap_ns) FILTER (WHERE op_class = 'communication'), 0)::BIGINT AS comm_exposed_ns,
       sum(op_ns - overlap_ns) FILTER (WHERE op_class = 'communication')
           / nullif(sum(op_ns) FILTER (WHERE op_class = 'communication'), 0) AS comm_exposed_share,
       CASE WHEN any_value(k.steps) > 0
            THEN coalesce(sum(op_ns - overlap_ns) FILTER (WHERE op_class = 'communication'), 0)
                 / any_value(k.steps) END AS comm_exposed_ns_per_step,
       count(*) FILTER (WHERE op_class = 'memory') AS mem_ops,
       coalesce(sum(op_ns) FILTER (WHERE op_class = 'memory'), 0)::BIGINT AS mem_op_ns,
       coalesce(sum(overlap_ns) FILTER (WHERE op_class = 'memory'), 0)::BIGINT AS mem_overlap_ns,
       coalesce(sum(op_ns - overlap_ns) FILTER (WHERE op_class = 'memory'), 0)::BIGINT AS mem_exposed_ns,
       CASE WHEN any_value(k.steps) > 0 THEN coalesce(sum(op_ns - overlap_ns) FILTER (WHERE op_class = 'memory'), 0)
            / any_value(k.steps) END AS mem_exposed_ns_per_step
FROM _cm_ops o JOIN _cm_nsteps k USING (trace)
GROUP BY o.trace, o.device, o.phase_path
ORDER BY o.trace, o.device, comm_exposed_ns DESC, mem_exposed_ns DESC,
         o.phase_path NULLS LAST;  -- the path breaks ties (many phases expose 0)
