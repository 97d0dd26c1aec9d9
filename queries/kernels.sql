-- kernels: which GPU ops take the GPU time?
-- @requires steps lib/gpu_activity lib/kernel_names
-- @param top_n COUNT 50 --top rows of the kernels table per trace (the rest folded into one '(other ops)' row),
--     of flops' ops table and of diff's moved kernels
--
-- Run it with `tracekit report` (or tracekit.report.run): that loads the modules on its @requires line first and sets
-- every getvariable() parameter to its default (its @param line; docs/queries.md).
--
-- Top GPU ops (kernels, memcpys, memsets) by total time, per trace. Rows are grouped by
-- (trace, kind, name); time is summed op duration (overlapping ops on different streams are
-- each counted in full, like nsys `cuda_gpu_kern_sum` and HTA's per-kernel table).
--
-- Inputs: gpu_activity, gpu_activity_names, gpu_activity_categories (queries/lib/); steps_gpu, steps_rows,
-- steps_rel_phase (steps.sql); kernel_names (lib/kernel_names.sql). top_n rows are kept per trace; the rest are folded
-- into one row named '(other ops)' so the shares still add up to 1.
--
-- Output `kernels` (one row per op name, ordered by total_ns descending):
--
-- How to read: share is a fraction of summed GPU op time, not of wall time; use gpu_idle for
-- wall-clock busy/idle shares.
--
-- Output `categories`: where a step's GPU op time goes by kernel category. One row per trace, step kind
-- and category with ops in it; the GPU ops launched in steps (steps.sql's rule: the launching call started
-- in the step, on its thread) count for the step's kind; GPU ops launched in no step, or with no launch
-- record, count under step_kind '(outside steps)' (a trace with no step has only those), so the rows of a
-- trace add up to all its GPU op time.
--   trace, step_kind, category
-- Ordered by trace, step_kind, total_ns descending, category.
-- Output `category_phases`: the same per phase of the step (phase relative to the step holding the launch,
--   as steps.phases: '(other)' = directly in the step, in no phase of it): trace, step_kind, phase, category,
--   phase_gpu_op_ns (DENOMINATOR: every GPU op of the phase in the kind's steps). In-step ops only.

-- Each GPU op with its step kind and phase (NULL phase: outside steps).
CREATE OR REPLACE TEMP TABLE _kc_ops AS
SELECT g.trace, g.kind, g.name, g.category, g.dur_ns, g.graph,
       coalesce(r.step_kind, '(outside steps)') AS step_kind,
       CASE WHEN s.gid IS NOT NULL THEN steps_rel_phase(s.phase_path, s.step_path) END AS phase
FROM gpu_activity g
LEFT JOIN steps_gpu s USING (gid)
LEFT JOIN steps_rows r ON r.trace = s.trace AND r.step_index = s.step_index;

CREATE OR REPLACE TEMP TABLE _kc_kinds AS
SELECT trace, step_kind, count(*) AS steps FROM steps_rows GROUP BY ALL;

-- @output kernels
-- @column trace         TEXT      the trace (input file name) the row is about
-- @column name          TEXT      op name (kernel name as the source wrote it: the full name, mangled if it
--                                 was)
-- @column short_name    TEXT      the readable name (lib/kernel_names.sql: demangled, template noise dropped,
--                                 the tile sizes and the op that tell a family's kernels apart kept); NULL
--                                 for the folded row. The terminal and HTML show it in place of name (HTML:
--                                 the full name on hover)
-- @column category      TEXT      the op's category (kernel_categories.csv, lib/gpu_activity's gpu_activity.category);
--                                 when the launching op gives some of its executions another category (pow
--                                 under fb::rms_norm: norm, elsewhere: elementwise), the category of most of
--                                 its time (equal time: the first in text order); '(mixed)' for the folded
--                                 row
-- @column count         COUNT     number of executions
-- @column total_ns      DURATION  summed duration of those executions
-- @column share         SHARE     total_ns / gpu_op_ns_all
-- @column mean_ns       DURATION  total_ns / count
-- @column p50_ns        DURATION  median duration (an actual sample: quantile_disc)
-- @column max_ns        DURATION  longest execution
-- @column kind          TEXT      kernel | memcpy | memset ('(mixed)' for the folded row)
-- @column op_class      TEXT      compute | communication | memory (HTA's kernel types: NCCL names =
--                                 communication)
-- @column gpu_op_ns_all DURATION  denominator: summed duration of ALL GPU ops of the trace
-- @column graph_count   COUNT     executions replayed by a CUDA graph launch
-- @column phase_path    TEXT      the phase_path holding most of this op's time ('(none)' outside every
--                                 range); of phase_paths holding equal time, the first in text order (so the
--                                 choice never depends on row order)
-- @column phases        COUNT     how many distinct phase_paths launched this op
WITH _by_phase AS (
    SELECT trace, kind, name, phase_path, sum(dur_ns) AS ns
    FROM gpu_activity GROUP BY ALL
), _top_phase AS (
    SELECT trace, kind, name, first(phase_path ORDER BY ns DESC, phase_path) AS phase_path, count(*) AS phases
    FROM _by_phase GROUP BY ALL
), _main_category AS (  -- a name whose launching op changes some of its ops' category: the category of most of its time
    SELECT trace, kind, name, first(category ORDER BY ns DESC, category) AS category
    FROM (SELECT trace, kind, name, category, sum(dur_ns) AS ns FROM gpu_activity GROUP BY ALL) GROUP BY ALL
), _per_op AS (
    SELECT trace, kind, name, any_value(op_class) AS op_class, count(*) AS count, sum(dur_ns) AS total_ns,
           quantile_disc(dur_ns, 0.5) AS p50_ns, max(dur_ns) AS max_ns,
           count(*) FILTER (WHERE graph) AS graph_count
    FROM gpu_activity GROUP BY ALL
), _ranked AS (
    SELECT a.*, t.phase_path, t.phases, ct.category,
           sum(a.total_ns) OVER (PARTITION BY a.trace) AS gpu_op_ns_all,
           row_number() OVER (PARTITION BY a.trace ORDER BY a.total_ns DESC, a.name, a.kind) AS rk
    FROM _per_op a JOIN _top_phase t USING (trace, kind, name) JOIN _main_category ct USING (trace, kind, name)
)
SELECT r.trace, r.name, n.short_name, r.category, r.count, r.total_ns::BIGINT AS total_ns,
       r.total_ns / r.gpu_op_ns_all AS share, r.total_ns / r.count AS mean_ns, r.p50_ns, r.max_ns, r.kind, r.op_class,
       r.gpu_op_ns_all::BIGINT AS gpu_op_ns_all, r.graph_count, r.phase_path, r.phases
FROM _ranked r LEFT JOIN kernel_names n ON n.kind = r.kind AND n.name = r.name WHERE r.rk <= getvariable('top_n')
UNION ALL
SELECT trace, '(other ops)', NULL, '(mixed)', sum(count)::BIGINT, sum(total_ns)::BIGINT,
       sum(total_ns) / any_value(gpu_op_ns_all), sum(total_ns) / sum(count), NULL, max(max_ns), '(mixed)', '(mixed)',
       any_value(gpu_op_ns_all)::BIGINT, sum(graph_count)::BIGINT, NULL, NULL
FROM _ranked WHERE rk > getvariable('top_n')
GROUP BY trace
ORDER BY trace, total_ns DESC, kind, name;

-- @output categories
-- @column trace          TEXT      the trace (input file name) the row is about
-- @column step_kind      TEXT      the kind of step (steps.sql: the step name with per-step fields dropped)
-- @column category       TEXT      the op's category (kernel_categories.csv, lib/gpu_activity's gpu_activity.category);
--                                  when the launching op gives some of its executions another category (pow
--                                  under fb::rms_norm: norm, elsewhere: elementwise), the category of most of
--                                  its time (equal time: the first in text order); '(mixed)' for the folded
--                                  row
-- @column share          SHARE     total_ns / kind_gpu_op_ns
-- @column per_step_ns    DURATION  total_ns / steps (NULL outside steps)
-- @column ops            COUNT     GPU ops of the category
-- @column top_kernel     TEXT      short_name of the category's op with the most time in the kind (ties: the
--                                  first name)
-- @column total_ns       DURATION  their summed duration
-- @column steps          COUNT     steps of the kind (NULL for '(outside steps)')
-- @column graph_ops      COUNT     ops replayed by a CUDA/HIP graph launch
-- @column kind_gpu_op_ns DURATION  DENOMINATOR of share: summed duration of every GPU op (kernels, memcpys,
--                                  memsets) of the step kind (for a step kind: the sum of its steps'
--                                  steps.gpu_op_ns, headline's GPU op time (kernels, copies, memsets) times
--                                  steps); the categories of a kind add up to it exactly
-- @column note           NOTE      on rows with graph_ops: a graph replay launches many kernels in one call,
--                                  so no launching op tells them apart; the category from the kernel name is
--                                  the breakdown there is
WITH _per_category AS (
    SELECT trace, step_kind, category, count(*) AS ops, count(*) FILTER (WHERE graph) AS graph_ops,
           sum(dur_ns) AS total_ns
    FROM _kc_ops GROUP BY ALL
), _top_names AS (
    SELECT o.trace, o.step_kind, o.category,
           first(n.short_name ORDER BY o.ns DESC, o.name) AS top_kernel
    FROM (SELECT trace, step_kind, category, kind, name, sum(dur_ns) AS ns FROM _kc_ops GROUP BY ALL) o
    LEFT JOIN kernel_names n ON n.kind = o.kind AND n.name = o.name
    GROUP BY ALL
)
SELECT c.trace, c.step_kind, c.category,
       c.total_ns / nullif(sum(c.total_ns) OVER (PARTITION BY c.trace, c.step_kind), 0) AS share,
       c.total_ns / k.steps AS per_step_ns, c.ops, t.top_kernel, c.total_ns::BIGINT AS total_ns, k.steps, c.graph_ops,
       (sum(c.total_ns) OVER (PARTITION BY c.trace, c.step_kind))::BIGINT AS kind_gpu_op_ns,
       CASE WHEN c.graph_ops > 0
            THEN c.graph_ops || ' of these ops were replayed by CUDA/HIP graph launches: one launch '
            || 'runs many kernels, so no launching op tells them apart; inside a graph replay the category from the '
            || 'kernel name is the breakdown there is' END AS note
