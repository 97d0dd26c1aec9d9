-- headline: per trace and step kind, the per-step breakdown, the phase tree and verdicts, first.
-- @requires steps gpu_idle
--
-- Run it with `tracekit report` (or `tracekit sql TRACE --query headline`): that loads _common.sql,
-- the set-up of the files named on the `@requires` line (steps.sql: _step_rows, _gpu_step,
-- _range_step; gpu_idle.sql: _idle_all) and sets every getvariable() to its default.
--
-- A step is a step instance of steps.sql (innermost range matching step_pattern); a step kind
-- keeps batch sizes apart (step[DECODE bs=8] and step[DECODE bs=16] are two kinds). Every
-- per-step number below is taken per step instance, then summarised over the steps of its kind
-- (mean, p50, p99: quantile_cont). Three spans per step (an asynchronous step's GPU work may
-- run long after its CPU range closed):
--   CPU span          the step range's duration (steps.wall_ns)
--   GPU span          first start to last end of the GPU ops launched in the step (steps.gpu_span_ns)
--   end-to-end span   step start to max(step end, last end of its GPU ops) (steps.end_to_end_ns)
--
-- Output `headline` (long form: one row per trace, step kind and metric):
--   trace, step_kind, steps (step instances of the kind), row_order (int, display order),
--   metric, unit ('ns' | 'count' | 'share'), mean, p50, p99 (DOUBLE), note (why NULL, else NULL)
--   metrics, in row_order:
--     'CPU span', 'GPU span', 'end-to-end span'             (ns; see above)
--     'launches'                 runtime calls that launched GPU ops, graph launches excluded
--     'graph launches'           *GraphLaunch calls;  'graph nodes': GPU ops they replayed (NULL without runtime rows)
--     'host time in graph launch'   summed host duration of the graph launch calls (ns)
--     'GPU busy (union)'         union of the step's GPU op intervals per device, summed (ns)
--     'GPU busy share'           GPU busy (union) / GPU span summed per device (share, <= 1)
--     'kernel time (sum)'        summed duration of the step's GPU ops (kernels, memcpy, memset)
--     'GPU idle in span'         device idle time (no GPU op at all) inside the step's GPU span
--                                on each device, summed over devices (ns)
--     'idle: <cause>'            that idle time split by gpu_idle.sql's causes (launch_bound,
--                                sync_blocked, host_busy, other, ...); the causes add up to
--                                'GPU idle in span'. GPU span - GPU busy - GPU idle in span is time
--                                the device ran other steps' ops (0 unless steps overlap on the GPU)
--     'sync calls', 'sync stall' blocking sync calls in the step and their host time (ns)
--   NULL with a note where the trace lacks what the metric needs (no runtime rows, no sync
--   captured, no GPU op in the step), never 0.
-- Output `phase_tree`: trace, step_kind, row_order, depth (0 = top level inside the step),
--   phase (leaf name; '(other)' = step time in no phase), phase_path (relative to the step),
--   excl_cpu_ns_mean, excl_cpu_ns_p50, excl_cpu_ns_p99, incl_cpu_ns_mean,
--   excl_gpu_ns_mean, incl_gpu_ns_mean, excl_cpu_share, excl_gpu_share.
--   CPU: range time on the step's thread, clipped to the step range; inclusive = the phase's
--   ranges, exclusive = inclusive minus its child phases' inclusive. '(other)' = CPU span minus
--   the top-level phases. GPU: duration of GPU ops by the innermost phase of their launch
--   ('(other)': launched directly in the step or outside its phases); inclusive adds descendants.
--   Per step values (0 where a step lacks the phase), then mean/p50/p99 over the steps of the kind.
--   excl_cpu_share = sum excl_cpu_ns / sum CPU span (over the kind's steps);
--   excl_gpu_share = sum excl_gpu_ns / sum kernel time (sum) (NULL when the kind ran no GPU op).
--   Each share column sums to 1 over the rows of a (trace, step_kind). Rows are sorted so a
--   depth-first walk prints the tree (siblings by inclusive CPU time, '(other)' last).
-- Output `verdicts`: trace, step_kind, rank (1..6), verdict (one sentence, its numbers formatted
--   in ms/us/%), numerator_ns, denominator_ns, numerator (label), denominator (label). Candidates in
--   this order, the first six that apply ranked 1..6 (sums over the kind's steps; NULL numbers and a
--   sentence naming the capture flag when the data is missing, never a confident zero):
--     GPU idle in span / GPU span, split by cause, and the host phase of the most host-caused idle
--     asynchronous step: end-to-end span / CPU span (only when above 1.05)
--     largest exclusive CPU phase ('(other)' excluded) / CPU span
--     host time in blocking syncs / CPU span, and the phase with most of it
--     launches per step, mean launch call; launch host time (graph launches included) / CPU span
--     GPU time replayed by CUDA graphs / kernel time (only when graphs replayed)
--     largest GPU phase ('(other)' excluded) / kernel time
-- Output `notes`: trace, severity ('warn' | 'info'), source ('converter' | analysis name), message:
--   the converter's notes (truncation, salvaged events, replaced bytes: view trace_notes; 'warn') and
--   'no step matched the step pattern ...; candidates: <top-level range names by frequency>' (source
--   'steps', 'warn'; top level = a range with no enclosing range, digits folded to N, 8 at most).
--   tracekit.report.warnings_of puts the 'warn' rows first among the report's warnings.
-- Output `idle`: trace, step_kind, step_index, cause, idle_ns: each step's GPU idle time inside its
--   GPU span (the 'GPU idle in span' row above, per step), split by gpu_idle.sql's cause, summed over
--   devices: the HTML's idle-per-step plot, so it adds up to the same numbers as the table.
--
-- How to read: GPU busy share near 1 with idle small means the GPU is the bottleneck; idle with
-- launch_bound/host_busy causes means the host cannot keep it fed (look at the phase the host was
-- in); an end-to-end span far above the CPU span means the step is asynchronous (its CPU range is
-- not its latency).

-- Numbers in verdict sentences: ns -> 'x.xx ms' / 'x.x us' / 'n ns'; a fraction -> 'x.x%'.
CREATE OR REPLACE TEMP MACRO _hl_t(x) AS CASE
    WHEN x IS NULL THEN '?'
    WHEN abs(x) >= 1e6 THEN printf('%.2f ms', x / 1e6)
    WHEN abs(x) >= 1e3 THEN printf('%.1f us', x / 1e3)
    ELSE printf('%d ns', round(x)::BIGINT) END;
-- a count per step: whole numbers with thousands separators (1,198), else one decimal (2.5)
CREATE OR REPLACE TEMP MACRO _hl_n(x) AS
    CASE WHEN x = round(x) THEN format('{:,}', round(x)::BIGINT) ELSE format('{:,.1f}', x) END;
CREATE OR REPLACE TEMP MACRO _hl_pct(a, b) AS
    CASE WHEN b IS NULL OR b = 0 OR a IS NULL THEN '?' ELSE printf('%.1f%%', 100.0 * a / b) END;

-- Why a number is NULL, and which capture option fixes it.
CREATE OR REPLACE TEMP MACRO _hl_no_rt() AS
    'no CUDA/HIP runtime rows: Kineto: include ProfilerActivity.CPU; nsys: --trace=cuda';
CREATE OR REPLACE TEMP MACRO _hl_no_sync() AS
    'no sync API call captured (Kineto: activities=[CPU, CUDA]; nsys: --trace=cuda): unknown, not zero';
CREATE OR REPLACE TEMP MACRO _hl_no_gpu() AS
    'no GPU op launched in these steps (was CUDA activity captured? Kineto: activities=[CPU, CUDA]; nsys: --trace=cuda)';

-- Each step's GPU span per device, and the device idle intervals (gpu_idle.sql's _idle_all, any
-- cause) clipped to it. host_phase is made relative to the step, like the phase tree.
CREATE OR REPLACE TEMP TABLE _hl_span AS
SELECT trace, step_index, device, min(ts_ns) AS s, max(end_ns) AS e FROM _gpu_step GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE _hl_idle AS
SELECT p.trace, p.step_index, i.cause, _rel_phase(coalesce(i.host_phase, '(none)'), st.phase_path) AS host_phase,
       sum(least(i.gap_start_ns + i.gap_ns, p.e) - greatest(i.gap_start_ns, p.s)) AS idle_ns
