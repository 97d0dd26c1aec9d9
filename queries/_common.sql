-- _common: private helpers shared by every analysis in queries/.
-- @param step_pattern REGEX 'ProfilerStep#\d+|step\[.*\]|step|decode_step|.*_step|execute_(\d+_)?context_\d+\([^()]*\)_generation_\d+\([^()]*\)|execute_new_\d+_cached_\d+'
--     regex (full match) for step range names: ProfilerStep#N, SGLang step[MODE bs=N ...], vLLM
--     execute_[B_]context_C(T)_generation_G(T) (T: any text without parentheses, e.g. (300), (888_788544),
--     (sq32sk55086...)) and execute_new_N_cached_M, and ranges named step / decode_step / *_step
-- @param kernel_categories_csv TEXT - the kernel category table, kernel_categories.csv beside this file
--     (tracekit.report.prepare sets its path: a data file shipped with the SQL)
--
-- Loaded once per connection by tracekit.report before any analysis file (files whose name
-- starts with `_` are helpers, not analyses). It defines macros that name API families (so
-- that "what is a sync call" has one definition) and materialises the GPU-op, runtime and
-- window tables every analysis reads, so that each analysis scans the Parquet once.
--
-- Inputs: views `events`, `kernels`, `runtime`, `ranges` (tracekit.store.connect).
-- Outputs (temp tables, private):
--   _gpu     one row per GPU op (kind kernel/memcpy/memset): trace, kind, name, ts_ns, dur_ns,
--            end_ns, device, stream, correlation, phase, phase_path ('(none)' when NULL),
--            launch_name/ts/dur/tid, copy_kind, graph (TRUE when replayed by a *GraphLaunch),
--            op_class ('compute' | 'communication' | 'memory'), category (the rule below), launched_op (the
--            enclosing cpu_op a category row's launched_by matched, else NULL), row_id (the converter's row id,
--            unique per trace: the last key of every ORDER BY that could tie, so that results do
--            not depend on row order or on the other traces of a dataset), gid (a join key
--            unique over the dataset but not stable: window functions sort narrow columns and
--            join the strings back on it; never sort on it).
--   _kernel_categories  the category table (kernel_categories.csv: ord, category, op_kind, pattern,
--            launched_by, example, example_op, source, library); _gpu_names  one row per distinct (kind, name):
--            its category by name alone, op_class and library (communication only); _cat_ops, _gpu_launch_op,
--            _gpu_op_cats (below).
--   _dev_gpu per trace and op device id: gpu_index (trace_devices.gpu_index; the id itself when the trace
--            lists no GPU) and gpu, the label every line and page prints ('GPU 0'; 'GPU ? (agent 9)' for a
--            ROCm agent id no listed GPU is known to be; 'GPU ?' for ops with no device id).
--   _rt      runtime rows with end_ns, phase_path ('(none)' when NULL), api_class (_api_classes
--            below) and flags is_sync (class blocking or stream_wait), blocking (class blocking:
--            the host waits in it), launched (>= 1 GPU op has its correlation).
--   _window  per trace: window_start_ns / window_end_ns / window_ns, the trace window
--            (earliest start to latest end over every timed row except metadata).
--   _steps   step instances: range rows whose name fully matches getvariable('step_pattern'),
--            innermost only when they nest; step_index (1.. in time order per trace), k_tid (-1
--            when all steps of the trace are on one thread: events of every thread are then
--            assigned to steps by time alone, else by thread). The name is parsed (_step_fields):
--              SGLang  step[MODE bs=N ...] (toks=T, raw_bs=, forward_id=, ... may follow):
--                      step_mode MODE, batch_size N, tokens T;
--                      step_kind 'step[MODE bs=N]' (other fields dropped: they vary per step)
--              vLLM    execute_[B_]context_C(CT)_generation_G(GT) (gpu_worker.annotate_profile):
--                      context_reqs C, context_tokens CT, generation_reqs G, generation_tokens GT,
--                      batch_size B (else C + G), tokens CT + GT, step_mode CONTEXT | GENERATION |
--                      MIXED | IDLE; step_kind 'execute_context_C_generation_G' (tokens dropped).
--                      CT / GT may be any text without parentheses (real traces: `(888_788544)`,
--                      `(sq32sk55086sqsq32sqsk55086)`): the step still matches and is parsed, but a
--                      part is a token count only when it is all digits, else NULL (and tokens
--                      NULL): such text is not one number, and no documented format says which
--                      of its numbers counts tokens
--                      older vLLM execute_new_N_cached_M: context_reqs N (new requests),
--                      generation_reqs M (cached), batch_size N + M, tokens NULL
--              other   (ProfilerStep#N, tracekit's step, decode_step, *_step): step_kind = the
--                      name with digits replaced by N; the parsed columns are NULL.
--   _one_thread  per trace: TRUE when all its steps are on one thread.
--   _gap_rows  GPU ops that start after every earlier op of their device has ended: gid, trace,
--            device, ts_ns, gap_start_ns (the latest end before them). The gaps between them are
--            the device's idle intervals inside its GPU window (union of all streams).
--   _busy_dev  per trace and device: first_ns, last_ns (GPU window) and busy_ns = window minus
--            those gaps, i.e. the length of the union of all GPU op intervals.
--   _idle_iv per trace and device, every idle interval of the trace window: gap_start_ns, gap_end_ns,
--            next_gid (the op that ends it; NULL for the trailing edge), edge (NULL: between ops,
--            'leading': before the device's first op, 'trailing': after its last).
--   _caps    per trace, what was captured: has_runtime (any runtime rows), has_sync (any sync API
--            call or gpu_sync row), has_gpu (any GPU op), capture_activities (what `tracekit capture` recorded,
--            e.g. 'CPU,CUDA'; NULL for other traces: view trace_capture). Analyses output NULL, not 0, for
--            numbers that need what is missing (trust.sql says why and how to capture it).
-- The sentence for a trace with no GPU activity at all, the one place it is worded (trust, headline).
CREATE OR REPLACE TEMP MACRO _no_gpu_activity(acts) AS 'no GPU activity in this run (no GPU op, no CUDA/HIP runtime call, no sync record): '
    || CASE WHEN contains(acts, 'CUDA') THEN 'the program ran nothing on a GPU (tracekit capture recorded CUDA activity)'
            WHEN acts IS NOT NULL THEN 'a CPU-only run (tracekit capture: this torch has no CUDA support)'
            ELSE 'a CPU-only run, or CUDA activity was not captured (Kineto activities=[CPU, CUDA], nsys --trace=cuda)' END;

-- Every CUDA/HIP runtime and driver API call has ONE class, from this table: the first row (by `ord`)
-- whose pattern fully matches the call's name, with a version or per-thread-stream suffix (_v2,
-- _v3, _ptsz, _ptds, _spt) ignored. Every analysis asks this table (through _rt.api_class, computed once
-- per distinct name), never its own list of names. The classes:
--   graph_launch  replays a CUDA/HIP graph: one call, many GPU ops
--   launch        launches one kernel (cudaLaunchKernel, cuLaunchKernel(Ex), hipModuleLaunchKernel, ...)
--   blocking      the host waits inside the call until the GPU has caught up: stream/device/event/
--                 context synchronize and the synchronous copies (cudaMemcpy, hipMemcpyWithStream,
--                 cuMemcpyDtoH, ...): host time in them is sync stall, never launch overhead
--   stream_wait   a stream waits on the GPU for an event (cudaStreamWaitEvent): the host does not block
--   enqueue       asynchronous copies, memsets and host functions put on a stream (cudaMemcpyAsync,
--                 cudaMemsetAsync, hipMemsetD32Async, cudaLaunchHostFunc, ...)
--   query         non-blocking status queries (cudaEventQuery, cudaStreamQuery)
--   memory        allocation and registration (cudaMalloc, cudaFree, cudaHostAlloc, hipMallocAsync, ...)
--   bookkeeping   events, streams, graphs, modules, attributes and errors (cudaEventRecord,
--                 cudaStreamIsCapturing, cudaFuncGetAttributes, cudaGetDevice, cudaGetLastError, ...)
--   other         anything else (a call of class `other` that launched a kernel counts as `launch`:
--                 _rt.api_class)
-- A step's host time on its thread is split by class in steps.sql (host_*_ns).
CREATE OR REPLACE TEMP TABLE _api_classes(ord, api_class, pattern) AS VALUES
    (1, 'graph_launch', '(cuda|hip|cu)GraphLaunch'),
    (2, 'launch', '(cuda|hip)(LaunchKernel|LaunchKernelExC|LaunchKernelEx|LaunchCooperativeKernel|LaunchCooperativeKernelMultiDevice|LaunchByPtr)'
                  || '|hip(ModuleLaunchKernel|ExtModuleLaunchKernel|HccModuleLaunchKernel|ExtLaunchKernel|ExtLaunchMultiKernelMultiDevice|ModuleLaunchCooperativeKernel|LaunchKernelGGL)'
                  || '|cu(LaunchKernel|LaunchKernelEx|LaunchCooperativeKernel|LaunchCooperativeKernelMultiDevice|LaunchGrid|LaunchGridAsync)'),
    (3, 'blocking', '(cuda|hip)(StreamSynchronize|DeviceSynchronize|EventSynchronize|ThreadSynchronize'
                    || '|Memcpy|Memcpy2D|Memcpy3D|MemcpyDtoH|MemcpyHtoD|MemcpyDtoD|MemcpyFromSymbol|MemcpyToSymbol|MemcpyPeer|MemcpyWithStream|MemcpyParam2D|MemcpyAtoH|MemcpyHtoA)'
                    || '|cu(StreamSynchronize|CtxSynchronize|EventSynchronize|MemcpyDtoH|MemcpyHtoD|MemcpyDtoD|Memcpy|Memcpy2D|Memcpy3D|MemcpyPeer)'),
    (4, 'stream_wait', '(cuda|hip|cu)StreamWaitEvent'),
    (5, 'enqueue', '(cuda|hip|cu)(Memcpy|Memset)[A-Za-z0-9]*Async|(cuda|hip)(Memset|Memset2D|Memset3D|MemsetD8|MemsetD16|MemsetD32)'
                   || '|cuMemsetD(8|16|32|2D8|2D16|2D32)|(cuda|hip)LaunchHostFunc|cuLaunchHostFunc|(cuda|hip)MemPrefetchAsync|cuMemPrefetchAsync'),
    (6, 'query', '(cuda|hip|cu)(EventQuery|StreamQuery)'),
    (7, 'memory', '(cuda|hip|cu)(Malloc|Free|Mem|Host|Array|Ipc)[A-Za-z0-9]*|hipExtMallocWithFlags|cuMemAlloc[A-Za-z0-9]*'),
    (8, 'bookkeeping', '(cuda|hip|cu)(Event|Stream|Graph|Ctx|Device|Func|Module|Get|Set|Peek|Occupancy|Driver|Runtime|Profiler|Init|Pointer|Kernel|Library|Thread|UserObject|Chip)[A-Za-z0-9]*'),
    (9, 'other', '.*');

-- The class of one API name (the suffix rule above). Used once per distinct name.
CREATE OR REPLACE TEMP MACRO _api_class_of(n) AS (
    SELECT c.api_class FROM _api_classes c
    WHERE regexp_full_match(regexp_replace(n, '(_v[0-9]+|_ptsz|_ptds|_spt)+$', ''), c.pattern)
    ORDER BY c.ord LIMIT 1);
CREATE OR REPLACE TEMP MACRO _is_graph_launch(n) AS coalesce(contains(n, 'GraphLaunch'), FALSE);
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
-- _gpu_names: one row per distinct (kind, name) of the trace set: its category by name alone (rows without
-- launched_by), its op_class (memory: memcpy/memset; communication: category communication; compute:
-- every other kernel; comm.sql's classes, HTA's kernel types where HTA knows only NCCL names) and, for
-- communication, its library: the one declaration of what is communication (comm.sql and collectives.sql read
-- op_class; comm.sql also names the libraries).
-- _cat_ops: cpu_ops whose name matches some launched_by pattern (trace, tid, ts_ns, end_ns, name), the
-- candidates for a GPU op's launching op.
CREATE OR REPLACE TEMP TABLE _kernel_categories AS
SELECT ord, category, kind AS op_kind, pattern, coalesce(launched_by, '') AS launched_by, example, example_op, source, library
FROM read_csv(getvariable('kernel_categories_csv'), header = true, auto_detect = false, quote = '"', escape = '"',
              columns = {'ord': 'INTEGER', 'category': 'VARCHAR', 'kind': 'VARCHAR', 'pattern': 'VARCHAR',
                         'launched_by': 'VARCHAR', 'example': 'VARCHAR', 'example_op': 'VARCHAR', 'source': 'VARCHAR',
                         'library': 'VARCHAR'});
-- The category of one (kind, name, launching op or NULL) (ad-hoc use:
-- `SELECT _kernel_category('kernel', 'ampere_sgemm_64x64_nn', NULL)`).
CREATE OR REPLACE TEMP MACRO _kernel_category(k, n, o) AS coalesce((
    SELECT c.category FROM _kernel_categories c
    WHERE c.op_kind = k AND regexp_matches(coalesce(n, ''), c.pattern)
      AND (c.launched_by = '' OR (o IS NOT NULL AND regexp_matches(o, c.launched_by)))
    ORDER BY c.ord LIMIT 1), 'other');
CREATE OR REPLACE TEMP TABLE _gpu_names AS
WITH _n AS (SELECT DISTINCT kind, name FROM kernels), _c AS (
    SELECT n.kind, n.name, coalesce(arg_min(c.category, c.ord), 'other') AS category, arg_min(c.library, c.ord) AS library
    FROM _n n LEFT JOIN _kernel_categories c
      ON c.op_kind = n.kind AND c.launched_by = '' AND regexp_matches(coalesce(n.name, ''), c.pattern)
    GROUP BY n.kind, n.name
)
SELECT kind, name, category,
       CASE WHEN kind <> 'kernel' THEN 'memory' WHEN category = 'communication' THEN 'communication' ELSE 'compute' END AS op_class,
       CASE WHEN category = 'communication' THEN library END AS library
FROM _c;
CREATE OR REPLACE TEMP TABLE _cat_ops AS
WITH _n AS (
    SELECT DISTINCT o.name FROM (SELECT DISTINCT name FROM events WHERE kind = 'cpu_op') o
    JOIN _kernel_categories c ON c.launched_by <> '' AND regexp_matches(o.name, c.launched_by)
)
SELECT e.trace, e.tid, e.ts_ns, e.ts_ns + greatest(e.dur_ns, 0) AS end_ns, e.name
FROM events e WHERE e.kind = 'cpu_op' AND e.name IN (SELECT name FROM _n);
-- Per GPU op with a launch record: the latest-starting candidate op on the launching thread that started
-- at or before the launch; it is the launching op when it still runs at the launch (candidates do not
-- interleave: a norm op does not start inside another and end outside it).
CREATE OR REPLACE TEMP TABLE _gpu_launch_op AS
WITH _l AS (SELECT trace, row_id, launch_tid, launch_ts_ns FROM kernels
            WHERE kind = 'kernel' AND launch_ts_ns IS NOT NULL AND (SELECT count(*) FROM _cat_ops) > 0)
SELECT l.trace, l.row_id, CASE WHEN l.launch_ts_ns < o.end_ns THEN o.name END AS launched_op
FROM _l l ASOF JOIN _cat_ops o ON l.trace = o.trace AND l.launch_tid = o.tid AND l.launch_ts_ns >= o.ts_ns;
-- The category of each distinct (kind, name, launching op) (op NULL: by name, as _gpu_names).
CREATE OR REPLACE TEMP TABLE _gpu_op_cats AS
WITH _n AS (SELECT DISTINCT kind, name, launched_op FROM _gpu_launch_op JOIN kernels USING (trace, row_id)
            WHERE launched_op IS NOT NULL)
SELECT kind, name, launched_op, _kernel_category(kind, name, launched_op) AS category FROM _n;

CREATE OR REPLACE TEMP TABLE _gpu AS
SELECT trace, kind, name, ts_ns, greatest(dur_ns, 0) AS dur_ns, ts_ns + greatest(dur_ns, 0) AS end_ns,
       coalesce(device, -1) AS device, stream, correlation, phase,
       coalesce(phase_path, '(none)') AS phase_path,
       launch_name, launch_ts_ns, launch_dur_ns, launch_tid, copy_kind,
       _is_graph_launch(launch_name) AS graph, coalesce(c.op_class, 'compute') AS op_class,
       coalesce(oc.category, c.category, 'other') AS category, lo.launched_op, row_id,
       row_number() OVER () AS gid
FROM kernels k LEFT JOIN _gpu_names c USING (kind, name)
LEFT JOIN _gpu_launch_op lo USING (trace, row_id)
LEFT JOIN _gpu_op_cats oc USING (kind, name, launched_op);

-- The GPU of each op device id, named as tracekit info and the HTML timeline name it (trace_devices.gpu_index).
CREATE OR REPLACE TEMP TABLE _dev_gpu AS
WITH _d AS (
    SELECT g.trace, g.device,
           CASE WHEN NOT EXISTS (SELECT 1 FROM trace_devices d WHERE d.trace = g.trace) THEN g.device
                ELSE (SELECT max(d.gpu_index) FROM trace_devices d WHERE d.trace = g.trace AND d.device = g.device) END AS gpu_index
    FROM (SELECT DISTINCT trace, device FROM _gpu) g
)
SELECT trace, device, gpu_index,
       CASE WHEN device < 0 THEN 'GPU ?' WHEN gpu_index IS NOT NULL THEN 'GPU ' || gpu_index
            ELSE 'GPU ? (agent ' || device || ')' END AS gpu
FROM _d;

-- The class of each distinct API name is looked up once, not once per call.
CREATE OR REPLACE TEMP TABLE _rt AS
WITH _names AS (
    SELECT name, _api_class_of(name) AS api_class FROM (SELECT DISTINCT name FROM runtime)
), _l AS (SELECT trace, correlation, bool_or(kind = 'kernel') AS kernel FROM _gpu WHERE correlation IS NOT NULL GROUP BY ALL)
SELECT r.trace, r.name, r.ts_ns, greatest(r.dur_ns, 0) AS dur_ns, r.ts_ns + greatest(r.dur_ns, 0) AS end_ns,
       r.pid, r.tid, r.correlation, r.phase, coalesce(r.phase_path, '(none)') AS phase_path, r.row_id,
       CASE WHEN coalesce(n.api_class, 'other') = 'other' AND coalesce(l.kernel, FALSE) THEN 'launch'
            ELSE coalesce(n.api_class, 'other') END AS api_class,
       coalesce(n.api_class IN ('blocking', 'stream_wait'), FALSE) AS is_sync,
       coalesce(n.api_class = 'blocking', FALSE) AS blocking,
       l.correlation IS NOT NULL AS launched
FROM runtime r
LEFT JOIN _names n ON n.name = r.name
LEFT JOIN _l l ON l.trace = r.trace AND l.correlation = r.correlation;

CREATE OR REPLACE TEMP TABLE _window AS
SELECT trace, min(ts_ns) AS window_start_ns, max(ts_ns + greatest(dur_ns, 0)) AS window_end_ns,
       max(ts_ns + greatest(dur_ns, 0)) - min(ts_ns) AS window_ns
FROM events WHERE kind NOT IN ('meta') AND ts_ns IS NOT NULL
GROUP BY trace;

CREATE OR REPLACE TEMP TABLE _steps_all AS
SELECT trace, pid, tid, name, ts_ns, ts_ns + greatest(dur_ns, 0) AS end_ns, phase_path, seq, row_id
FROM ranges WHERE regexp_full_match(name, getvariable('step_pattern'));

-- The step name's fields (see _steps above). regexp_extract gives '' when a group did not match.
CREATE OR REPLACE TEMP MACRO _sgl_field(n, f) AS
    TRY_CAST(nullif(regexp_extract(n, '[ \[]' || f || '=([0-9]+)', 1), '') AS BIGINT);
-- vLLM: the parentheses may hold more than a token count (execute_context_1(888_788544)_..., (sq32sk55086...));
-- a part is read as a number only when it is all digits (TRY_CAST alone would read '888_788544' as 888788544).
CREATE OR REPLACE TEMP MACRO _vllm_part(n, i) AS regexp_extract(n,
    '^execute_(?:([0-9]+)_)?context_([0-9]+)\(([^()]*)\)_generation_([0-9]+)\(([^()]*)\)$', i);
CREATE OR REPLACE TEMP MACRO _vllm_num(n, i) AS
    CASE WHEN regexp_full_match(_vllm_part(n, i), '[0-9]+') THEN TRY_CAST(_vllm_part(n, i) AS BIGINT) END;
CREATE OR REPLACE TEMP MACRO _vllm_old(n, i) AS TRY_CAST(nullif(regexp_extract(n,
    '^execute_new_([0-9]+)_cached_([0-9]+)$', i), '') AS BIGINT);

CREATE OR REPLACE TEMP TABLE _steps AS
WITH _inner AS (
    SELECT s.* FROM _steps_all s
    WHERE NOT EXISTS (SELECT 1 FROM _steps_all t
                      WHERE t.trace = s.trace AND t.pid = s.pid AND t.tid = s.tid AND t.row_id <> s.row_id
                        AND t.ts_ns >= s.ts_ns AND t.end_ns <= s.end_ns
                        AND (t.ts_ns > s.ts_ns OR t.end_ns < s.end_ns OR t.row_id > s.row_id))
), _thr AS (SELECT trace, count(DISTINCT (pid, tid)) = 1 AS one_thread FROM _inner GROUP BY trace)
, _f AS (
    SELECT i.*, regexp_extract(i.name, '^step\[([A-Za-z_]+)[ \]]', 1) AS _mode,
           _sgl_field(i.name, 'bs') AS _bs, _sgl_field(i.name, 'toks') AS _toks,
           _vllm_num(i.name, 1) AS _vb, _vllm_num(i.name, 2) AS _c, _vllm_num(i.name, 3) AS _ct,
           _vllm_num(i.name, 4) AS _g, _vllm_num(i.name, 5) AS _gt,
           _vllm_old(i.name, 1) AS _new, _vllm_old(i.name, 2) AS _cached
    FROM _inner i
), _p AS (
    SELECT *, _mode <> '' AS _sgl, _c IS NOT NULL AS _vllm, _new IS NOT NULL AS _vold FROM _f
)
SELECT p.trace, p.pid, p.tid, p.name, p.ts_ns, p.end_ns, p.phase_path, p.seq, p.row_id,
       CASE WHEN _sgl THEN 'step[' || _mode || coalesce(' bs=' || _bs, '') || ']'
            WHEN _vllm THEN 'execute_context_' || _c || '_generation_' || _g
            WHEN _vold THEN 'execute_new_' || _new || '_cached_' || _cached
            ELSE regexp_replace(p.name, '[0-9]+', 'N', 'g') END AS step_kind,
       CASE WHEN _sgl THEN _mode
            WHEN _vllm OR _vold THEN CASE WHEN coalesce(_c, _new) > 0 AND coalesce(_g, _cached) > 0 THEN 'MIXED'
                                          WHEN coalesce(_c, _new) > 0 THEN 'CONTEXT'
                                          WHEN coalesce(_g, _cached) > 0 THEN 'GENERATION' ELSE 'IDLE' END END AS step_mode,
       CASE WHEN _sgl THEN _bs WHEN _vllm THEN coalesce(_vb, _c + _g) WHEN _vold THEN _new + _cached END AS batch_size,
       CASE WHEN _sgl THEN _toks WHEN _vllm THEN _ct + _gt END AS tokens,
       coalesce(_c, _new) AS context_reqs, _ct AS context_tokens,
       coalesce(_g, _cached) AS generation_reqs, _gt AS generation_tokens,
       row_number() OVER (PARTITION BY p.trace ORDER BY p.ts_ns, p.seq, p.row_id) AS step_index,
       CASE WHEN t.one_thread THEN -1 ELSE p.tid END AS k_tid
FROM _p p JOIN _thr t USING (trace);

CREATE OR REPLACE TEMP TABLE _one_thread AS
SELECT trace, bool_and(k_tid = -1) AS one_thread FROM _steps GROUP BY trace;

CREATE OR REPLACE TEMP TABLE _caps AS
SELECT w.trace, coalesce(r.n, 0) > 0 AS has_runtime, coalesce(r.syncs, 0) + coalesce(g.n, 0) > 0 AS has_sync,
       w.trace IN (SELECT trace FROM _gpu) AS has_gpu,
       (SELECT any_value(c.activities) FROM trace_capture c WHERE c.trace = w.trace) AS capture_activities
FROM _window w
LEFT JOIN (SELECT trace, count(*) AS n, count(*) FILTER (WHERE is_sync) AS syncs FROM _rt GROUP BY trace) r USING (trace)
LEFT JOIN (SELECT trace, count(*) AS n FROM events WHERE kind = 'gpu_sync' GROUP BY trace) g USING (trace);

CREATE OR REPLACE TEMP TABLE _gap_rows AS
SELECT gid, trace, device, ts_ns, gap_start_ns FROM (
    SELECT gid, trace, device, ts_ns,
           max(end_ns) OVER (PARTITION BY trace, device ORDER BY ts_ns, end_ns, row_id
                             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS gap_start_ns
    FROM _gpu)
WHERE gap_start_ns IS NOT NULL AND ts_ns > gap_start_ns;

CREATE OR REPLACE TEMP TABLE _busy_dev AS
SELECT s.trace, s.device, s.first_ns, s.last_ns, (s.last_ns - s.first_ns) - coalesce(g.gap_ns, 0) AS busy_ns
FROM (SELECT trace, device, min(ts_ns) AS first_ns, max(end_ns) AS last_ns FROM _gpu GROUP BY ALL) s
LEFT JOIN (SELECT trace, device, sum(ts_ns - gap_start_ns) AS gap_ns FROM _gap_rows GROUP BY ALL) g USING (trace, device);

-- Every idle interval of each device in the trace window, declared once: the gaps between ops
-- (_gap_rows), the leading edge (window start to the device's first op) and the trailing edge (its
-- last op's end to the window end). gpu_idle.sql classifies them (by next_gid's rules; the trailing
-- edge has no next op); steps.sql clips them to each step's end-to-end window.
CREATE OR REPLACE TEMP TABLE _idle_iv AS
SELECT trace, device, gap_start_ns, ts_ns AS gap_end_ns, gid AS next_gid, NULL::VARCHAR AS edge FROM _gap_rows
UNION ALL
SELECT f.trace, f.device, w.window_start_ns, f.ts_ns, f.gid, 'leading'
FROM (SELECT gid, trace, device, ts_ns FROM _gpu
      QUALIFY row_number() OVER (PARTITION BY trace, device ORDER BY ts_ns, row_id) = 1) f
JOIN _window w USING (trace) WHERE f.ts_ns > w.window_start_ns
UNION ALL
SELECT b.trace, b.device, b.last_ns, w.window_end_ns, NULL, 'trailing'
FROM _busy_dev b JOIN _window w USING (trace) WHERE w.window_end_ns > b.last_ns;
