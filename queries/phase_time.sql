-- phase_time: where does the time of each phase go, on the CPU and on the GPU?
-- @requires lib/api lib/gpu_activity lib/modules lib/runtime lib/intervals
--
-- Run it with `tracekit report` (or tracekit.report.run): that loads the modules on its @requires line first and sets
-- every getvariable() parameter to its default (its @param line; docs/queries.md).
--
-- One row per (trace, phase_path). A phase_path is the chain of enclosing CPU ranges
-- (record_function / user_annotation / NVTX), outermost first, joined by '/'. GPU ops are
-- attributed to the phase_path of the runtime call that launched them (kernels replayed by one
-- cudaGraphLaunch all take that launch's phase). '(none)' collects work outside every range.
-- Phases are EFFECTIVE phases (lib/modules.sql): where no user range below the step covers a launch, the module
-- hierarchy around it is appended to the path (`ProfilerStep#6/Qwen2Model/Qwen2DecoderLayer/Qwen2MLP`, class
-- names without instance index; else `forward` frames), and module intervals count as ranges of their path.
--
-- Inputs: views ranges; gpu_activity, runtime_calls (queries/lib/); modules_gpu_phase, modules_cpu_phase, modules_cpu
--   (lib/modules.sql).
-- No parameters.
--
-- Output columns:
--   trace              which capture
--   phase_path         the phase (exclusive: ops launched directly in it, not in child ranges)
--   depth              number of ranges in the path
--   range_instances    range rows (or module intervals) with exactly this path (NULL for '(none)')
--   cpu_ns             summed duration of those range instances (inclusive of child ranges; a module
--                      path's intervals less the user ranges directly inside them: lib/modules.sql modules_cpu)
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
--   phase_source       'range' | 'module' | 'frame' (comma-separated when the path came from several;
--                      NULL for '(none)')
--
-- How to read: rows are exclusive, so share adds up to 1 over a trace; share_incl answers
-- "how much GPU time does this phase and everything under it cost".

-- @output phase_time
-- @column trace           TEXT      the trace (input file name) the row is about
-- @column phase_path      TEXT      the phase (exclusive: ops launched directly in it, not in child ranges)
-- @column depth           ID        number of ranges in the path
-- @column range_instances COUNT     range rows (or module intervals) with exactly this path (NULL for
--                                   '(none)')
-- @column cpu_ns          DURATION  summed duration of those range instances (inclusive of child ranges; a
--                                   module path's intervals less the user ranges directly inside them:
--                                   lib/modules.sql modules_cpu)
-- @column gpu_op_ns       DURATION  summed duration of the GPU ops launched in this phase (exclusive)
-- @column gpu_op_ns_incl  DURATION  same, including every descendant phase_path
-- @column gpu_busy_ns     DURATION  length of the union of those GPU op intervals, per device, summed over
--                                   devices: overlapping ops of the phase counted once (exclusive)
-- @column launches        COUNT     runtime calls in this phase that launched >= 1 GPU op
-- @column graph_launches  COUNT     of which *GraphLaunch calls
-- @column gpu_ops         COUNT     GPU ops launched in this phase (kernels + memcpy + memset)
-- @column kernels         COUNT     of which kind = kernel
-- @column gpu_op_ns_all   DURATION  denominator: summed duration of all GPU ops of the trace
-- @column share           SHARE     gpu_op_ns / gpu_op_ns_all
-- @column share_incl      SHARE     gpu_op_ns_incl / gpu_op_ns_all
-- @column phase_source    TEXT      'range' | 'module' | 'frame' (comma-separated when the path came from
--                                   several; NULL for '(none)')
WITH _eff_ops AS (  -- GPU ops by their effective phase
    SELECT g.trace, g.device, g.kind, g.ts_ns, g.end_ns, g.dur_ns, p.eff_phase_path AS phase_path, p.phase_source
    FROM gpu_activity g JOIN modules_gpu_phase p USING (gid)
), _phase_ops AS (
    SELECT trace, device, phase_path, ts_ns, end_ns, (trace, device, phase_path) AS grp, 0 AS tie FROM _eff_ops
), _busy AS (  -- the union of the phase's op intervals per device (lib/intervals), summed over devices
    SELECT trace, phase_path, sum(e - s) AS gpu_busy_ns FROM (
        SELECT trace, device, phase_path, island, min(ts_ns) AS s, max(end_ns) AS e
        FROM intervals_union(_phase_ops) GROUP BY ALL
    ) GROUP BY ALL
), _ops AS (
    SELECT trace, phase_path, sum(dur_ns) AS gpu_op_ns, count(*) AS gpu_ops,
           count(*) FILTER (WHERE kind = 'kernel') AS kernels, string_agg(DISTINCT phase_source, ',') AS src
    FROM _eff_ops GROUP BY ALL
), _launch AS (
    SELECT r.trace, modules_eff_path(m.eff_phase_path, r.phase_path) AS phase_path, count(*) AS launches,
           count(*) FILTER (WHERE api_is_graph_launch(r.name)) AS graph_launches,
           string_agg(DISTINCT modules_eff_src(m.phase_source, r.phase_path), ',') AS src
    FROM runtime_calls r LEFT JOIN modules_cpu_phase m USING (trace, row_id) WHERE r.launched GROUP BY ALL
), _range_time AS (
    SELECT trace, phase_path, sum(n) AS range_instances, sum(ns) AS cpu_ns, string_agg(DISTINCT src, ',') AS src FROM (
        SELECT trace, phase_path, 1 AS n, greatest(dur_ns, 0) AS ns, 'range' AS src FROM ranges
        WHERE phase_path IS NOT NULL
        UNION ALL
        SELECT trace, phase_path, CASE WHEN sign > 0 THEN 1 ELSE 0 END, sign * dur_ns, phase_source FROM modules_cpu)
    GROUP BY ALL
), _paths AS (
    SELECT trace, phase_path FROM _range_time UNION SELECT trace, phase_path FROM _ops
    UNION SELECT trace, phase_path FROM _launch
), _trace_total AS (
    SELECT trace, sum(dur_ns) AS gpu_op_ns_all FROM _eff_ops GROUP BY ALL
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
       coalesce(i.gpu_op_ns_incl, 0) / a.gpu_op_ns_all AS share_incl,
       CASE WHEN p.phase_path <> '(none)' THEN modules_src_union(modules_src_union(r.src, o.src), l.src) END
           AS phase_source
FROM _paths p
LEFT JOIN _range_time r USING (trace, phase_path)
LEFT JOIN _ops o USING (trace, phase_path)
LEFT JOIN _busy b USING (trace, phase_path)
LEFT JOIN _launch l USING (trace, phase_path)
LEFT JOIN _incl i USING (trace, phase_path)
LEFT JOIN _trace_total a USING (trace)
ORDER BY p.trace, gpu_op_ns_incl DESC, p.phase_path;