FROM _hl_span p
JOIN _idle_all i ON i.trace = p.trace AND i.device = p.device AND i.gap_start_ns < p.e AND i.gap_start_ns + i.gap_ns > p.s
JOIN _steps st ON st.trace = p.trace AND st.step_index = p.step_index
GROUP BY ALL;

-- Per step: CPU inclusive time per phase (ranges on the step's own thread, clipped to the step),
-- GPU op time per innermost phase ('(other)': launched directly in the step or outside its phases).
CREATE OR REPLACE TEMP TABLE _hl_cpu AS
SELECT r.trace, r.step_index, substr(r.phase_path, length(r.step_path) + 2) AS phase_path,
       sum(greatest(least(r.ts_ns + r.dur_ns, s.end_ns) - r.ts_ns, 0)) AS incl_ns
FROM _range_step r JOIN _steps s USING (trace, step_index)
WHERE r.tid = s.tid AND starts_with(r.phase_path, r.step_path || '/')
GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE _hl_gpu AS
SELECT trace, step_index,
       CASE WHEN starts_with(phase_path, step_path || '/') THEN substr(phase_path, length(step_path) + 2)
            ELSE '(other)' END AS phase_path,
       sum(dur_ns) AS excl_ns
FROM _gpu_step GROUP BY ALL;

-- Every phase path of a step kind, with all its ancestors (so the tree has no orphan).
CREATE OR REPLACE TEMP TABLE _hl_paths AS
WITH _p AS (
    SELECT c.trace, s.step_kind, c.phase_path FROM _hl_cpu c JOIN _step_rows s USING (trace, step_index)
    UNION
    SELECT g.trace, s.step_kind, g.phase_path FROM _hl_gpu g JOIN _step_rows s USING (trace, step_index)
    WHERE g.phase_path <> '(other)'
), _segs AS (SELECT DISTINCT trace, step_kind, string_split(phase_path, '/') AS segs FROM _p)
SELECT DISTINCT trace, step_kind, array_to_string(segs[1:i], '/') AS phase_path, i - 1 AS depth,
       CASE WHEN i > 1 THEN array_to_string(segs[1:i - 1], '/') END AS parent, segs[i] AS phase
FROM (SELECT trace, step_kind, segs, unnest(range(1, len(segs) + 1)) AS i FROM _segs)
UNION ALL
SELECT DISTINCT trace, step_kind, '(other)', 0, NULL, '(other)' FROM _step_rows;

-- The grid: every step x every path of its kind (0 where the step lacks the phase).
CREATE OR REPLACE TEMP TABLE _hl_grid AS
WITH _g AS (
    SELECT s.trace, s.step_kind, s.step_index, s.wall_ns, p.phase_path, p.depth, p.parent, p.phase,
           coalesce(c.incl_ns, 0) AS incl_cpu, coalesce(g.excl_ns, 0) AS excl_gpu
    FROM _step_rows s JOIN _hl_paths p USING (trace, step_kind)
    LEFT JOIN _hl_cpu c ON c.trace = s.trace AND c.step_index = s.step_index AND c.phase_path = p.phase_path
    LEFT JOIN _hl_gpu g ON g.trace = s.trace AND g.step_index = s.step_index AND g.phase_path = p.phase_path
), _kids AS (
    SELECT trace, step_index, parent, sum(incl_cpu) AS kids_cpu FROM _g WHERE parent IS NOT NULL GROUP BY ALL
), _top AS (
    SELECT trace, step_index, sum(incl_cpu) AS top_cpu FROM _g WHERE depth = 0 AND phase_path <> '(other)' GROUP BY ALL
), _ig AS (  -- each path's GPU time added to itself and every ancestor
    SELECT trace, step_index, array_to_string(segs[1:i], '/') AS phase_path, sum(excl_gpu) AS incl_gpu
    FROM (SELECT trace, step_index, excl_gpu, segs, unnest(range(1, len(segs) + 1)) AS i
          FROM (SELECT trace, step_index, excl_gpu, string_split(phase_path, '/') AS segs FROM _g
                WHERE phase_path <> '(other)' AND excl_gpu > 0))
    GROUP BY ALL
)
SELECT g.trace, g.step_kind, g.step_index, g.phase_path, g.depth, g.phase,
       CASE WHEN g.phase_path = '(other)' THEN g.wall_ns - coalesce(t.top_cpu, 0)
            ELSE g.incl_cpu - coalesce(k.kids_cpu, 0) END AS excl_cpu,
       CASE WHEN g.phase_path = '(other)' THEN g.wall_ns - coalesce(t.top_cpu, 0) ELSE g.incl_cpu END AS incl_cpu,
       g.excl_gpu,
       CASE WHEN g.phase_path = '(other)' THEN g.excl_gpu ELSE coalesce(i.incl_gpu, 0) END AS incl_gpu
FROM _g g
LEFT JOIN _kids k ON k.trace = g.trace AND k.step_index = g.step_index AND k.parent = g.phase_path
LEFT JOIN _top t ON t.trace = g.trace AND t.step_index = g.step_index
LEFT JOIN _ig i ON i.trace = g.trace AND i.step_index = g.step_index AND i.phase_path = g.phase_path;

CREATE OR REPLACE TEMP TABLE _hl_tree AS
WITH _k AS (
    SELECT trace, step_kind, sum(wall_ns) AS k_wall, sum(gpu_op_ns) AS k_gpu FROM _step_rows GROUP BY ALL
), _a AS (
    SELECT trace, step_kind, phase_path, any_value(depth) AS depth, any_value(phase) AS phase,
           avg(excl_cpu) AS excl_cpu_ns_mean, quantile_cont(excl_cpu, 0.5) AS excl_cpu_ns_p50,
           quantile_cont(excl_cpu, 0.99) AS excl_cpu_ns_p99, avg(incl_cpu) AS incl_cpu_ns_mean,
           avg(excl_gpu) AS excl_gpu_ns_mean, avg(incl_gpu) AS incl_gpu_ns_mean,
           sum(excl_cpu) AS s_excl_cpu, sum(excl_gpu) AS s_excl_gpu
    FROM _hl_grid GROUP BY ALL
), _r AS (  -- rank among siblings: inclusive CPU (then GPU) time, '(other)' last
    SELECT a.*, string_split(phase_path, '/') AS segs,
           row_number() OVER (PARTITION BY trace, step_kind,
                                  CASE WHEN phase_path = '(other)' THEN '' ELSE coalesce(array_to_string((string_split(phase_path, '/'))[1:-2], '/'), '') END,
                                  depth
                              ORDER BY phase_path = '(other)', incl_cpu_ns_mean DESC, incl_gpu_ns_mean DESC, phase_path) AS sib
    FROM _a a
), _key AS (  -- the sibling ranks of a path's ancestors and itself: sorting by it walks the tree depth first
    SELECT r.trace, r.step_kind, r.phase_path, list(p.sib ORDER BY x.i) AS sort_key
    FROM (SELECT trace, step_kind, phase_path, segs, unnest(range(1, len(segs) + 1)) AS i FROM _r) x
    JOIN _r r USING (trace, step_kind, phase_path)
    JOIN _r p ON p.trace = x.trace AND p.step_kind = x.step_kind
             AND p.phase_path = CASE WHEN x.phase_path = '(other)' THEN '(other)' ELSE array_to_string(x.segs[1:x.i], '/') END
    GROUP BY ALL
)
SELECT r.trace, r.step_kind, row_number() OVER (PARTITION BY r.trace, r.step_kind ORDER BY y.sort_key)::INTEGER AS row_order,
       r.depth::INTEGER AS depth, r.phase, r.phase_path, r.excl_cpu_ns_mean, r.excl_cpu_ns_p50, r.excl_cpu_ns_p99,
       r.incl_cpu_ns_mean, r.excl_gpu_ns_mean, r.incl_gpu_ns_mean,
       r.s_excl_cpu / nullif(k.k_wall, 0) AS excl_cpu_share, r.s_excl_gpu / nullif(k.k_gpu, 0) AS excl_gpu_share,
       r.s_excl_cpu, r.s_excl_gpu, k.k_wall, k.k_gpu
FROM _r r JOIN _key y USING (trace, step_kind, phase_path) JOIN _k k USING (trace, step_kind);

-- Per step values of the headline metrics (long form).
CREATE OR REPLACE TEMP TABLE _hl_vals AS
WITH _idle AS (
    SELECT trace, step_index, cause, sum(idle_ns) AS idle_ns FROM _hl_idle GROUP BY ALL
), _causes AS (  -- the causes seen per trace and kind, each a row for every step of the kind
    SELECT DISTINCT s.trace, s.step_kind, i.cause FROM _idle i JOIN _step_rows s USING (trace, step_index)
), _s AS (
    SELECT s.*, k.has_runtime, k.has_sync,
           CASE WHEN s.gpu_ops > 0 THEN coalesce((SELECT sum(idle_ns) FROM _idle i
                                                  WHERE i.trace = s.trace AND i.step_index = s.step_index), 0) END AS idle_ns
    FROM _step_rows s JOIN _caps k USING (trace)
)
SELECT trace, step_kind, step_index, row_order, metric, unit, v::DOUBLE AS v, note FROM (
    SELECT s.trace, s.step_kind, s.step_index, m.* FROM _s s, LATERAL (VALUES
        (1, 'CPU span', 'ns', s.wall_ns::DOUBLE, NULL),
        (2, 'GPU span', 'ns', s.gpu_span_ns::DOUBLE, _hl_no_gpu()),
        (3, 'end-to-end span', 'ns', s.end_to_end_ns::DOUBLE, NULL),
        (4, 'launches', 'count', s.launches::DOUBLE, _hl_no_rt()),
        (5, 'graph launches', 'count', s.graph_launches::DOUBLE, _hl_no_rt()),
        (6, 'graph nodes', 'count', CASE WHEN s.graph_launches IS NOT NULL THEN s.graph_nodes END::DOUBLE, _hl_no_rt()),
        (7, 'host time in graph launch', 'ns', s.graph_launch_host_ns::DOUBLE, _hl_no_rt()),
        (8, 'GPU busy (union)', 'ns', s.gpu_busy_ns::DOUBLE, _hl_no_gpu()),
        (9, 'GPU busy share', 'share', s.gpu_busy_share, _hl_no_gpu()),
        (10, 'kernel time (sum)', 'ns', CASE WHEN s.gpu_ops > 0 THEN s.gpu_op_ns END::DOUBLE, _hl_no_gpu()),
        (11, 'GPU idle in span', 'ns', s.idle_ns::DOUBLE, _hl_no_gpu()),
        (90, 'sync calls', 'count', s.sync_calls::DOUBLE, _hl_no_sync()),
        (91, 'sync stall', 'ns', s.sync_stall_ns::DOUBLE, _hl_no_sync())
    ) m(row_order, metric, unit, v, note)
    UNION ALL
    SELECT s.trace, s.step_kind, s.step_index,
           (20 + dense_rank() OVER (PARTITION BY s.trace, s.step_kind ORDER BY c.cause))::INTEGER,
           'idle: ' || c.cause, 'ns', CASE WHEN s.gpu_ops > 0 THEN coalesce(i.idle_ns, 0) END::DOUBLE, _hl_no_gpu()
    FROM _s s JOIN _causes c USING (trace, step_kind)
    LEFT JOIN _idle i ON i.trace = s.trace AND i.step_index = s.step_index AND i.cause = c.cause
);

-- Per (trace, step kind) sums: the numerators and denominators of the verdicts.
CREATE OR REPLACE TEMP TABLE _hl_kind AS
SELECT s.trace, s.step_kind, count(*) AS n, sum(s.wall_ns) AS wall, sum(s.end_to_end_ns) AS e2e,
       sum(s.gpu_span_dev_ns) AS span, sum(s.gpu_busy_ns) AS busy, sum(s.gpu_op_ns) AS op, sum(s.gpu_ops) AS ops,
       sum(s.launches) AS launches, sum(s.launch_host_ns) AS launch_host, sum(s.graph_launches) AS glaunches,
       sum(s.graph_launch_host_ns) AS glaunch_host, sum(s.graph_nodes) AS gnodes, sum(s.graph_node_ns) AS gnode_ns,
       sum(s.sync_calls) AS syncs, sum(s.sync_stall_ns) AS stall,
       any_value(k.has_runtime) AS has_runtime, any_value(k.has_sync) AS has_sync
FROM _step_rows s JOIN _caps k USING (trace) GROUP BY ALL;

-- @output headline
SELECT v.trace, v.step_kind, (SELECT count(*) FROM _step_rows s WHERE s.trace = v.trace AND s.step_kind = v.step_kind) AS steps,
       v.row_order, v.metric, v.unit, list_avg(list(v.v ORDER BY v.v)) AS mean,  -- summed in value order: the same last bit on any thread count
       quantile_cont(v.v, 0.5) AS p50, quantile_cont(v.v, 0.99) AS p99,
       CASE WHEN count(v.v) = 0 THEN any_value(v.note) END AS note
FROM _hl_vals v
GROUP BY v.trace, v.step_kind, v.row_order, v.metric, v.unit
ORDER BY v.trace, v.step_kind, v.row_order;

-- @output phase_tree
SELECT trace, step_kind, row_order, depth, phase, phase_path, excl_cpu_ns_mean, excl_cpu_ns_p50, excl_cpu_ns_p99,
       incl_cpu_ns_mean, excl_gpu_ns_mean, incl_gpu_ns_mean, excl_cpu_share, excl_gpu_share
FROM _hl_tree ORDER BY trace, step_kind, row_order;

-- @output verdicts
WITH _ic AS (  -- idle causes and the host phase with the most idle, per kind
    SELECT s.trace, s.step_kind, i.cause, sum(i.idle_ns) AS idle_ns
    FROM _hl_idle i JOIN _step_rows s USING (trace, step_index) GROUP BY ALL
), _hp AS (  -- the host phase of the most idle time the host caused (cause 'other' is GPU-side)
    SELECT * FROM (SELECT s.trace, s.step_kind, i.host_phase, sum(i.idle_ns) AS idle_ns
                   FROM _hl_idle i JOIN _step_rows s USING (trace, step_index)
                   WHERE i.cause NOT IN ('other') GROUP BY s.trace, s.step_kind, i.host_phase)
    QUALIFY row_number() OVER (PARTITION BY trace, step_kind ORDER BY idle_ns DESC, host_phase) = 1
), _idle AS (
    SELECT k.trace, k.step_kind, sum(c.idle_ns) AS idle_ns,
           string_agg(_hl_pct(c.idle_ns, k.span) || ' ' || c.cause, ', ' ORDER BY c.idle_ns DESC, c.cause) AS split
    FROM _hl_kind k JOIN _ic c USING (trace, step_kind) GROUP BY k.trace, k.step_kind, k.span
), _top AS (  -- the largest exclusive phase, CPU and GPU
    SELECT t.trace, t.step_kind, t.phase_path, t.s_excl_cpu, o.s_excl_cpu AS other_cpu FROM _hl_tree t
    JOIN _hl_tree o ON o.trace = t.trace AND o.step_kind = t.step_kind AND o.phase_path = '(other)'
    WHERE t.phase_path <> '(other)'
    QUALIFY row_number() OVER (PARTITION BY t.trace, t.step_kind ORDER BY t.s_excl_cpu DESC, t.phase_path) = 1
), _topg AS (
    SELECT trace, step_kind, phase_path, s_excl_gpu FROM _hl_tree WHERE k_gpu > 0 AND phase_path <> '(other)'
    QUALIFY row_number() OVER (PARTITION BY trace, step_kind ORDER BY s_excl_gpu DESC, phase_path) = 1
), _sy AS (  -- blocking syncs by the step phase they were called in
    SELECT * FROM (
        SELECT s.trace, s.step_kind, _rel_phase(r.phase_path, s.phase_path) AS phase, sum(r.dur_ns) AS ns
        FROM (SELECT r.*, CASE WHEN o.one_thread THEN -1 ELSE r.tid END AS k_tid
              FROM _rt r JOIN _one_thread o USING (trace) WHERE r.blocking) r
        ASOF JOIN _steps s ON r.trace = s.trace AND r.k_tid = s.k_tid AND r.ts_ns >= s.ts_ns
        WHERE r.ts_ns < s.end_ns
        GROUP BY ALL)
    QUALIFY row_number() OVER (PARTITION BY trace, step_kind ORDER BY ns DESC, phase) = 1
), _v(trace, step_kind, prio, verdict, numerator_ns, denominator_ns, numerator, denominator) AS (
    SELECT k.trace, k.step_kind, 1,
           CASE WHEN coalesce(k.ops, 0) = 0 THEN 'GPU idle unknown: ' || _hl_no_gpu()
                ELSE 'GPU idle ' || _hl_pct(coalesce(i.idle_ns, 0), k.span) || ' of the GPU span ('
                     || _hl_t(coalesce(i.idle_ns, 0) / k.n) || ' of ' || _hl_t(k.span / k.n) || ' per step)'
                     || coalesce(': ' || i.split, '')
                     || coalesce('; the host was ' || CASE WHEN h.host_phase IN ('(self)', '(none)') THEN 'in no phase'
                                                          ELSE 'in `' || h.host_phase || '`' END, '') END,
           CASE WHEN k.ops > 0 THEN coalesce(i.idle_ns, 0) END, CASE WHEN k.ops > 0 THEN k.span END,
           'GPU idle inside the steps'' GPU spans', 'GPU span (per device, summed over steps)'
    FROM _hl_kind k LEFT JOIN _idle i USING (trace, step_kind) LEFT JOIN _hp h USING (trace, step_kind)
    UNION ALL
    SELECT trace, step_kind, 2,
           'Asynchronous: GPU work ends ' || _hl_t((e2e - wall) / n) || ' after the CPU range closes (end-to-end '
           || _hl_t(e2e / n) || ' vs CPU span ' || _hl_t(wall / n) || ' per step, x' || printf('%.1f', e2e / wall) || ')',
           e2e, wall, 'end-to-end span (step start to last GPU end)', 'CPU span (step range)'
    FROM _hl_kind WHERE wall > 0 AND e2e > 1.05 * wall
    UNION ALL
    SELECT k.trace, k.step_kind, 3,
           'Largest exclusive CPU phase: `' || t.phase_path || '`, ' || _hl_pct(t.s_excl_cpu, k.wall) || ' of the CPU span ('
           || _hl_t(t.s_excl_cpu / k.n) || ' per step; ' || _hl_pct(t.other_cpu, k.wall) || ' of it in no phase)',
           t.s_excl_cpu, k.wall, 'exclusive CPU time of `' || t.phase_path || '`', 'CPU span (step range)'
    FROM _hl_kind k JOIN _top t USING (trace, step_kind) WHERE k.wall > 0
    UNION ALL
    SELECT trace, step_kind, 4,
           CASE WHEN NOT has_sync THEN 'Sync stalls unknown: ' || _hl_no_sync()
                WHEN coalesce(stall, 0) = 0 THEN 'No blocking sync call inside these steps (sync calls were captured)'
                ELSE 'Host blocked in sync calls ' || _hl_pct(stall, wall) || ' of the CPU span ('
                     || _hl_n(syncs / n) || ' calls, ' || _hl_t(stall / n) || ' per step)'
                     || coalesce(', mostly ' || (SELECT CASE WHEN phase IN ('(self)', '(none)') THEN 'in no phase'
                                                             ELSE 'in `' || phase || '`' END
                                                 FROM _sy WHERE _sy.trace = k.trace AND _sy.step_kind = k.step_kind), '') END,
           CASE WHEN has_sync THEN coalesce(stall, 0) END, CASE WHEN has_sync THEN wall END,
           'host time in blocking sync calls', 'CPU span (step range)'
    FROM _hl_kind k
    UNION ALL
    SELECT trace, step_kind, 5,
           CASE WHEN NOT has_runtime THEN 'Launch counts unknown: ' || _hl_no_rt()
                ELSE _hl_n(launches / n) || ' launches per step'
                     || CASE WHEN glaunches > 0 THEN ' + ' || _hl_n(glaunches / n) || ' graph launches' ELSE '' END
                     || coalesce(', mean launch call ' || _hl_t(launch_host / nullif(launches, 0)), '')
                     || ': launch calls take ' || _hl_pct(launch_host + glaunch_host, wall) || ' of the CPU span' END,
           CASE WHEN has_runtime THEN launch_host + glaunch_host END, CASE WHEN has_runtime THEN wall END,
           'host time in launch calls (graph launches included)', 'CPU span (step range)'
    FROM _hl_kind
    UNION ALL
    SELECT trace, step_kind, 6,
           'CUDA graphs: ' || _hl_pct(gnode_ns, op) || ' of kernel time replayed (' || _hl_n(gnodes / n)
           || ' nodes from ' || _hl_n(glaunches / n) || ' graph launches per step)',
           gnode_ns, op, 'duration of GPU ops replayed by graph launches', 'kernel time (sum) of the steps'
    FROM _hl_kind WHERE gnodes > 0 AND op > 0
    UNION ALL
    SELECT k.trace, k.step_kind, 7,
           'Largest GPU phase: `' || t.phase_path || '`, ' || _hl_pct(t.s_excl_gpu, k.op) || ' of kernel time ('
           || _hl_t(t.s_excl_gpu / k.n) || ' per step)',
           t.s_excl_gpu, k.op, 'GPU op time launched in `' || t.phase_path || '`', 'kernel time (sum) of the steps'
    FROM _hl_kind k JOIN _topg t USING (trace, step_kind)
)
SELECT trace, step_kind, rank::INTEGER AS rank, verdict, numerator_ns::DOUBLE AS numerator_ns,
       denominator_ns::DOUBLE AS denominator_ns, numerator, denominator
FROM (SELECT *, row_number() OVER (PARTITION BY trace, step_kind ORDER BY prio) AS rank FROM _v)
WHERE rank <= 6
ORDER BY trace, step_kind, rank;

-- @output notes
WITH _tr AS (SELECT trace FROM _window UNION SELECT trace FROM trace_notes),
_cand AS (  -- top-level ranges (no enclosing range), names with digits folded, by frequency
    SELECT * FROM (SELECT trace, regexp_replace(name, '[0-9]+', 'N', 'g') AS name, count(*) AS n
                   FROM ranges WHERE phase_path = name AND trace NOT IN (SELECT trace FROM _steps)
                   GROUP BY ALL)
    QUALIFY row_number() OVER (PARTITION BY trace ORDER BY n DESC, name) <= 8
)
SELECT trace, 'warn' AS severity, 'converter' AS source, note AS message FROM trace_notes
UNION ALL
SELECT t.trace, 'warn', 'steps',
       'no step matched the step pattern ' || getvariable('step_pattern') || '; candidates: '
       || coalesce((SELECT string_agg(c.name || ' (' || c.n || ')', ', ' ORDER BY c.n DESC, c.name)
                    FROM _cand c WHERE c.trace = t.trace), 'none (the trace has no range)')
       || ': pass --step-pattern, or mark the loop with tracekit.phase("step")'
FROM _tr t WHERE t.trace NOT IN (SELECT trace FROM _steps)
ORDER BY 1, 3, 4;

-- @output idle
SELECT h.trace, s.step_kind, h.step_index, h.cause, sum(h.idle_ns)::BIGINT AS idle_ns
FROM _hl_idle h JOIN _step_rows s USING (trace, step_index)
GROUP BY ALL
ORDER BY h.trace, h.step_index, idle_ns DESC, h.cause;