FROM _per_category c
LEFT JOIN _kc_kinds k USING (trace, step_kind)
LEFT JOIN _top_names t USING (trace, step_kind, category)
ORDER BY c.trace, c.step_kind = '(outside steps)', c.step_kind, c.total_ns DESC, c.category;

-- @output category_phases
-- @column trace           TEXT      the trace (input file name) the row is about
-- @column step_kind       TEXT      the kind of step (steps.sql: the step name with per-step fields dropped)
-- @column phase           TEXT      the phase (a range name; '(other)' = directly in the step, in no phase of
--                                   it)
-- @column category        TEXT      the op's category (kernel_categories.csv, lib/gpu_activity's
--                                   gpu_activity.category); when the launching op gives some of its executions another
--                                   category (pow under fb::rms_norm: norm, elsewhere: elementwise), the category of
--                                   most of its time (equal time: the first in text order); '(mixed)' for the folded
--                                   row
-- @column share           SHARE     total_ns / phase_gpu_op_ns
-- @column per_step_ns     DURATION  total_ns / steps of the kind
-- @column ops             COUNT     GPU ops of the category
-- @column total_ns        DURATION  summed duration of the category's ops in the phase
-- @column phase_gpu_op_ns DURATION  DENOMINATOR: every GPU op of the phase in the kind's steps
WITH _per_category AS (
    SELECT trace, step_kind, phase, category, count(*) AS ops, sum(dur_ns) AS total_ns
    FROM _kc_ops WHERE phase IS NOT NULL GROUP BY ALL
)
SELECT c.trace, c.step_kind, c.phase, c.category,
       c.total_ns / nullif(sum(c.total_ns) OVER (PARTITION BY c.trace, c.step_kind, c.phase), 0) AS share,
       c.total_ns / k.steps AS per_step_ns, c.ops, c.total_ns::BIGINT AS total_ns,
       (sum(c.total_ns) OVER (PARTITION BY c.trace, c.step_kind, c.phase))::BIGINT AS phase_gpu_op_ns
FROM _per_category c JOIN _kc_kinds k USING (trace, step_kind)
ORDER BY c.trace, c.step_kind, c.phase, c.total_ns DESC, c.category;
