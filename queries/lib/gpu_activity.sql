-- lib/gpu_activity: one row per GPU op (gpu_activity), its category and class, and the GPU each device id is.
-- @requires lib/api
-- @param kernel_categories_csv TEXT - the kernel category table, queries/kernel_categories.csv
--     (tracekit.report.prepare sets its path: a data file shipped with the SQL)
--
-- Materialised once per connection so that each analysis scans the Parquet once.
-- Inputs: views `kernels`, `events` (cpu_op rows), `trace_devices` (tracekit.store.connect); the
-- variable kernel_categories_csv (tracekit.report.prepare: queries/kernel_categories.csv).
-- Public (temp tables and a macro):
--   gpu_activity     one row per GPU op (kind kernel/memcpy/memset): trace, kind, name, ts_ns, dur_ns,
--            end_ns, device, stream, correlation, phase, phase_path ('(none)' when NULL),
--            launch_name/ts/dur/tid, copy_kind, graph (TRUE when replayed by a *GraphLaunch),
--            op_class ('compute' | 'communication' | 'memory'), category (the rule below), launched_op (the
--            enclosing cpu_op a category row's launched_by matched, else NULL), row_id (the converter's row id,
--            unique per trace: the last key of every ORDER BY that could tie, so that results do
--            not depend on row order or on the other traces of a dataset), gid (a join key
--            unique over the dataset but not stable: window functions sort narrow columns and
--            join the strings back on it; never sort on it).
--   gpu_activity_categories  the category table (kernel_categories.csv: ord, category, op_kind, pattern,
--            launched_by, example, example_op, source, library); gpu_activity_names  one row per distinct (kind, name):
--            its category by name alone, op_class and library (communication only); _cat_ops, _gpu_launch_op,
--            _gpu_op_cats (below).
--   gpu_activity_devices per trace and op device id: gpu_index (trace_devices.gpu_index; the id itself when the trace
--            lists no GPU) and gpu, the label every line and page prints ('GPU 0'; 'GPU ? (agent 9)' for a
--            ROCm agent id no listed GPU is known to be; 'GPU ?' for ops with no device id).

