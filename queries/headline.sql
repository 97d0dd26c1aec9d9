-- headline: per trace and step kind, the per-step breakdown, the phase tree and verdicts, first.
-- @requires steps gpu_idle syncs lib/caps lib/frames lib/modules lib/notes lib/runtime
-- @requires lib/step_instances lib/trace_window
--
-- Run it with `tracekit report` (or `tracekit sql TRACE --query headline`): that loads queries/lib/,
-- the set-up of the files named on the `@requires` lines (steps.sql: steps_rows, steps_gpu,
-- steps_ranges; gpu_idle.sql: gpu_idle_all) and sets every getvariable() to its default.
--
-- A step is a step instance of steps.sql (innermost range matching step_pattern); a step kind
-- keeps batch sizes apart (step[DECODE bs=8] and step[DECODE bs=16] are two kinds). Every
-- per-step number below is taken per step instance, then summarised over the steps of its kind
-- (mean, p50, p99: quantile_cont). A trace where no range matches the step pattern is one step of kind
-- '(whole trace)' per process (lib/step_instances): its verdicts speak of the trace window, per process when
-- there are several, and its tree holds every range of the step's thread. Three spans per step (an
-- asynchronous step's GPU work may run long after its CPU range closed):
--   CPU span          the step range's duration (steps.wall_ns)
--   GPU span          first start to last end of the GPU ops launched in the step (steps.gpu_span_ns)
--   end-to-end span   step start to max(step end, last end of its GPU ops) (steps.end_to_end_ns)
--
-- Output `headline` (long form: one row per trace, step kind and metric):
--   trace, step_kind, steps (step instances of the kind), row_order (int, display order),
--   metric, unit ('ns' | 'count' | 'share'), mean, p50, p99 (DOUBLE), note (why NULL, else NULL)
--   metrics, in row_order (steps.sql has each per step):
--     'CPU span', 'GPU span', 'end-to-end span'             (ns; see above)
--     'GPU busy (union)'         union of the step's GPU op intervals per device, summed (ns)
--     'GPU busy / end to end'    GPU busy (union) / end-to-end span per device (share): THE step's busy
--                                share, as its user lives it (steps.gpu_busy_share_e2e)
--     'GPU busy / GPU span'      GPU busy (union) / GPU span per device (share, secondary: leaves out the
--                                idle before the step's first GPU op and after its last)
--     'GPU op time (kernels, copies, memsets)'
--                                summed duration of the step's GPU ops: kernels, memcpy and memset, the
--                                name saying so (it was 'kernel time (sum)', which hid the copies)
--     'GPU on other work'        time in the end-to-end window the device ran only ops not launched in
--                                the step (e.g. launched before the trace window: steps.gpu_other_ns)
--     'GPU idle, end to end'     device idle time (no GPU op at all) in the end-to-end window, summed
--                                over the step's devices; busy + other work + idle = end-to-end per device
--     'idle: <cause>'            that idle time split by gpu_idle.sql's causes (launch_bound, host_busy,
--                                sync_blocked, gpu_wait, kernel_gap, queued_dependency, no_launch_record,
--                                before_first_gpu_op, after_last_gpu_op); they add up to 'GPU idle, end to end'
--     'launches'                 kernel launch calls (api_classes class `launch`; copies, memsets and
--                                graph launches excluded)
--     'graph launches'           graph launch calls;  'graph nodes': GPU ops they replayed (NULL without runtime rows)
--     'host: launch calls', 'host: blocking syncs+copies', 'host: other runtime calls',
--     'host: outside runtime calls'   the CPU span on the step's thread in four buckets that add up
--                                to it (steps.host_*_ns: every ns in exactly one)
--     'sync calls', 'sync stall' blocking calls (syncs, synchronous copies) in the step and their host time
--   NULL with a note where the trace lacks what the metric needs (no runtime rows, no sync
--   captured, no GPU op in the step), never 0.
-- Output `phase_tree`: trace, step_kind, row_order, depth (0 = top level inside the step),
--   phase (leaf name; '(other)' = step time in no phase), phase_path (relative to the step),
--   excl_cpu_ns_mean, excl_cpu_ns_p50, excl_cpu_ns_p99, incl_cpu_ns_mean,
--   excl_gpu_ns_mean, incl_gpu_ns_mean, excl_cpu_share, excl_gpu_share,
--   instances_mean (ranges or module intervals with exactly this path on the step's thread, per step;
--   NULL for '(other)'), phase_source ('range' | 'module' | 'frame', comma-separated when several; NULL
--   for '(other)').
--   Phases are EFFECTIVE phases (lib/modules.sql): user ranges where they say more than the step, else the
--   module hierarchy around the launch (class names without instance index: 24 decoder layers are one
--   row, instances_mean 24), else `forward` frames.
--   CPU: range and module-interval time on the step's thread, clipped to the step range; inclusive = the
--   phase's ranges (a module phase: its intervals less the user ranges directly inside them, which are
--   phases of their own), exclusive = inclusive minus its child phases' inclusive. '(other)' = CPU span
--   minus the top-level phases. GPU: duration of GPU ops by the innermost phase of their launch
--   ('(other)': launched directly in the step or outside its phases); inclusive adds descendants.
--   Per step values (0 where a step lacks the phase), then mean/p50/p99 over the steps of the kind.
--   Each share column sums to 1 over the rows of a (trace, step_kind). Rows are sorted so a
--   depth-first walk prints the tree (siblings by inclusive CPU time, '(other)' last).
-- Output `verdicts`: trace, step_kind, rank (1..6), verdict (one sentence, its numbers formatted
--   in ms/us/%), numerator_ns, denominator_ns, numerator (label), denominator (label). Sums over the
--   kind's steps, shown per step; every share names its denominator. Ranked: the first always,
--   then the problems (sync stall, launch calls, an asynchronous step) by their time per step,
--   largest first, then where the time went (largest phases, graphs), then what is unknown (NULL
--   numbers and a sentence naming the capture flag, never a confident zero); six at most:
--     GPU idle / end-to-end span, split by cause (causes of >= 0.1% of it; the first explained),
--       the host phase when the host caused it, and the busy and other-work shares
--     host time in blocking calls / CPU span, the call and phase with most of it (and its innermost
--       user-code frame, lib/frames.sql, the path from site-/dist-packages on), and what the GPU
--       did meanwhile (syncs.sql syncs_during: ops run, those launched before the trace window,
--       the phases the others came from; or what it waited on when idle)
--     host time in kernel and graph launch calls / CPU span (launches only: api_classes)
--     asynchronous step: end-to-end span / CPU span (only when above 1.05)
--     largest exclusive CPU phase / CPU span (only at >= 5% of it)
--     GPU time replayed by CUDA graphs / GPU op time (only when graphs replayed)
--     largest GPU phase / GPU op time (only at >= 5% of it)
-- Output `notes`: trace, severity ('warn' | 'info'), source ('converter' | analysis name), message:
--   the converter's notes (truncation, salvaged events, replaced bytes: view trace_notes; 'warn') and
--   'no step matched the step pattern ...; candidates: <range names by frequency>: the numbers are over the
--   whole trace; ...' (source 'steps', 'warn'; the top-level ranges (no enclosing range) and the ranges repeated
--   directly inside a top-level range that occurs once (a `Loop` around `Step 190 to 200`), digits folded to N,
--   8 at most).
--   tracekit.view.warnings.warnings_of puts the 'warn' rows first among the report's warnings.
-- Output `idle`: trace, step_kind, step_index, cause, idle_ns: each step's GPU idle time in its
--   end-to-end window (the 'GPU idle, end to end' row above, per step), split by gpu_idle.sql's cause
--   (the leading edge by its rule), summed over devices: the HTML's idle-per-step plot, so it adds up
--   to the same numbers as the table.
--
-- How to read: GPU busy share near 1 with idle small means the GPU is the bottleneck; idle with
-- launch_bound/host_busy causes means the host cannot keep it fed (look at the phase the host was
-- in); an end-to-end span far above the CPU span means the step is asynchronous (its CPU range is
-- not its latency).

