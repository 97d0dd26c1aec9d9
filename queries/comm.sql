-- comm: exposed communication and memory-copy time per device, per step, per phase.
--
-- Run it with `tracekit report` (or tracekit.report.run): that loads _common.sql first.
--
-- Classes of GPU ops (_common.sql op_class, the same name families as HTA's kernel types):
-- compute (kernels that are not NCCL/RCCL/HCCL), communication (NCCL/RCCL/HCCL kernels) and memory
-- (memcpy and memset). Per (trace, device) each class's ops are merged into a union of intervals
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
-- How: the class unions' boundaries are swept per device into segments with a state bitmask
-- (1 compute, 2 comm, 4 memory) and running totals of each measure; the measure of any window
-- [a, b) is then G(b) - G(a), found with two ASOF joins (steps, and each op for the per-phase view).
--
-- Inputs: _gpu, _steps (from _common.sql).
--
-- Output `comm` (one row per trace, device that ran GPU ops; the run total):
--   gpu_window_ns   first GPU op start to last GPU op end (HTA's kernel_time); DENOMINATOR of *_exposed_share
--   busy_ns         union of all GPU ops;  compute_ns: union of compute kernels
--   comm_ops        communication kernels;  comm_ns, comm_overlap_ns, comm_exposed_ns as above
--   comm_overlap_share   comm_overlap_ns / comm_ns (NULL without communication kernels, as HTA's NaN)
--   comm_exposed_share   comm_exposed_ns / gpu_window_ns
--   mem_ops, mem_ns, mem_overlap_ns, mem_exposed_ns, mem_overlap_share, mem_exposed_share   the same for memcpy/memset
--   steps           step instances of the trace (_steps)
--   comm_exposed_ns_per_step, mem_exposed_ns_per_step   exposed time inside step windows, summed over
--                   steps, / steps (NULL when no step matched the step pattern: see note)
--   note            why a value is NULL
-- Output `kernel_types` (trace, device, kernel_type): time_ns during which exactly these classes run
--   (labels as HTA's: COMPUTATION, COMMUNICATION, MEMORY, 'COMPUTATION overlapping COMMUNICATION', ...),
--   share_of_busy = time_ns / busy_ns (the labels of a device add up to busy_ns).
-- Output `by_step` (trace, step_index, step_name, device): wall_ns (the step range; DENOMINATOR of the
--   shares), comm_ns, comm_overlap_ns, comm_exposed_ns, comm_exposed_share, mem_ns, mem_overlap_ns,
--   mem_exposed_ns, mem_exposed_share: the same definitions restricted to the step's time window.
-- Output `by_phase` (trace, device, phase_path of the launching call; rows with comm or memory ops):
--   comm_ops, comm_op_ns (summed op durations), comm_overlap_ns (each op's time under compute,
--   summed), comm_exposed_ns = comm_op_ns - comm_overlap_ns, comm_exposed_share = comm_exposed_ns /
--   comm_op_ns, comm_exposed_ns_per_step (/ the trace's steps; NULL without steps), and mem_* alike.
--   Per-op sums: where two communication ops overlap each other they count twice here and once in `comm`.
--
-- How to read: comm_exposed_ns is time the GPU spends only communicating (or idle-waiting inside an
-- NCCL kernel for a late peer: ranks.sql says who); overlap is communication that compute hides.

CREATE OR REPLACE TEMP TABLE _cm_iv AS
WITH _o AS (
    SELECT trace, device, CASE op_class WHEN 'compute' THEN 1 WHEN 'communication' THEN 2 ELSE 4 END AS bit,
           ts_ns, end_ns
    FROM _gpu WHERE end_ns > ts_ns  -- zero-length ops add no time
), _p AS (
    SELECT *, max(end_ns) OVER (PARTITION BY trace, device, bit ORDER BY ts_ns, end_ns
                                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS _pe
    FROM _o
), _g AS (
    SELECT *, sum(CASE WHEN _pe IS NULL OR ts_ns > _pe THEN 1 ELSE 0 END)
                OVER (PARTITION BY trace, device, bit ORDER BY ts_ns, end_ns ROWS UNBOUNDED PRECEDING) AS _grp
    FROM _p
)
SELECT trace, device, bit, min(ts_ns) AS s, max(end_ns) AS e FROM _g GROUP BY trace, device, bit, _grp;

-- Segments [s, e) between consecutive boundaries with the classes running there (state) and the
-- running totals of every measure before s (c_* columns).
CREATE OR REPLACE TEMP TABLE _cm_seg AS
WITH _b AS (
    SELECT trace, device, t, sum(d) AS d
    FROM (SELECT trace, device, s AS t, bit AS d FROM _cm_iv UNION ALL SELECT trace, device, e, -bit FROM _cm_iv)
    GROUP BY ALL
), _st AS (
    SELECT trace, device, t AS s, lead(t) OVER w AS e, (sum(d) OVER (w ROWS UNBOUNDED PRECEDING))::INTEGER AS state
    FROM _b WINDOW w AS (PARTITION BY trace, device ORDER BY t)
), _m AS (
    SELECT trace, device, s, e, state, e - s AS len,
           (state & 1 > 0)::INTEGER AS f_comp, (state & 2 > 0)::INTEGER AS f_comm,
           (state & 3 = 3)::INTEGER AS f_comm_ov, (state & 4 > 0)::INTEGER AS f_mem,
           (state & 5 = 5)::INTEGER AS f_mem_ov, (state > 0)::INTEGER AS f_busy
    FROM _st WHERE e IS NOT NULL
)
SELECT *,
       coalesce(sum(len * f_comp) OVER w, 0) AS c_comp, coalesce(sum(len * f_comm) OVER w, 0) AS c_comm,
       coalesce(sum(len * f_comm_ov) OVER w, 0) AS c_comm_ov, coalesce(sum(len * f_mem) OVER w, 0) AS c_mem,
       coalesce(sum(len * f_mem_ov) OVER w, 0) AS c_mem_ov, coalesce(sum(len * f_busy) OVER w, 0) AS c_busy
FROM _m
WINDOW w AS (PARTITION BY trace, device ORDER BY s ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING);

-- Per step and device: every measure inside [step start, step end) = G(end) - G(start).
CREATE OR REPLACE TEMP TABLE _cm_step AS
WITH _sd AS (
    SELECT s.trace, s.step_index, s.name AS step_name, s.ts_ns AS a, s.end_ns AS b, d.device
    FROM _steps s JOIN (SELECT DISTINCT trace, device FROM _cm_seg) d USING (trace)
), _ga AS (
    SELECT x.*, g.s AS gs, g.e AS ge, g.f_comm, g.f_comm_ov, g.f_mem, g.f_mem_ov, g.c_comm, g.c_comm_ov, g.c_mem, g.c_mem_ov
    FROM _sd x ASOF LEFT JOIN _cm_seg g ON x.trace = g.trace AND x.device = g.device AND x.a >= g.s
), _gb AS (
    SELECT x.*, g.s AS hs, g.e AS he, g.f_comm AS hf_comm, g.f_comm_ov AS hf_comm_ov, g.f_mem AS hf_mem,
           g.f_mem_ov AS hf_mem_ov, g.c_comm AS hc_comm, g.c_comm_ov AS hc_comm_ov, g.c_mem AS hc_mem, g.c_mem_ov AS hc_mem_ov
    FROM _ga x ASOF LEFT JOIN _cm_seg g ON x.trace = g.trace AND x.device = g.device AND x.b >= g.s
), _v AS (  -- G(t) = running total before the segment holding t + the part of that segment before t
    SELECT trace, step_index, step_name, device, b - a AS wall_ns,
           coalesce(hc_comm + hf_comm * (least(b, he) - hs), 0) - coalesce(c_comm + f_comm * (least(a, ge) - gs), 0) AS comm_ns,
           coalesce(hc_comm_ov + hf_comm_ov * (least(b, he) - hs), 0) - coalesce(c_comm_ov + f_comm_ov * (least(a, ge) - gs), 0) AS comm_overlap_ns,
           coalesce(hc_mem + hf_mem * (least(b, he) - hs), 0) - coalesce(c_mem + f_mem * (least(a, ge) - gs), 0) AS mem_ns,
           coalesce(hc_mem_ov + hf_mem_ov * (least(b, he) - hs), 0) - coalesce(c_mem_ov + f_mem_ov * (least(a, ge) - gs), 0) AS mem_overlap_ns
    FROM _gb
)
SELECT *, comm_ns - comm_overlap_ns AS comm_exposed_ns, mem_ns - mem_overlap_ns AS mem_exposed_ns FROM _v;

-- Per communication / memory op: its time under compute = Gcomp(end) - Gcomp(start).
CREATE OR REPLACE TEMP TABLE _cm_ops AS
WITH _o AS (
    SELECT gid, trace, device, op_class, phase_path, ts_ns, end_ns FROM _gpu WHERE op_class <> 'compute'
), _ga AS (
    SELECT o.*, g.s AS gs, g.e AS ge, g.f_comp, g.c_comp
    FROM _o o ASOF LEFT JOIN _cm_seg g ON o.trace = g.trace AND o.device = g.device AND o.ts_ns >= g.s
), _gb AS (
    SELECT o.*, g.s AS hs, g.e AS he, g.f_comp AS hf_comp, g.c_comp AS hc_comp
    FROM _ga o ASOF LEFT JOIN _cm_seg g ON o.trace = g.trace AND o.device = g.device AND o.end_ns >= g.s
)
SELECT gid, trace, device, op_class, phase_path, end_ns - ts_ns AS op_ns,
       coalesce(hc_comp + hf_comp * (least(end_ns, he) - hs), 0) - coalesce(c_comp + f_comp * (least(ts_ns, ge) - gs), 0) AS overlap_ns
FROM _gb;

CREATE OR REPLACE TEMP TABLE _cm_nsteps AS
SELECT w.trace, count(s.step_index) AS steps
FROM (SELECT DISTINCT trace FROM _gpu) w LEFT JOIN _steps s USING (trace) GROUP BY w.trace;

CREATE OR REPLACE TEMP TABLE _cm_dev AS
WITH _t AS (
    SELECT trace, device, min(s) AS first_ns, max(e) AS last_ns, sum(len * f_busy) AS busy_ns,
           sum(len * f_comp) AS compute_ns, sum(len * f_comm) AS comm_ns, sum(len * f_comm_ov) AS comm_overlap_ns,
           sum(len * f_mem) AS mem_ns, sum(len * f_mem_ov) AS mem_overlap_ns
    FROM _cm_seg GROUP BY trace, device
), _n AS (
    SELECT trace, device, count(*) FILTER (WHERE op_class = 'communication') AS comm_ops,
           count(*) FILTER (WHERE op_class = 'memory') AS mem_ops
    FROM _gpu GROUP BY trace, device
), _st AS (
    SELECT trace, device, sum(comm_exposed_ns) AS step_comm_exposed_ns, sum(mem_exposed_ns) AS step_mem_exposed_ns
    FROM _cm_step GROUP BY trace, device
)
SELECT n.trace, n.device, t.last_ns - t.first_ns AS gpu_window_ns, t.busy_ns, t.compute_ns,
       n.comm_ops, coalesce(t.comm_ns, 0) AS comm_ns, coalesce(t.comm_overlap_ns, 0) AS comm_overlap_ns,
       n.mem_ops, coalesce(t.mem_ns, 0) AS mem_ns, coalesce(t.mem_overlap_ns, 0) AS mem_overlap_ns,
       k.steps, st.step_comm_exposed_ns, st.step_mem_exposed_ns
FROM _n n LEFT JOIN _t t USING (trace, device) JOIN _cm_nsteps k USING (trace)
LEFT JOIN _st st USING (trace, device);

-- @output comm
SELECT trace, device, gpu_window_ns, busy_ns::BIGINT AS busy_ns, compute_ns::BIGINT AS compute_ns,
       comm_ops, comm_ns::BIGINT AS comm_ns, comm_overlap_ns::BIGINT AS comm_overlap_ns,
       (comm_ns - comm_overlap_ns)::BIGINT AS comm_exposed_ns,
       comm_overlap_ns / nullif(comm_ns, 0) AS comm_overlap_share,
       (comm_ns - comm_overlap_ns) / nullif(gpu_window_ns, 0) AS comm_exposed_share,
       mem_ops, mem_ns::BIGINT AS mem_ns, mem_overlap_ns::BIGINT AS mem_overlap_ns,
       (mem_ns - mem_overlap_ns)::BIGINT AS mem_exposed_ns,
       mem_overlap_ns / nullif(mem_ns, 0) AS mem_overlap_share,
       (mem_ns - mem_overlap_ns) / nullif(gpu_window_ns, 0) AS mem_exposed_share,
       steps,
       CASE WHEN steps > 0 THEN coalesce(step_comm_exposed_ns, 0) / steps END AS comm_exposed_ns_per_step,
       CASE WHEN steps > 0 THEN coalesce(step_mem_exposed_ns, 0) / steps END AS mem_exposed_ns_per_step,
       concat_ws('; ',
           CASE WHEN comm_ops = 0 THEN 'no NCCL/RCCL/HCCL kernel on this device: overlap share is undefined' END,
           CASE WHEN steps = 0 THEN 'no range matched the step pattern ' || getvariable('step_pattern')
                || ': per-step values need --step-pattern or tracekit.phase("step")' END) AS note
FROM _cm_dev ORDER BY trace, device;

-- @output kernel_types
WITH _s AS (SELECT trace, device, state, sum(len) AS time_ns FROM _cm_seg WHERE state > 0 GROUP BY ALL)
SELECT s.trace, s.device,
       concat_ws(' overlapping ', CASE WHEN s.state & 1 > 0 THEN 'COMPUTATION' END,
                 CASE WHEN s.state & 2 > 0 THEN 'COMMUNICATION' END, CASE WHEN s.state & 4 > 0 THEN 'MEMORY' END) AS kernel_type,
       s.time_ns::BIGINT AS time_ns, s.time_ns / d.busy_ns AS share_of_busy
FROM _s s JOIN _cm_dev d USING (trace, device)
ORDER BY s.trace, s.device, s.time_ns DESC;

-- @output by_step
SELECT trace, step_index, step_name, device, wall_ns,
       comm_ns::BIGINT AS comm_ns, comm_overlap_ns::BIGINT AS comm_overlap_ns, comm_exposed_ns::BIGINT AS comm_exposed_ns,
       comm_exposed_ns / nullif(wall_ns, 0) AS comm_exposed_share,
       mem_ns::BIGINT AS mem_ns, mem_overlap_ns::BIGINT AS mem_overlap_ns, mem_exposed_ns::BIGINT AS mem_exposed_ns,
       mem_exposed_ns / nullif(wall_ns, 0) AS mem_exposed_share
FROM _cm_step ORDER BY trace, step_index, device;

-- @output by_phase
SELECT o.trace, o.device, o.phase_path,
       count(*) FILTER (WHERE op_class = 'communication') AS comm_ops,
       coalesce(sum(op_ns) FILTER (WHERE op_class = 'communication'), 0)::BIGINT AS comm_op_ns,
       coalesce(sum(overlap_ns) FILTER (WHERE op_class = 'communication'), 0)::BIGINT AS comm_overlap_ns,
       coalesce(sum(op_ns - overlap_ns) FILTER (WHERE op_class = 'communication'), 0)::BIGINT AS comm_exposed_ns,
       sum(op_ns - overlap_ns) FILTER (WHERE op_class = 'communication')
           / nullif(sum(op_ns) FILTER (WHERE op_class = 'communication'), 0) AS comm_exposed_share,
       CASE WHEN any_value(k.steps) > 0 THEN coalesce(sum(op_ns - overlap_ns) FILTER (WHERE op_class = 'communication'), 0)
            / any_value(k.steps) END AS comm_exposed_ns_per_step,
       count(*) FILTER (WHERE op_class = 'memory') AS mem_ops,
       coalesce(sum(op_ns) FILTER (WHERE op_class = 'memory'), 0)::BIGINT AS mem_op_ns,
       coalesce(sum(overlap_ns) FILTER (WHERE op_class = 'memory'), 0)::BIGINT AS mem_overlap_ns,
       coalesce(sum(op_ns - overlap_ns) FILTER (WHERE op_class = 'memory'), 0)::BIGINT AS mem_exposed_ns,
       CASE WHEN any_value(k.steps) > 0 THEN coalesce(sum(op_ns - overlap_ns) FILTER (WHERE op_class = 'memory'), 0)
            / any_value(k.steps) END AS mem_exposed_ns_per_step
FROM _cm_ops o JOIN _cm_nsteps k USING (trace)
GROUP BY o.trace, o.device, o.phase_path
ORDER BY o.trace, o.device, comm_exposed_ns DESC, mem_exposed_ns DESC;