-- Every GPU op has ONE category, from the table in kernel_categories.csv (beside this file; its path is
-- getvariable('kernel_categories_csv'), set by tracekit.report.prepare): the first row (by `ord`) whose
-- `kind` is the op's kind (kernel | memcpy | memset), whose `pattern` (an RE2 regex, matched anywhere in
-- the name as the trace wrote it, mangled or not) matches, and, for a row with a `launched_by` pattern, whose
-- launching op matches it: a cpu_op of that name encloses the launch call on the launching thread (any
-- level up: fb::rms_norm > aten::pow > cudaLaunchKernel counts for fb::rms_norm). Graph-replayed ops and
-- ops without a launch record have no launching op: only their name decides. The categories: memcpy,
-- memset, communication (one row per library, named in the `library` column: NCCL/RCCL/HCCL, DeepEP,
-- NVSHMEM, mscclpp, userbuffers, the custom all-reduce kernels of vLLM/SGLang/AITER and of
-- TensorRT-LLM/FlashInfer, kernels named all_to_all/all_gather/reduce_scatter), GEMM, MoE, KV-cache write,
-- sampling, norm, rotary, activation, attention, conv, reduction, elementwise, other (the last row matches
-- every kernel). Row order decides between families a name could belong to (a FlashAttention kernel's
-- template names cutlass::bfloat16_t: attention comes before GEMM's `cutlass`). Each row's example is a
-- real kernel name (tests/test_kernel_categories.py checks that it lands in its row).
-- gpu_activity_names: one row per distinct (kind, name) of the trace set: its category by name alone (rows without
-- launched_by), its op_class (memory: memcpy/memset; communication: category communication; compute:
-- every other kernel; comm.sql's classes, HTA's kernel types where HTA knows only NCCL names) and, for
-- communication, its library: the one declaration of what is communication (comm.sql and collectives.sql read
-- op_class; comm.sql also names the libraries).
-- _cat_ops: cpu_ops whose name matches some launched_by pattern (trace, tid, ts_ns, end_ns, name), the
-- candidates for a GPU op's launching op.
CREATE OR REPLACE TEMP TABLE gpu_activity_categories AS
SELECT ord, category, kind AS op_kind, pattern, coalesce(launched_by, '') AS launched_by, example, example_op, source,
       library
FROM read_csv(getvariable('kernel_categories_csv'), header = true, auto_detect = false, quote = '"', escape = '"',
              columns = {'ord': 'INTEGER', 'category': 'VARCHAR', 'kind': 'VARCHAR', 'pattern': 'VARCHAR',
                         'launched_by': 'VARCHAR', 'example': 'VARCHAR', 'example_op': 'VARCHAR', 'source': 'VARCHAR',
                         'library': 'VARCHAR'});
-- The category of one (kind, name, launching op or NULL) (ad-hoc use:
-- `SELECT gpu_activity_category('kernel', 'ampere_sgemm_64x64_nn', NULL)`).
CREATE OR REPLACE TEMP MACRO gpu_activity_category(k, n, o) AS coalesce((
    SELECT c.category FROM gpu_activity_categories c
    WHERE c.op_kind = k AND regexp_matches(coalesce(n, ''), c.pattern)
      AND (c.launched_by = '' OR (o IS NOT NULL AND regexp_matches(o, c.launched_by)))
    ORDER BY c.ord LIMIT 1), 'other');
CREATE OR REPLACE TEMP TABLE gpu_activity_names AS
WITH _names AS (SELECT DISTINCT kind, name FROM kernels), _categorized AS (
    SELECT n.kind, n.name, coalesce(arg_min(c.category, c.ord), 'other') AS category,
           arg_min(c.library, c.ord) AS library
    FROM _names n LEFT JOIN gpu_activity_categories c
      ON c.op_kind = n.kind AND c.launched_by = '' AND regexp_matches(coalesce(n.name, ''), c.pattern)
    GROUP BY n.kind, n.name
)
SELECT kind, name, category,
       CASE WHEN kind <> 'kernel' THEN 'memory' WHEN category = 'communication' THEN 'communication'
            ELSE 'compute' END AS op_class,
       CASE WHEN category = 'communication' THEN library END AS library
FROM _categorized;
CREATE OR REPLACE TEMP TABLE _cat_ops AS
WITH _op_names AS (
    SELECT DISTINCT o.name FROM (SELECT DISTINCT name FROM events WHERE kind = 'cpu_op') o
    JOIN gpu_activity_categories c ON c.launched_by <> '' AND regexp_matches(o.name, c.launched_by)
)
SELECT e.trace, e.tid, e.ts_ns, e.ts_ns + greatest(e.dur_ns, 0) AS end_ns, e.name
FROM events e WHERE e.kind = 'cpu_op' AND e.name IN (SELECT name FROM _op_names);
-- Per GPU op with a launch record: the latest-starting candidate op on the launching thread that started
-- at or before the launch; it is the launching op when it still runs at the launch (candidates do not
-- interleave: a norm op does not start inside another and end outside it).
CREATE OR REPLACE TEMP TABLE _gpu_launch_op AS
WITH _launches AS (SELECT trace, row_id, launch_tid, launch_ts_ns FROM kernels
            WHERE kind = 'kernel' AND launch_ts_ns IS NOT NULL AND (SELECT count(*) FROM _cat_ops) > 0)
SELECT l.trace, l.row_id, CASE WHEN l.launch_ts_ns < o.end_ns THEN o.name END AS launched_op
FROM _launches l ASOF JOIN _cat_ops o ON l.trace = o.trace AND l.launch_tid = o.tid AND l.launch_ts_ns >= o.ts_ns;
-- The category of each distinct (kind, name, launching op) (op NULL: by name, as gpu_activity_names).
CREATE OR REPLACE TEMP TABLE _gpu_op_cats AS
WITH _launched_names AS (SELECT DISTINCT kind, name, launched_op FROM _gpu_launch_op JOIN kernels USING (trace, row_id)
            WHERE launched_op IS NOT NULL)
SELECT kind, name, launched_op, gpu_activity_category(kind, name, launched_op) AS category FROM _launched_names;

CREATE OR REPLACE TEMP TABLE gpu_activity AS
SELECT trace, kind, name, ts_ns, greatest(dur_ns, 0) AS dur_ns, ts_ns + greatest(dur_ns, 0) AS end_ns,
       coalesce(device, -1) AS device, stream, correlation, phase,
       coalesce(phase_path, '(none)') AS phase_path,
       launch_name, launch_ts_ns, launch_dur_ns, launch_tid, copy_kind,
       api_is_graph_launch(launch_name) AS graph, coalesce(c.op_class, 'compute') AS op_class,
       coalesce(oc.category, c.category, 'other') AS category, lo.launched_op, row_id,
       row_number() OVER () AS gid
FROM kernels k LEFT JOIN gpu_activity_names c USING (kind, name)
LEFT JOIN _gpu_launch_op lo USING (trace, row_id)
LEFT JOIN _gpu_op_cats oc USING (kind, name, launched_op);

-- The GPU of each op device id, named as tracekit info and the HTML timeline name it (trace_devices.gpu_index).
CREATE OR REPLACE TEMP TABLE gpu_activity_devices AS
WITH _indexed AS (
    SELECT g.trace, g.device,
           CASE WHEN NOT EXISTS (SELECT 1 FROM trace_devices d WHERE d.trace = g.trace) THEN g.device
                ELSE (SELECT max(d.gpu_index) FROM trace_devices d WHERE d.trace = g.trace AND d.device = g.device)
           END AS gpu_index
    FROM (SELECT DISTINCT trace, device FROM gpu_activity) g
)
SELECT trace, device, gpu_index,
       CASE WHEN device < 0 THEN 'GPU ?' WHEN gpu_index IS NOT NULL THEN 'GPU ' || gpu_index
            ELSE 'GPU ? (agent ' || device || ')' END AS gpu
FROM _indexed;