-- Numbers in verdict sentences: ns -> 'x.xx s' / 'x.xx ms' / 'x.x us' / 'n ns'; a fraction -> 'x.x%' ('<0.1%' when
-- above 0 but below 0.05%).
CREATE OR REPLACE TEMP MACRO _hl_t(x) AS CASE
    WHEN x IS NULL THEN '?'
    WHEN abs(x) >= 1e9 THEN printf('%.2f s', x / 1e9)
    WHEN abs(x) >= 1e6 THEN printf('%.2f ms', x / 1e6)
    WHEN abs(x) >= 1e3 THEN printf('%.1f us', x / 1e3)
    ELSE printf('%d ns', round(x)::BIGINT) END;
-- a count per step: whole numbers with thousands separators (1,198), else one decimal (2.5)
CREATE OR REPLACE TEMP MACRO _hl_n(x) AS
    CASE WHEN x = round(x) THEN format('{:,}', round(x)::BIGINT) ELSE format('{:,.1f}', x) END;
CREATE OR REPLACE TEMP MACRO _hl_pct(a, b) AS
    CASE WHEN b IS NULL OR b = 0 OR a IS NULL THEN '?'
         WHEN a > 0 AND 100.0 * a / b < 0.05 THEN '<0.1%'  -- never a confident 0.0% for time that was there
         ELSE printf('%.1f%%', 100.0 * a / b) END;

-- 'N things' with the plural when N is not 1 (a mean per step may be fractional: 2.5 calls).
CREATE OR REPLACE TEMP MACRO _hl_count(x, word) AS
    _hl_n(x) || ' ' || CASE WHEN x = 1 THEN word WHEN ends_with(word, 'ch') THEN word || 'es' ELSE word || 's' END;
-- Where a call or the host was, in words: a phase path, or outside any annotated phase.
CREATE OR REPLACE TEMP MACRO _hl_where(p) AS
    CASE WHEN p IS NULL OR p IN ('(none)', '(other)') THEN 'outside any annotated phase' ELSE 'in `' || p || '`' END;
-- The words a verdict says a kind's numbers with: per step; for the step that stands for a whole trace
-- (lib/step_instances: one per process that made runtime calls), over the trace window, per process when several.
-- _hl_cpu_den: the label of a CPU-side share's denominator.
CREATE OR REPLACE TEMP MACRO _hl_per(kind, n) AS CASE WHEN NOT step_instances_whole(kind) THEN ' per step'
                                                      WHEN n > 1 THEN ' per process' ELSE '' END;
CREATE OR REPLACE TEMP MACRO _hl_span(kind) AS
    CASE WHEN step_instances_whole(kind) THEN 'the trace window' ELSE 'the CPU span' END;
CREATE OR REPLACE TEMP MACRO _hl_no_gpu(kind) AS
    notes_no_gpu_launched_in(CASE WHEN step_instances_whole(kind) THEN 'the trace' ELSE 'these steps' END);
CREATE OR REPLACE TEMP MACRO _hl_cpu_den(kind) AS CASE WHEN step_instances_whole(kind)
    THEN 'trace window (first event to last), summed over the processes' ELSE 'CPU span (step range)' END;
-- One line on what an idle cause means (gpu_idle.sql's header has the rules).
CREATE OR REPLACE TEMP MACRO _hl_cause_gloss(c) AS CASE c
    WHEN 'launch_bound' THEN 'the GPU waited for the launch call itself'
    WHEN 'host_busy' THEN 'the host was busy elsewhere before launching'
    WHEN 'sync_blocked' THEN 'the host sat in a blocking sync, then relaunched'
    WHEN 'gpu_wait' THEN 'queued work waited on a stream wait event'
    WHEN 'kernel_gap' THEN 'the ordinary gap between queued ops of a stream'
    WHEN 'queued_dependency' THEN 'queued work held by something the trace does not show'
    WHEN 'no_launch_record' THEN 'the next op has no launch record in the trace'
    WHEN 'before_first_gpu_op' THEN 'no GPU op yet in the trace'
    WHEN 'after_last_gpu_op' THEN 'no later GPU op in the trace' END;

-- Each step's device idle intervals (gpu_idle.sql's gpu_idle_all, any cause) clipped to its end-to-end
-- window on each device it ran ops on; the leading edge (window start to the device's first op) takes
-- the cause its op's rules give (rule_cause: a first op that waited on a stream event is gpu_wait) (steps.sql
-- steps_devices: the same intervals make gpu_idle_ns, so the causes add up to it). host_phase is made relative to the
-- step, like the phase tree.
CREATE OR REPLACE TEMP TABLE _hl_idle AS
SELECT d.trace, d.step_index, i.rule_cause AS cause,
       steps_rel_phase(coalesce(i.host_phase, '(none)'), st.phase_path) AS host_phase,
       sum(least(i.gap_start_ns + i.gap_ns, st.ts_ns + d.e2e_ns) - greatest(i.gap_start_ns, st.ts_ns)) AS idle_ns
