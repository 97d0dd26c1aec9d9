-- kernels: which GPU ops take the GPU time?
--
-- Run it with `tracekit report` (or tracekit.report.run): that loads _common.sql first and sets every
-- getvariable() parameter to its documented default (tracekit/report.py: DEFAULTS).
--
-- Top GPU ops (kernels, memcpys, memsets) by total time, per trace. Rows are grouped by
-- (trace, kind, name); time is summed op duration (overlapping ops on different streams are
-- each counted in full, like nsys `cuda_gpu_kern_sum` and HTA's per-kernel table).
--
-- Inputs: _gpu (from _common.sql). Parameters: getvariable('top_n') (default 50): rows kept per
-- trace; the rest are folded into one row named '(other ops)' so the shares still add up to 1.
--
-- Output columns (one row per op name, ordered by total_ns descending):
--   trace           which capture
--   kind            kernel | memcpy | memset ('(mixed)' for the folded row)
--   name            op name (kernel name as the source wrote it)
--   op_class        compute | communication | memory (HTA's kernel types: NCCL names = communication)
--   count           number of executions
--   total_ns        summed duration of those executions
--   mean_ns         total_ns / count
--   p50_ns          median duration (an actual sample: quantile_disc)
--   max_ns          longest execution
--   gpu_op_ns_all   denominator: summed duration of ALL GPU ops of the trace
--   share           total_ns / gpu_op_ns_all
--   graph_count     executions replayed by a CUDA graph launch
--   phase_path      the phase_path holding most of this op's time ('(none)' outside every range); of
--                   phase_paths holding equal time, the first in text order (so the choice never
--                   depends on row order)
--   phases          how many distinct phase_paths launched this op
--
-- How to read: share is a fraction of summed GPU op time, not of wall time; use gpu_idle for
-- wall-clock busy/idle shares.

-- @output kernels
WITH _by_phase AS (
    SELECT trace, kind, name, phase_path, sum(dur_ns) AS ns
    FROM _gpu GROUP BY ALL
), _top_phase AS (
    SELECT trace, kind, name, first(phase_path ORDER BY ns DESC, phase_path) AS phase_path, count(*) AS phases
    FROM _by_phase GROUP BY ALL
), _agg AS (
    SELECT trace, kind, name, any_value(op_class) AS op_class, count(*) AS count, sum(dur_ns) AS total_ns,
           quantile_disc(dur_ns, 0.5) AS p50_ns, max(dur_ns) AS max_ns,
           count(*) FILTER (WHERE graph) AS graph_count
    FROM _gpu GROUP BY ALL
), _ranked AS (
    SELECT a.*, t.phase_path, t.phases,
           sum(a.total_ns) OVER (PARTITION BY a.trace) AS gpu_op_ns_all,
           row_number() OVER (PARTITION BY a.trace ORDER BY a.total_ns DESC, a.name, a.kind) AS rk
    FROM _agg a JOIN _top_phase t USING (trace, kind, name)
)
SELECT trace, kind, name, op_class, count, total_ns::BIGINT AS total_ns,
       total_ns / count AS mean_ns, p50_ns, max_ns, gpu_op_ns_all::BIGINT AS gpu_op_ns_all,
       total_ns / gpu_op_ns_all AS share, graph_count, phase_path, phases
FROM _ranked WHERE rk <= getvariable('top_n')
UNION ALL
SELECT trace, '(mixed)', '(other ops)', '(mixed)', sum(count)::BIGINT, sum(total_ns)::BIGINT,
       sum(total_ns) / sum(count), NULL, max(max_ns), any_value(gpu_op_ns_all)::BIGINT,
       sum(total_ns) / any_value(gpu_op_ns_all), sum(graph_count)::BIGINT, NULL, NULL
FROM _ranked WHERE rk > getvariable('top_n')
GROUP BY trace
ORDER BY trace, total_ns DESC, kind, name;
