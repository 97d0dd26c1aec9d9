-- phase_time: where does the time of each phase go, on the CPU and on the GPU?
--
-- Run it with `tracekit report` (or tracekit.report.run): that loads _common.sql first and sets every
-- getvariable() parameter to its documented default (tracekit/report.py: DEFAULTS).
--
-- One row per (trace, phase_path). A phase_path is the chain of enclosing CPU ranges
-- (record_function / user_annotation / NVTX), outermost first, joined by '/'. GPU ops are
-- attributed to the phase_path of the runtime call that launched them (kernels replayed by one
-- cudaGraphLaunch all take that launch's phase). '(none)' collects work outside every range.
--
-- Inputs: views ranges; _gpu, _rt (from _common.sql). No parameters.
--
-- Output columns:
--   trace              which capture
--   phase_path         the phase (exclusive: ops launched directly in it, not in child ranges)
--   depth              number of ranges in the path
--   range_instances    range rows with exactly this path (NULL for '(none)')
--   cpu_ns             summed duration of those range instances (inclusive of child ranges)
--   gpu_op_ns          summed duration of the GPU ops launched in this phase (exclusive)
--   gpu_op_ns_incl     same, including every descendant phase_path
--   gpu_busy_ns        length of the union of those GPU op intervals, per device, summed over
--                      devices: overlapping ops of the phase counted once (exclusive)
--   launches           runtime calls in this phase that launched >= 1 GPU op
--   graph_launches     of which *GraphLaunch calls
--   gpu_ops            GPU ops launched in this phase (kernels + memcpy + memset)
--   kernels            of which kind = kernel
--   gpu_op_ns_all      denominator: summed duration of all GPU ops of the trace
--   share              gpu_op_ns / gpu_op_ns_all
--   share_incl         gpu_op_ns_incl / gpu_op_ns_all
--
-- How to read: rows are exclusive, so share adds up to 1 over a trace; share_incl answers
-- "how much GPU time does this phase and everything under it cost".

-- @output phase_time
WITH _o AS (
    SELECT trace, device, phase_path, ts_ns, end_ns,
           max(end_ns) OVER (PARTITION BY trace, device, phase_path ORDER BY ts_ns, end_ns
                             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS _prev_end
    FROM _gpu
), _isl AS (
    SELECT *, sum(CASE WHEN _prev_end IS NULL OR ts_ns > _prev_end THEN 1 ELSE 0 END)
              OVER (PARTITION BY trace, device, phase_path ORDER BY ts_ns, end_ns ROWS UNBOUNDED PRECEDING) AS _island
    FROM _o
), _busy AS (
    SELECT trace, phase_path, sum(e - s) AS gpu_busy_ns FROM (
        SELECT trace, device, phase_path, _island, min(ts_ns) AS s, max(end_ns) AS e FROM _isl GROUP BY ALL
    ) GROUP BY ALL
), _ops AS (
    SELECT trace, phase_path, sum(dur_ns) AS gpu_op_ns, count(*) AS gpu_ops,
           count(*) FILTER (WHERE kind = 'kernel') AS kernels
    FROM _gpu GROUP BY ALL
), _launch AS (
    SELECT trace, phase_path, count(*) AS launches, count(*) FILTER (WHERE _is_graph_launch(name)) AS graph_launches
    FROM _rt WHERE launched GROUP BY ALL
), _rng AS (
    SELECT trace, phase_path, count(*) AS range_instances, sum(greatest(dur_ns, 0)) AS cpu_ns
    FROM ranges WHERE phase_path IS NOT NULL GROUP BY ALL
), _paths AS (
    SELECT trace, phase_path FROM _rng UNION SELECT trace, phase_path FROM _ops
    UNION SELECT trace, phase_path FROM _launch
), _all AS (
    SELECT trace, sum(dur_ns) AS gpu_op_ns_all FROM _gpu GROUP BY ALL
), _incl AS (  -- each path's op time added to every ancestor prefix: linear in total path depth
    SELECT trace, array_to_string(segs[1:i], '/') AS phase_path, sum(gpu_op_ns) AS gpu_op_ns_incl
    FROM (SELECT trace, gpu_op_ns, segs, unnest(range(1, len(segs) + 1)) AS i
          FROM (SELECT trace, gpu_op_ns, string_split(phase_path, '/') AS segs FROM _ops WHERE phase_path <> '(none)'))
    GROUP BY ALL
    UNION ALL
    SELECT trace, phase_path, gpu_op_ns FROM _ops WHERE phase_path = '(none)'
)
SELECT p.trace, p.phase_path,
       CASE WHEN p.phase_path = '(none)' THEN 0 ELSE len(string_split(p.phase_path, '/')) END AS depth,
       r.range_instances, r.cpu_ns::BIGINT AS cpu_ns,
       coalesce(o.gpu_op_ns, 0)::BIGINT AS gpu_op_ns, coalesce(i.gpu_op_ns_incl, 0)::BIGINT AS gpu_op_ns_incl,
       coalesce(b.gpu_busy_ns, 0)::BIGINT AS gpu_busy_ns,
       coalesce(l.launches, 0) AS launches, coalesce(l.graph_launches, 0) AS graph_launches,
       coalesce(o.gpu_ops, 0) AS gpu_ops, coalesce(o.kernels, 0) AS kernels,
       a.gpu_op_ns_all::BIGINT AS gpu_op_ns_all,
       coalesce(o.gpu_op_ns, 0) / a.gpu_op_ns_all AS share,
       coalesce(i.gpu_op_ns_incl, 0) / a.gpu_op_ns_all AS share_incl
FROM _paths p
LEFT JOIN _rng r USING (trace, phase_path)
LEFT JOIN _ops o USING (trace, phase_path)
LEFT JOIN _busy b USING (trace, phase_path)
LEFT JOIN _launch l USING (trace, phase_path)
LEFT JOIN _incl i USING (trace, phase_path)
LEFT JOIN _all a USING (trace)
ORDER BY p.trace, gpu_op_ns_incl DESC, p.phase_path;