FROM steps_devices d
JOIN step_instances st USING (trace, step_index)
JOIN gpu_idle_all i ON i.trace = d.trace AND i.device = d.device
                AND i.gap_start_ns < st.ts_ns + d.e2e_ns AND i.gap_start_ns + i.gap_ns > st.ts_ns
GROUP BY ALL;

-- Per step: CPU inclusive time per phase (ranges on the step's own thread, clipped to the step),
-- GPU op time per innermost phase ('(other)': launched directly in the step or outside its phases).
-- Module phases (lib/modules.sql, via steps.sql's steps_modules) count like ranges: their intervals' time (less the
-- user ranges directly inside them: sign -1 rows), n = instances (module intervals or ranges of the path).
CREATE OR REPLACE TEMP TABLE _hl_cpu AS
SELECT r.trace, r.step_index, step_instances_rel_path(r.phase_path, r.step_path) AS phase_path,
       sum(r.sign * greatest(least(r.ts_ns + r.dur_ns, s.end_ns) - r.ts_ns, 0)) AS incl_ns,
       count(*) FILTER (WHERE r.sign > 0) AS n, string_agg(DISTINCT r.src, ',' ORDER BY r.src) AS src
FROM (SELECT trace, step_index, tid, ts_ns, dur_ns, phase_path, step_path, 1 AS sign, 'range' AS src FROM steps_ranges
      UNION ALL
      SELECT trace, step_index, tid, ts_ns, dur_ns, phase_path, step_path, sign, phase_source FROM steps_modules) r
JOIN step_instances s USING (trace, step_index)
WHERE r.tid = s.tid AND step_instances_rel_path(r.phase_path, r.step_path) IS NOT NULL
GROUP BY ALL;

-- GPU ops by their effective phase (lib/modules.sql: the user range, else the module path around the launch)
CREATE OR REPLACE TEMP TABLE _hl_gpu AS
SELECT trace, step_index,
       coalesce(step_instances_rel_path(eff_phase_path, step_path), '(other)') AS phase_path,
       sum(dur_ns) AS excl_ns, string_agg(DISTINCT phase_source, ',' ORDER BY phase_source) AS src
FROM steps_gpu GROUP BY ALL;

-- Where each phase path of a step kind came from (range, module, frame), over its steps, CPU and GPU side.
CREATE OR REPLACE TEMP TABLE _hl_src AS
SELECT trace, step_kind, phase_path, modules_src_agg(src) AS phase_source FROM (
    SELECT c.trace, s.step_kind, c.phase_path, c.src FROM _hl_cpu c JOIN steps_rows s USING (trace, step_index)
    UNION ALL
    SELECT g.trace, s.step_kind, g.phase_path, g.src FROM _hl_gpu g JOIN steps_rows s USING (trace, step_index)
    WHERE g.phase_path <> '(other)')
GROUP BY ALL;

-- Every phase path of a step kind, with all its ancestors (so the tree has no orphan).
CREATE OR REPLACE TEMP TABLE _hl_paths AS
WITH _kind_paths AS (
    SELECT c.trace, s.step_kind, c.phase_path FROM _hl_cpu c JOIN steps_rows s USING (trace, step_index)
    UNION
    SELECT g.trace, s.step_kind, g.phase_path FROM _hl_gpu g JOIN steps_rows s USING (trace, step_index)
    WHERE g.phase_path <> '(other)'
), _segs AS (SELECT DISTINCT trace, step_kind, string_split(phase_path, '/') AS segs FROM _kind_paths)
SELECT DISTINCT trace, step_kind, array_to_string(segs[1:i], '/') AS phase_path, i - 1 AS depth,
       CASE WHEN i > 1 THEN array_to_string(segs[1:i - 1], '/') END AS parent, segs[i] AS phase
FROM (SELECT trace, step_kind, segs, unnest(range(1, len(segs) + 1)) AS i FROM _segs)
UNION ALL
SELECT DISTINCT trace, step_kind, '(other)', 0, NULL, '(other)' FROM steps_rows;

-- The grid: every step x every path of its kind (0 where the step lacks the phase).
CREATE OR REPLACE TEMP TABLE _hl_grid AS
WITH _step_paths AS (
    SELECT s.trace, s.step_kind, s.step_index, s.wall_ns, p.phase_path, p.depth, p.parent, p.phase,
           coalesce(c.incl_ns, 0) AS incl_cpu, coalesce(g.excl_ns, 0) AS excl_gpu, coalesce(c.n, 0) AS n
    FROM steps_rows s JOIN _hl_paths p USING (trace, step_kind)
    LEFT JOIN _hl_cpu c ON c.trace = s.trace AND c.step_index = s.step_index AND c.phase_path = p.phase_path
    LEFT JOIN _hl_gpu g ON g.trace = s.trace AND g.step_index = s.step_index AND g.phase_path = p.phase_path
), _kids AS (
    SELECT trace, step_index, parent, sum(incl_cpu) AS kids_cpu FROM _step_paths WHERE parent IS NOT NULL GROUP BY ALL
), _top_level_cpu AS (
    SELECT trace, step_index, sum(incl_cpu) AS top_cpu FROM _step_paths
    WHERE depth = 0 AND phase_path <> '(other)' GROUP BY ALL
), _incl_gpu AS (  -- each path's GPU time added to itself and every ancestor
    SELECT trace, step_index, array_to_string(segs[1:i], '/') AS phase_path, sum(excl_gpu) AS incl_gpu
    FROM (SELECT trace, step_index, excl_gpu, segs, unnest(range(1, len(segs) + 1)) AS i
          FROM (SELECT trace, step_index, excl_gpu, string_split(phase_path, '/') AS segs FROM _step_paths
                WHERE phase_path <> '(other)' AND excl_gpu > 0))
    GROUP BY ALL
)
SELECT g.trace, g.step_kind, g.step_index, g.phase_path, g.depth, g.phase,
       CASE WHEN g.phase_path = '(other)' THEN g.wall_ns - coalesce(t.top_cpu, 0)
            ELSE g.incl_cpu - coalesce(k.kids_cpu, 0) END AS excl_cpu,
       CASE WHEN g.phase_path = '(other)' THEN g.wall_ns - coalesce(t.top_cpu, 0) ELSE g.incl_cpu END AS incl_cpu,
       g.excl_gpu,
       CASE WHEN g.phase_path = '(other)' THEN g.excl_gpu ELSE coalesce(i.incl_gpu, 0) END AS incl_gpu, g.n
FROM _step_paths g
LEFT JOIN _kids k ON k.trace = g.trace AND k.step_index = g.step_index AND k.parent = g.phase_path
LEFT JOIN _top_level_cpu t ON t.trace = g.trace AND t.step_index = g.step_index
LEFT JOIN _incl_gpu i ON i.trace = g.trace AND i.step_index = g.step_index AND i.phase_path = g.phase_path;

CREATE OR REPLACE TEMP TABLE _hl_tree AS
WITH _per_kind AS (
    SELECT trace, step_kind, sum(wall_ns) AS k_wall, sum(gpu_op_ns) AS k_gpu FROM steps_rows GROUP BY ALL
), _path_stats AS (
    SELECT trace, step_kind, phase_path, any_value(depth) AS depth, any_value(phase) AS phase,
           avg(excl_cpu) AS excl_cpu_ns_mean, quantile_cont(excl_cpu, 0.5) AS excl_cpu_ns_p50,
           quantile_cont(excl_cpu, 0.99) AS excl_cpu_ns_p99, avg(incl_cpu) AS incl_cpu_ns_mean,
           avg(excl_gpu) AS excl_gpu_ns_mean, avg(incl_gpu) AS incl_gpu_ns_mean,
           sum(excl_cpu) AS s_excl_cpu, sum(excl_gpu) AS s_excl_gpu,
           avg(CASE WHEN phase_path <> '(other)' THEN n END) AS instances_mean
    FROM _hl_grid GROUP BY ALL
), _ranked AS (  -- rank among siblings: inclusive CPU (then GPU) time, '(other)' last
    SELECT a.*, string_split(phase_path, '/') AS segs,
           row_number() OVER (PARTITION BY trace, step_kind,
                                  CASE WHEN phase_path = '(other)' THEN ''
                                       ELSE coalesce(array_to_string((string_split(phase_path, '/'))[1:-2], '/'),
                                                     '') END,
                                  depth
                              ORDER BY phase_path = '(other)', incl_cpu_ns_mean DESC, incl_gpu_ns_mean DESC,
                                       phase_path) AS sib
    FROM _path_stats a
), _sort_keys AS (  -- the sibling ranks of a path's ancestors and itself: sorting by it walks the tree depth first
    SELECT r.trace, r.step_kind, r.phase_path, list(p.sib ORDER BY x.i) AS sort_key
    FROM (SELECT trace, step_kind, phase_path, segs, unnest(range(1, len(segs) + 1)) AS i FROM _ranked) x
    JOIN _ranked r USING (trace, step_kind, phase_path)
    JOIN _ranked p ON p.trace = x.trace AND p.step_kind = x.step_kind
             AND p.phase_path = CASE WHEN x.phase_path = '(other)' THEN '(other)'
                                     ELSE array_to_string(x.segs[1:x.i], '/') END
    GROUP BY ALL
)
SELECT r.trace, r.step_kind,
       row_number() OVER (PARTITION BY r.trace, r.step_kind ORDER BY y.sort_key)::INTEGER AS row_order,
       r.depth::INTEGER AS depth, r.phase, r.phase_path, r.excl_cpu_ns_mean, r.excl_cpu_ns_p50, r.excl_cpu_ns_p99,
       r.incl_cpu_ns_mean, r.excl_gpu_ns_mean, r.incl_gpu_ns_mean,
       r.s_excl_cpu / nullif(k.k_wall, 0) AS excl_cpu_share, r.s_excl_gpu / nullif(k.k_gpu, 0) AS excl_gpu_share,
       r.instances_mean, src.phase_source,
       r.s_excl_cpu, r.s_excl_gpu, k.k_wall, k.k_gpu
FROM _ranked r JOIN _sort_keys y USING (trace, step_kind, phase_path) JOIN _per_kind k USING (trace, step_kind)
LEFT JOIN _hl_src src USING (trace, step_kind, phase_path);

-- Per step values of the headline metrics (long form).
CREATE OR REPLACE TEMP TABLE _hl_vals AS
WITH _idle AS (
    SELECT trace, step_index, cause, sum(idle_ns) AS idle_ns FROM _hl_idle GROUP BY ALL
), _causes AS (  -- the causes seen per trace and kind, each a row for every step of the kind
    SELECT DISTINCT s.trace, s.step_kind, i.cause FROM _idle i JOIN steps_rows s USING (trace, step_index)
), _step_caps AS (
    SELECT s.*, k.has_runtime, k.has_sync FROM steps_rows s JOIN caps k USING (trace)
)
-- A trace with no GPU activity at all (no GPU op, no runtime call, no sync record: a CPU-only run)
-- keeps only the CPU rows: one verdict says why, instead of a table of NULLs.
SELECT trace, step_kind, step_index, row_order, metric, unit, v::DOUBLE AS v, note FROM (
    SELECT s.trace, s.step_kind, s.step_index, m.* FROM _step_caps s, LATERAL (VALUES
        (1, 'CPU span', 'ns', s.wall_ns::DOUBLE, NULL),
        (2, 'GPU span', 'ns', s.gpu_span_ns::DOUBLE, _hl_no_gpu(s.step_kind)),
        (3, 'end-to-end span', 'ns', s.end_to_end_ns::DOUBLE, NULL),
        (4, 'GPU busy (union)', 'ns', s.gpu_busy_ns::DOUBLE, _hl_no_gpu(s.step_kind)),
        (5, 'GPU busy / end to end', 'share', s.gpu_busy_share_e2e, _hl_no_gpu(s.step_kind)),
        (6, 'GPU busy / GPU span', 'share', s.gpu_busy_share_span, _hl_no_gpu(s.step_kind)),
        (7, 'GPU op time (kernels, copies, memsets)', 'ns', CASE WHEN s.gpu_ops > 0 THEN s.gpu_op_ns END::DOUBLE,
         _hl_no_gpu(s.step_kind)),
        (8, 'GPU on other work', 'ns', s.gpu_other_ns::DOUBLE, _hl_no_gpu(s.step_kind)),
        (9, 'GPU idle, end to end', 'ns', s.gpu_idle_ns::DOUBLE, _hl_no_gpu(s.step_kind)),
        (40, 'launches', 'count', s.launches::DOUBLE, notes_no_runtime_rows()),
        (41, 'graph launches', 'count', s.graph_launches::DOUBLE, notes_no_runtime_rows()),
        (42, 'graph nodes', 'count', CASE WHEN s.graph_launches IS NOT NULL THEN s.graph_nodes END::DOUBLE,
         notes_no_runtime_rows()),
        (50, 'host: launch calls', 'ns', s.host_launch_ns::DOUBLE, notes_no_runtime_rows()),
        (51, 'host: blocking syncs+copies', 'ns', s.host_blocking_ns::DOUBLE, notes_no_runtime_rows()),
        (52, 'host: other runtime calls', 'ns', s.host_runtime_other_ns::DOUBLE, notes_no_runtime_rows()),
        (53, 'host: outside runtime calls', 'ns', s.host_outside_runtime_ns::DOUBLE, notes_no_runtime_rows()),
        (90, 'sync calls', 'count', s.sync_calls::DOUBLE, notes_no_sync_captured()),
        (91, 'sync stall', 'ns', s.sync_stall_ns::DOUBLE, notes_no_sync_captured())
    ) m(row_order, metric, unit, v, note)
    UNION ALL
    SELECT s.trace, s.step_kind, s.step_index,
           (10 + dense_rank() OVER (PARTITION BY s.trace, s.step_kind ORDER BY c.cause))::INTEGER,
           'idle: ' || c.cause, 'ns', CASE WHEN s.gpu_ops > 0 THEN coalesce(i.idle_ns, 0) END::DOUBLE,
           _hl_no_gpu(s.step_kind)
    FROM _step_caps s JOIN _causes c USING (trace, step_kind)
    LEFT JOIN _idle i ON i.trace = s.trace AND i.step_index = s.step_index AND i.cause = c.cause
) WHERE row_order IN (1, 3) OR trace NOT IN (SELECT trace FROM caps WHERE NOT (has_gpu OR has_runtime OR has_sync));

-- Per (trace, step kind) sums: the numerators and denominators of the verdicts.
CREATE OR REPLACE TEMP TABLE _hl_kind AS
SELECT s.trace, s.step_kind, count(*) AS n, sum(s.wall_ns) AS wall, sum(s.end_to_end_ns) AS e2e,
       sum(s.gpu_span_dev_ns) AS span, sum(s.e2e_dev_ns) AS e2e_dev, sum(s.gpu_busy_ns) AS busy,
       sum(s.gpu_idle_ns) AS idle, sum(s.gpu_other_ns) AS other, sum(s.gpu_op_ns) AS op, sum(s.gpu_ops) AS ops,
       sum(s.launches) AS launches, sum(s.launch_host_ns) AS launch_host, sum(s.graph_launches) AS glaunches,
       sum(s.graph_launch_host_ns) AS glaunch_host, sum(s.graph_nodes) AS gnodes, sum(s.graph_node_ns) AS gnode_ns,
       sum(s.sync_calls) AS syncs, sum(s.sync_stall_ns) AS stall,
       any_value(k.has_runtime) AS has_runtime, any_value(k.has_sync) AS has_sync,
       NOT any_value(k.has_gpu OR k.has_runtime OR k.has_sync) AS no_gpu_activity,
       any_value(k.capture_activities) AS acts
FROM steps_rows s JOIN caps k USING (trace) GROUP BY ALL;

-- @output headline
-- @column trace     TEXT      the trace (input file name) the row is about
-- @column step_kind TEXT      the kind of step (steps.sql: the step name with per-step fields dropped)
-- @column steps     COUNT     steps of the kind
-- @column row_order ID        display order of the rows (integer)
-- @column metric    TEXT      what the row measures (metric names of lib/run_metrics.sql or columns of steps)
-- @column unit      TEXT      the unit of the row's values: ns | count | share
-- @column mean      VALUE     mean over the steps, in the row's unit
-- @column p50       VALUE     median over the steps, in the row's unit
-- @column p99       VALUE     99th percentile over the steps, in the row's unit
-- @column note      NOTE      why a value of the row is NULL or what to keep in mind reading it
SELECT v.trace, v.step_kind,
       (SELECT count(*) FROM steps_rows s WHERE s.trace = v.trace AND s.step_kind = v.step_kind) AS steps,
       v.row_order, v.metric, v.unit,
       list_avg(list(v.v ORDER BY v.v)) AS mean,  -- summed in value order: the same last bit on any thread count
       quantile_cont(v.v, 0.5) AS p50, quantile_cont(v.v, 0.99) AS p99,
       CASE WHEN count(v.v) = 0 THEN any_value(v.note) END AS note
FROM _hl_vals v
GROUP BY v.trace, v.step_kind, v.row_order, v.metric, v.unit
ORDER BY v.trace, v.step_kind, v.row_order;

-- @output phase_tree
-- @column trace            TEXT      the trace (input file name) the row is about
-- @column step_kind        TEXT      the kind of step (steps.sql: the step name with per-step fields dropped)
-- @column row_order        ID        display order of the rows (integer, depth-first)
-- @column depth            ID        0 = top level inside the step
-- @column phase            TEXT      the phase (a range name; '(other)' = directly in the step, in no phase
--                                    of it)
-- @column phase_path       TEXT      the '/'-joined names of the ranges around the row ('(none)' outside
--                                    every range)
-- @column excl_cpu_ns_mean DURATION  mean per step of the phase's CPU time outside its child phases
-- @column excl_cpu_ns_p50  DURATION  median per step of the phase's CPU time outside its child phases
-- @column excl_cpu_ns_p99  DURATION  99th percentile per step of the phase's CPU time outside its child
--                                    phases
-- @column incl_cpu_ns_mean DURATION  mean per step of the phase's CPU time, child phases included
-- @column excl_gpu_ns_mean DURATION  mean per step of the GPU op time launched in the phase outside its child
--                                    phases
-- @column incl_gpu_ns_mean DURATION  mean per step of the GPU op time launched in the phase, child phases
--                                    included
-- @column excl_cpu_share   SHARE     sum excl_cpu_ns / sum CPU span (over the kind's steps)
-- @column excl_gpu_share   SHARE     sum excl_gpu_ns / sum GPU op time (NULL when the kind ran no GPU op)
-- @column instances_mean   NUMBER    ranges or module intervals with exactly this path on the step's thread,
--                                    per step; NULL for '(other)'
-- @column phase_source     TEXT      'range' | 'module' | 'frame', comma-separated when several; NULL for
--                                    '(other)'
SELECT trace, step_kind, row_order, depth, phase, phase_path, excl_cpu_ns_mean, excl_cpu_ns_p50, excl_cpu_ns_p99,
       incl_cpu_ns_mean, excl_gpu_ns_mean, incl_gpu_ns_mean, excl_cpu_share, excl_gpu_share, instances_mean,
       phase_source
FROM _hl_tree ORDER BY trace, step_kind, row_order;

-- @output verdicts
-- @column trace          TEXT      the trace (input file name) the row is about
-- @column step_kind      TEXT      the kind of step (steps.sql: the step name with per-step fields dropped)
-- @column rank           ID        the verdict's place (1..6)
-- @column verdict        TEXT      one sentence, its numbers formatted in ms/us/%
-- @column numerator_ns   DURATION  the time the verdict's share counts
-- @column denominator_ns DURATION  the time it is a share of
-- @column numerator      TEXT      what numerator_ns counts
-- @column denominator    TEXT      what denominator_ns is
WITH _idle_causes AS (  -- idle causes per kind, over the steps' end-to-end windows
    SELECT s.trace, s.step_kind, i.cause, sum(i.idle_ns) AS idle_ns
    FROM _hl_idle i JOIN steps_rows s USING (trace, step_index) GROUP BY ALL
), _top_host_phase AS (  -- the host phase of the most idle time the host caused
    SELECT * FROM (SELECT s.trace, s.step_kind, i.host_phase, sum(i.idle_ns) AS idle_ns
                   FROM _hl_idle i JOIN steps_rows s USING (trace, step_index)
                   WHERE i.cause IN ('launch_bound', 'host_busy', 'sync_blocked')
                   GROUP BY s.trace, s.step_kind, i.host_phase)
    QUALIFY row_number() OVER (PARTITION BY trace, step_kind ORDER BY idle_ns DESC, host_phase) = 1
), _idle AS (  -- the split: causes of at least 0.1% of the window, largest first, the first one explained
    SELECT k.trace, k.step_kind,
           string_agg(_hl_pct(c.idle_ns, k.e2e_dev) || ' ' || c.cause
                      || CASE WHEN c.r = 1 THEN coalesce(' (' || _hl_cause_gloss(c.cause) || ')', '') ELSE '' END,
                      ', ' ORDER BY c.r) FILTER (WHERE c.idle_ns >= 0.001 * k.e2e_dev) AS split,
           first(c.cause ORDER BY c.r) AS top_cause
    FROM _hl_kind k
    JOIN (SELECT *, row_number() OVER (PARTITION BY trace, step_kind ORDER BY idle_ns DESC, cause) AS r
          FROM _idle_causes) c
      USING (trace, step_kind)
    GROUP BY k.trace, k.step_kind
), _top_cpu_phase AS (  -- the largest exclusive phase, CPU and GPU
    SELECT t.trace, t.step_kind, t.phase_path, t.s_excl_cpu, o.s_excl_cpu AS other_cpu FROM _hl_tree t
    JOIN _hl_tree o ON o.trace = t.trace AND o.step_kind = t.step_kind AND o.phase_path = '(other)'
    WHERE t.phase_path <> '(other)'
    QUALIFY row_number() OVER (PARTITION BY t.trace, t.step_kind ORDER BY t.s_excl_cpu DESC, t.phase_path) = 1
), _top_gpu_phase AS (
    SELECT trace, step_kind, phase_path, s_excl_gpu FROM _hl_tree WHERE k_gpu > 0 AND phase_path <> '(other)'
    QUALIFY row_number() OVER (PARTITION BY trace, step_kind ORDER BY s_excl_gpu DESC, phase_path) = 1
), _step_syncs AS (  -- blocking calls in the kind's steps, with what the GPU did meanwhile (syncs.sql syncs_during)
    SELECT s.trace, s.step_kind, r.name AS api, steps_rel_phase(r.phase_path, s.phase_path) AS phase, r.dur_ns,
           d.gpu_ops_during, d.gpu_busy_during_ns, d.unlaunched_ops_during, d.unlaunched_ns_during,
           steps_rel_phase(d.launched_from[1], s.phase_path) AS launched_from, d.waiting_on,
           regexp_replace(f.user_frame, '^.*/(site|dist)-packages/', '') AS frame
    FROM (SELECT r.*, CASE WHEN o.one_thread THEN -1 ELSE r.tid END AS k_tid
          FROM runtime_calls r JOIN step_instances_one_thread o USING (trace) WHERE r.blocking) r
    ASOF JOIN step_instances s ON r.trace = s.trace AND r.k_tid = s.k_tid AND r.ts_ns >= s.ts_ns
    LEFT JOIN syncs_during d ON d.trace = r.trace AND d.row_id = r.row_id
    LEFT JOIN frames_runtime f ON f.trace = r.trace AND f.row_id = r.row_id
    WHERE r.ts_ns < s.end_ns
), _sync_per_kind AS (  -- per kind: the (api, phase) with most of the stall, what the GPU did during all the calls
    SELECT trace, step_kind, first(api ORDER BY ns DESC, api, phase) AS api,
           first(phase ORDER BY ns DESC, api, phase) AS phase,
           sum(ops) AS ops, sum(busy) AS busy, sum(u_ops) AS u_ops, sum(u_ns) AS u_ns,
           first(launched_from ORDER BY ns DESC, api, phase) AS launched_from,
           first(waiting_on ORDER BY ns DESC, api, phase) AS waiting_on,
           first(frame ORDER BY ns DESC, api, phase) AS frame
    FROM (SELECT trace, step_kind, api, phase, sum(dur_ns) AS ns, sum(gpu_ops_during) AS ops,
                 sum(gpu_busy_during_ns) AS busy,
                 sum(unlaunched_ops_during) AS u_ops, sum(unlaunched_ns_during) AS u_ns,
                 first(launched_from ORDER BY dur_ns DESC) AS launched_from,
                 first(waiting_on ORDER BY dur_ns DESC) AS waiting_on,
                 first(frame ORDER BY dur_ns DESC) AS frame
          FROM _step_syncs GROUP BY trace, step_kind, api, phase)
    GROUP BY trace, step_kind
), _verdicts(trace, step_kind, prio, size_ns, verdict, numerator_ns, denominator_ns, numerator, denominator) AS (
    -- 1: the step as its user lives it, GPU side: idle and busy over the end-to-end window
    SELECT k.trace, k.step_kind, 1, 0,
           CASE WHEN k.no_gpu_activity THEN upper(notes_no_gpu_activity(k.acts)[1]) || notes_no_gpu_activity(k.acts)[2:]
                WHEN coalesce(k.ops, 0) = 0 THEN 'GPU idle unknown: ' || _hl_no_gpu(k.step_kind)
                ELSE 'GPU idle ' || _hl_pct(k.idle, k.e2e_dev)
                     || CASE WHEN step_instances_whole(k.step_kind) THEN ' of the trace window ('
                             ELSE ' of the step end to end (' END
                     || _hl_t(k.idle / k.n) || ' of '
                     || _hl_t(k.e2e_dev / k.n) || _hl_per(k.step_kind, k.n) || ')' || coalesce(': ' || i.split, '')
                     || CASE WHEN i.top_cause IN ('launch_bound', 'host_busy', 'sync_blocked')
                                  AND h.host_phase IS NOT NULL
                             THEN '; the host was ' || _hl_where(h.host_phase) ELSE '' END
                     || '. GPU busy ' || _hl_pct(k.busy, k.e2e_dev)
                     || CASE WHEN step_instances_whole(k.step_kind) THEN ' with ops launched in the trace'
                             ELSE ' with the step''s ops' END
                     || CASE WHEN k.other >= 0.001 * k.e2e_dev
                             THEN ', ' || _hl_pct(k.other, k.e2e_dev) || ' (' || _hl_t(k.other / k.n)
                                  || ') with other work'
                                  || CASE WHEN coalesce(y.u_ns, 0) >= 0.5 * k.other
                                          THEN ' launched before the trace window'
                                          WHEN step_instances_whole(k.step_kind)
                                          THEN ' (ops launched by other threads)'
                                          ELSE ' (ops launched outside the step)' END
                             ELSE '' END END,
           CASE WHEN k.ops > 0 THEN k.idle END, CASE WHEN k.ops > 0 THEN k.e2e_dev END,
           CASE WHEN step_instances_whole(k.step_kind) THEN 'GPU idle inside the trace window'
                ELSE 'GPU idle inside the steps'' end-to-end windows' END,
           CASE WHEN step_instances_whole(k.step_kind)
                THEN 'trace window (first event to last), per device, summed over the processes'
                ELSE 'end-to-end span (step start to its last GPU op''s end, per device, summed over steps)' END
    FROM _hl_kind k LEFT JOIN _idle i USING (trace, step_kind) LEFT JOIN _top_host_phase h USING (trace, step_kind)
    LEFT JOIN _sync_per_kind y USING (trace, step_kind)
    UNION ALL  -- 2: problems, largest first
    SELECT trace, step_kind, 2, e2e - wall,
           'Asynchronous: GPU work ends ' || _hl_t((e2e - wall) / n)
           || ' per step after the CPU range closes (end-to-end '
           || _hl_t(e2e / n) || ' vs CPU span ' || _hl_t(wall / n) || ', x' || printf('%.1f', e2e / wall) || ')',
           e2e, wall, 'end-to-end span (step start to last GPU end)', 'CPU span (step range)'
    FROM _hl_kind WHERE wall > 0 AND e2e > 1.05 * wall
    UNION ALL
    SELECT k.trace, k.step_kind, CASE WHEN NOT has_sync THEN 4 WHEN coalesce(stall, 0) = 0 THEN 3 ELSE 2 END,
           coalesce(stall, 0),
           CASE WHEN NOT has_sync THEN 'Sync stalls unknown: ' || notes_no_sync_captured()
                WHEN coalesce(stall, 0) = 0
                THEN 'No blocking sync call ' || CASE WHEN step_instances_whole(k.step_kind) THEN 'in the trace'
                                                     ELSE 'inside these steps' END || ' (sync calls were captured)'
                ELSE 'Host blocked ' || _hl_t(stall / n) || _hl_per(k.step_kind, n) || ' in '
                     || _hl_count(syncs / n, 'blocking sync call')
                     || ' (' || _hl_pct(stall, wall) || ' of ' || _hl_span(k.step_kind) || '), mostly ' || y.api || ' '
                     || _hl_where(y.phase)
                     || coalesce(' at ' || y.frame, '')
                     || CASE WHEN y.waiting_on IS NOT NULL THEN '; the GPU sat idle meanwhile: ' || y.waiting_on
                             WHEN coalesce(y.ops, 0) = 0 THEN ''
                             ELSE '; meanwhile the GPU ran ' || _hl_count(y.ops / n, 'op')
                                  || ' (' || _hl_t(y.busy / n) || ')'
                                  || CASE WHEN y.u_ops = y.ops
                                          THEN ', none launched in the trace (launched before the trace window opened)'
                                          WHEN y.u_ops > 0
                                          THEN ', ' || _hl_n(y.u_ops / n) || ' of them (' || _hl_t(y.u_ns / n)
                                               || ') launched before the trace window opened'
                                          ELSE '' END
                                  || CASE WHEN y.launched_from IS NULL OR y.u_ops = y.ops THEN ''
                                          WHEN y.u_ops > 0 THEN ', the others launched ' || _hl_where(y.launched_from)
                                          ELSE ', launched ' || _hl_where(y.launched_from) END END END,
           CASE WHEN has_sync THEN coalesce(stall, 0) END, CASE WHEN has_sync THEN wall END,
           'host time in blocking sync calls', _hl_cpu_den(k.step_kind)
    FROM _hl_kind k LEFT JOIN _sync_per_kind y USING (trace, step_kind) WHERE NOT k.no_gpu_activity
    UNION ALL
    SELECT trace, step_kind, CASE WHEN has_runtime THEN 2 ELSE 4 END, coalesce(launch_host + glaunch_host, 0),
           CASE WHEN NOT has_runtime THEN 'Launch counts unknown: ' || notes_no_runtime_rows()
                ELSE 'Launch calls take ' || _hl_t((launch_host + glaunch_host) / n) || _hl_per(step_kind, n) || ' ('
                     || _hl_pct(launch_host + glaunch_host, wall) || ' of ' || _hl_span(step_kind) || '): '
                     || _hl_count(launches / n, 'kernel launch')
                     || coalesce(', mean ' || _hl_t(launch_host / nullif(launches, 0)), '')
                     || CASE WHEN glaunches > 0 THEN ', and ' || _hl_count(glaunches / n, 'graph launch') || ' ('
                                                     || _hl_t(glaunch_host / n) || ')' ELSE '' END END,
           CASE WHEN has_runtime THEN launch_host + glaunch_host END, CASE WHEN has_runtime THEN wall END,
           'host time in kernel and graph launch calls', _hl_cpu_den(step_kind)
    FROM _hl_kind WHERE NOT no_gpu_activity
    UNION ALL  -- 3: where the time went, by phase; graphs
    SELECT k.trace, k.step_kind, 3, t.s_excl_cpu,
           'Largest CPU phase: `' || t.phase_path || '`, ' || _hl_t(t.s_excl_cpu / k.n) || _hl_per(k.step_kind, k.n)
           || ' (' || _hl_pct(t.s_excl_cpu, k.wall) || ' of ' || _hl_span(k.step_kind)
           || ', exclusive of its children; ' || _hl_pct(t.other_cpu, k.wall) || ' is outside any annotated phase)',
           t.s_excl_cpu, k.wall, 'exclusive CPU time of `' || t.phase_path || '`', _hl_cpu_den(k.step_kind)
    FROM _hl_kind k JOIN _top_cpu_phase t USING (trace, step_kind) WHERE k.wall > 0 AND t.s_excl_cpu >= 0.05 * k.wall
    UNION ALL
    SELECT trace, step_kind, 3, gnode_ns,
           'CUDA graphs: ' || _hl_pct(gnode_ns, op) || ' of GPU op time replayed (' || _hl_count(gnodes / n, 'node')
           || ' from ' || _hl_count(glaunches / n, 'graph launch') || _hl_per(step_kind, n) || ')',
           gnode_ns, op, 'duration of GPU ops replayed by graph launches',
           'GPU op time (kernels, copies, memsets) of the steps'
    FROM _hl_kind WHERE gnodes > 0 AND op > 0
    UNION ALL
    SELECT k.trace, k.step_kind, 3, t.s_excl_gpu,
           'Largest GPU phase: `' || t.phase_path || '`, ' || _hl_t(t.s_excl_gpu / k.n) || _hl_per(k.step_kind, k.n)
           || ' (' || _hl_pct(t.s_excl_gpu, k.op) || ' of GPU op time)',
           t.s_excl_gpu, k.op, 'GPU op time launched in `' || t.phase_path || '`',
           'GPU op time (kernels, copies, memsets) of the steps'
    FROM _hl_kind k JOIN _top_gpu_phase t USING (trace, step_kind) WHERE t.s_excl_gpu >= 0.05 * k.op
)
SELECT trace, step_kind, rank::INTEGER AS rank, verdict, numerator_ns::DOUBLE AS numerator_ns,
       denominator_ns::DOUBLE AS denominator_ns, numerator, denominator
FROM (SELECT *, row_number() OVER (PARTITION BY trace, step_kind ORDER BY prio, size_ns DESC, verdict) AS rank
      FROM _verdicts)
WHERE rank <= 6
ORDER BY trace, step_kind, rank;

-- @output notes
-- @column trace    TEXT      the trace (input file name) the row is about
-- @column severity TEXT      'warn' | 'info'
-- @column source   TEXT      'converter' | analysis name
-- @column message  NOTE      the note itself: what happened and what it changes
WITH _traces AS (SELECT trace FROM trace_window UNION SELECT trace FROM trace_notes),
_top AS (  -- top-level ranges (no enclosing range) of the traces without steps
    SELECT trace, name FROM ranges WHERE phase_path = name AND trace NOT IN (SELECT trace FROM step_instances_matched)
), _once AS (SELECT trace, name FROM _top GROUP BY ALL HAVING count(*) = 1),
_cand AS (  -- top-level ranges, and repeated ranges directly inside a top-level range that occurs once (a loop
            -- wrapper: power_iteration's `Step 190 to 200` in `Loop`); names with digits folded, by frequency
    SELECT * FROM (SELECT trace, regexp_replace(name, '[0-9]+', 'N', 'g') AS name, count(*) AS n
                   FROM (SELECT trace, name FROM _top
                         UNION ALL
                         SELECT r.trace, r.name FROM ranges r JOIN _once o
                           ON r.trace = o.trace AND r.phase_path = o.name || '/' || r.name)
                   GROUP BY ALL)
    WHERE n > 1 OR name IN (SELECT regexp_replace(name, '[0-9]+', 'N', 'g') FROM _top)
    QUALIFY row_number() OVER (PARTITION BY trace ORDER BY n DESC, name) <= 8
)
SELECT trace, 'warn' AS severity, 'converter' AS source, note AS message FROM trace_notes
UNION ALL
SELECT t.trace, 'warn', 'steps',
       'no step matched the step pattern'  -- a long pattern (the default) is not spelt out: README/--help has it
       || CASE WHEN length(getvariable('step_pattern')) <= 60 THEN ' ' || getvariable('step_pattern') ELSE '' END
       || '; candidates: '
       || coalesce((SELECT string_agg(c.name || ' (' || c.n || ')', ', ' ORDER BY c.n DESC, c.name)
                    FROM _cand c WHERE c.trace = t.trace), 'none (the trace has no range)')
       || ': the numbers are over the whole trace; pass --step-pattern, or mark the loop with tracekit.phase("step")'
FROM _traces t WHERE t.trace NOT IN (SELECT trace FROM step_instances_matched)
ORDER BY 1, 3, 4;

-- @output idle
-- @column trace      TEXT      the trace (input file name) the row is about
-- @column step_kind  TEXT      the kind of step (steps.sql: the step name with per-step fields dropped)
-- @column step_index ID        the step's number in its trace (1.. in time order)
-- @column cause      TEXT      the idle cause (gpu_idle.sql's rules)
-- @column idle_ns    DURATION  the step's GPU idle time of that cause, inside the step's GPU span
SELECT h.trace, s.step_kind, h.step_index, h.cause, sum(h.idle_ns)::BIGINT AS idle_ns
FROM _hl_idle h JOIN steps_rows s USING (trace, step_index)
GROUP BY ALL
ORDER BY h.trace, h.step_index, idle_ns DESC, h.cause;
