-- flops: how many FLOPs do the matmul and attention ops do, how fast, and what share of the GPU's peak?
-- @requires lib/api lib/gpu_activity lib/modules lib/runtime lib/step_instances lib/trace_window
-- @param gpu TEXT NULL GPU name matched against the peak table instead of the trace's (e.g. 'H100 SXM',
--     'MI300X')
-- @param peak_tflops NUMBER NULL one peak dense TFLOP/s for every dtype, overriding the table
-- @param peak_tb_s NUMBER NULL peak memory bandwidth in TB/s, overriding the table
-- @param tf32 BOOL FALSE fp32 matmuls ran on TF32 tensor cores (compare with the tf32 peak, not fp32)
-- @param tokens_per_step NUMBER NULL tokens one step processes (batch size x tokens per sequence; for a
--     verify step batch x (draft length + 1)), for the per-token columns: a trace does not record it
--
-- Run it with `tracekit report` (or tracekit.report.run): that loads the modules on its @requires line first and sets
-- every getvariable() parameter to its default (its @param line; docs/queries.md).
--
-- Method.
--   Ops counted: cpu_op rows of the matmul / attention family (aten::mm, addmm, _addmm_activation,
--   bmm, baddbmm, linear, matmul, _scaled_mm, scaled_dot_product_attention and its kernels
--   _scaled_dot_product_{flash,efficient,cudnn}_attention, _scaled_dot_product_flash_attention_for_cpu,
--   _scaled_dot_product_attention_math, _flash_attention_forward, _efficient_attention_forward).
--   No double counting: only LEAF-MOST family ops count. A family op that has another family op
--   nested inside it on its thread (aten::linear > aten::addmm, aten::matmul > aten::mm,
--   scaled_dot_product_attention > _scaled_dot_product_flash_attention > _flash_attention_forward)
--   is skipped and its innermost family op counts. This is the op torch's FlopCounterMode counts
--   (the first op below the CompositeImplicit decompositions), so totals per op name agree with it.
--   FLOPs per op: the trace's own `flops` value (Kineto with_flops) when present, else from
--   input_dims (needs record_shapes=True), multiply-add = 2 FLOPs, as torch/utils/flop_counter.py:
--     mm [M,K]x[K,N]                         2*M*K*N
--     addmm / _addmm_activation (bias,A,B)   2*M*K*N   (bias add and activation not counted, as torch)
--     bmm [B,M,K]x[B,K,N]                    2*B*M*K*N;  baddbmm (C,A,B): same, C not counted
--     linear x[...,K], W[N,K]                2*prod(x)*N  (bias not counted)
--     matmul                                 broadcast batch: 2*batch*M*K*N; 1-D operands as dot / mv
--     _scaled_mm (fp8) [M,K]x[K,N]           2*M*K*N
--     SDPA q[B,H,L,E], k[B,Hkv,S,E], v[B,Hkv,S,Ev] (the _flash/_efficient_attention_forward kernels
--       take [B,L,H,E]):                      2*B*H*L*S*(E+Ev)  = q@k^T plus attn@v, GQA broadcast;
--       the mask, softmax and causal skipping are not counted (as torch); varlen / nested inputs
--       (q not 4-D) get NULL FLOPs.
--   Bytes: the least traffic the op can cause: every tensor input read once plus the output written
--   once, elements * dtype size from input_types (inputs typed Scalar/ScalarList/None are skipped).
--   NULL when a tensor's dtype size is unknown or the output dtype is not recorded (_scaled_mm).
--   Time base: the GPU ops (kernels, and memsets/memcpys such as cuBLAS workspace zeroing) launched by
--   runtime calls made inside a counted op on its thread (ASOF join on launch time; children's
--   launches, e.g. a copy before the GEMM, belong to the op).  dtype: of the first matrix operand
--   ('unknown' when the trace has no Input type).
--   Achieved TFLOP/s = FLOPs / summed duration of those GPU ops (ns) / 1e3, over ops that have both.
--   Share of peak = (sum over those ops of FLOPs / peak of the op's dtype) / their GPU ns, i.e. the
--   time the work would take at peak over the time it took; peak_tflops = FLOPs / that ideal time,
--   the FLOP-weighted harmonic mean of the dtypes' peaks (the plain peak when one dtype).
--   Peaks: _fl_peaks below, dense (no sparsity), chosen by the GPU name in the trace's metadata
--   (view trace_devices: the GPU with most GPU-op time, else the first listed) matched in table
--   order against name_regex (AMD devices that only say "AMD Radeon Graphics" are matched by CU
--   count). dtype -> peak column: bf16, fp16, fp8 (any Float8), fp32 -> fp32 (torch's default
--   float32_matmul_precision 'highest'; getvariable('tf32') = TRUE uses the tf32 column; a trace whose fp32
--   ops in sum ran faster than the fp32 peak gets the tf32 column too, with a note: _fl_auto_tf32).
--   Graph replays: kernels replayed by CUDA graphs have no cpu_op at replay time. After `tracekit
--   graphmap -o`, mapped ones carry the reference op's name (args."@graphmap".op), op_node and shapes:
--   each (graph launch, op_node) of a family op counts as one op (FLOPs from its shapes; GPU time =
--   its replayed GPU ops; phase_path = the mapped one; step = the one holding the graph launch).
--   Advice checks the trace first: record_shapes=True is recommended only when no cpu_op carries
--   shapes; graph-replayed ops left unmapped get `tracekit graphmap` instead.
-- Limits: only matmul/attention FLOPs (convolutions, elementwise, norms, softmax, MoE grouped
--   GEMMs through custom ops, Triton/flash-attn library ops not named above: not counted); kernels
--   replayed by CUDA graphs and not mapped by graphmap are not counted; GPU time is summed
--   kernel duration, not wall time (concurrent streams add up); one GPU model per trace.
--
-- Inputs: events (cpu_op rows: input_dims, input_types, flops), kernels (args."@graphmap"), trace_devices;
--   gpu_activity, runtime_calls, step_instances, step_instances_one_thread, trace_window (queries/lib/);
--   modules_gpu_phase, modules_cpu_phase (lib/modules.sql).
-- Parameters: the @param lines above, and top_n (kernels.sql: rows of `ops`); without tokens_per_step
--   the per-token columns are NULL.
--
-- Output `flops`: one row per trace and phase_path of the counted ops ('(none)' = outside any range;
--   one row with phase_path NULL when the trace has no counted op)
--   (each op counts in its own full phase_path only: no roll-up into enclosing phases)
--   Phases are EFFECTIVE phases (lib/modules.sql): a cpu_op directly in a step (or in no range) inside a
--   module takes the module path (`ProfilerStep#6/Qwen2Model/Qwen2DecoderLayer/Qwen2MLP/Linear`).
--   trace, phase_path, phase_source ('range' | 'module' | 'frame', comma-separated when several; NULL
--   for '(none)')
--   gflops_per_token FLOPs of the phase's ops inside steps / (steps of the trace * tokens_per_step) / 1e9
--                    (NULL without --tokens-per-step or without steps; the LenVM-style per-token GFLOPs)
-- Output `ops`: one row per trace, op name, input_dims and dtype, top getvariable('top_n') by FLOPs
--   per trace: calls, flops_per_call, flops, bytes_per_call, gpu_ns (summed over calls), tflops_s,
--   share_of_peak, tb_s, flop_per_byte, phase_path (most common; equal counts: the first in text
--   order), flops_source. Equal flops: ordered by name, input_dims, dtype.
-- Output `steps`: one row per step instance (step_instances): trace, step_index, step_name, wall_ns, ops,
--   flops, gflops_per_token (flops / tokens_per_step / 1e9), gpu_ns, tflops_s and share_of_peak as
--   above (ops launched inside the step, assigned by
--   start time as in steps.sql), tflops_s_wall = flops / wall_ns / 1e3 and wall_share_of_peak =
--   ideal_ns / wall_ns (model-FLOPs utilisation over the step's wall time).
-- Output `device`: one row per trace: gpu_name (from the trace, or the --gpu override),
--   name_source, matched (the peak table row, NULL when none), bf16/fp16/fp8/tf32/fp32_tflops,
--   peak_tb_s (after overrides), peak_override, note.
--
-- How to read: share_of_peak near 1 means the GEMMs run at the tensor-core roofline; decode GEMMs
-- with few tokens have flop_per_byte far below the ridge point (peak FLOP/s / peak B/s) and are
-- bandwidth-bound, so read bw_share there instead.

-- Peak dense throughput per GPU (TFLOP/s) and memory bandwidth (TB/s); NULL = not supported / not
-- published. NVIDIA datasheets print tensor-core figures "with sparsity": dense = half of them.
--   H100 SXM / PCIe / NVL: NVIDIA H100 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h100/):
--     SXM BF16/FP16 1,979*, FP8 3,958*, TF32 989*, FP32 67, 3.35 TB/s; PCIe 1,513*, 3,026*, 756*, 51,
--     2 TB/s; NVL 1,671*, 3,341*, 835*, 60, 3.9 TB/s (* with sparsity).
--   H200 SXM / NVL: NVIDIA H200 datasheet (nvidia.com/en-us/data-center/h200/): as H100 SXM / NVL, 4.8 TB/s.
--   B200: NVIDIA HGX B200 datasheet (nvidia.com/en-us/data-center/hgx/), 8-GPU totals / 8: FP16/BF16
--     36 PF*, FP8 72 PF*, TF32 18 PF*, FP32 600 TF, 8 TB/s per GPU.
--   A100: NVIDIA A100 datasheet (nvidia.com/en-us/data-center/a100/): BF16/FP16 312, TF32 156, FP32
--     19.5 (dense), no FP8; 40GB 1,555 GB/s, 80GB PCIe 1,935 GB/s, 80GB SXM 2,039 GB/s.
--   L40S: NVIDIA L40S datasheet: BF16/FP16 362.05, FP8 733, TF32 183 (dense), FP32 91.6, 864 GB/s.
--   L4: NVIDIA L4 datasheet: BF16/FP16 242*, FP8 485*, TF32 120*, FP32 30.3, 300 GB/s.
--   A10: NVIDIA A10 datasheet: BF16/FP16 250*, TF32 125*, FP32 31.2, 600 GB/s.
--   MI300X / MI325X: AMD Instinct MI300X / MI325X datasheets (amd.com/en/products/accelerators/instinct):
--     FP16/BF16 1,307.4, FP8 2,614.9, TF32 653.7, FP32 163.4 (dense); 5.3 / 6.0 TB/s.
--   MI250X / MI250: AMD Instinct MI250X / MI250 datasheets: FP16/BF16 383 / 362.1, FP32 matrix 95.7 /
--     90.5, 3.2768 TB/s per package of 2 GCDs; each GCD is one device to torch, so rows are per GCD
--     (halved); CDNA2 has no TF32 or FP8.
--   V100: NVIDIA Tesla V100 datasheet: FP16 tensor 125 (SXM2) / 112 (PCIe) / 130 (V100S), FP32 15.7 / 14 /
--     16.4, 900 / 900 / 1,134 GB/s; Volta has no BF16, TF32 or FP8 (no sparsity figures exist).
CREATE OR REPLACE TEMP TABLE _fl_peaks AS
SELECT * FROM (VALUES
    (1,  'H100 NVL',       '(?i)\bh100\b.*\bnvl\b',            NULL, 835.5,   835.5,   1670.5, 417.5,  60.0,  3.9),
    (2,  'H100 PCIe',      '(?i)\bh100\b.*\bpcie\b',           NULL, 756.5,   756.5,   1513.0, 378.0,  51.0,  2.0),
    (3,  'H100 SXM',       '(?i)\bh100\b',                     NULL, 989.5,   989.5,   1979.0, 494.5,  67.0,  3.35),
    (4,  'H200 NVL',       '(?i)\bh200\b.*\bnvl\b',            NULL, 835.5,   835.5,   1670.5, 417.5,  60.0,  4.8),
    (5,  'H200 SXM',       '(?i)\bh200\b',                     NULL, 989.5,   989.5,   1979.0, 494.5,  67.0,  4.8),
    (6,  'B200',           '(?i)\bb200\b',                     NULL, 2250.0,  2250.0,  4500.0, 1125.0, 75.0,  8.0),
    (7,  'A100 80GB PCIe', '(?i)\ba100\b.*(80gb.*pcie|pcie.*80gb)', NULL, 312.0, 312.0, NULL, 156.0,  19.5,  1.935),
    (8,  'A100 40GB PCIe', '(?i)\ba100\b.*\bpcie\b',           NULL, 312.0,   312.0,   NULL,   156.0,  19.5,  1.555),
    (9,  'A100 80GB SXM',  '(?i)\ba100\b.*80gb',               NULL, 312.0,   312.0,   NULL,   156.0,  19.5,  2.039),
    (10, 'A100 40GB SXM',  '(?i)\ba100\b',                     NULL, 312.0,   312.0,   NULL,   156.0,  19.5,  1.555),
    (11, 'L40S',           '(?i)\bl40s\b',                     NULL, 362.05,  362.05,  733.0,  183.0,  91.6,  0.864),
    (12, 'L4',             '(?i)\bl4\b',                       NULL, 121.0,   121.0,   242.5,  60.0,   30.3,  0.3),
    (13, 'A10',            '(?i)\ba10\b',                      NULL, 125.0,   125.0,   NULL,   62.5,   31.2,  0.6),
    (14, 'MI325X',         '(?i)mi325x',                       NULL, 1307.4,  1307.4,  2614.9, 653.7,  163.4, 6.0),
    (15, 'MI300X',         '(?i)mi300x',                       NULL, 1307.4,  1307.4,  2614.9, 653.7,  163.4, 5.3),
    (16, 'MI250X (1 GCD)', '(?i)mi250x',                       110,  191.5,   191.5,   NULL,   NULL,   47.85, 1.6384),
    (17, 'MI250 (1 GCD)',  '(?i)mi250\b',                      104,  181.05,  181.05,  NULL,   NULL,   45.25, 1.6384),
    (18, 'V100S PCIe',     '(?i)\bv100s\b',                    NULL, NULL,    130.0,   NULL,   NULL,   16.4,  1.134),
    (19, 'V100 SXM2',      '(?i)\bv100\b.*\bsxm',             NULL, NULL,    125.0,   NULL,   NULL,   15.7,  0.9),
    (20, 'V100 PCIe',      '(?i)\bv100\b',                     NULL, NULL,    112.0,   NULL,   NULL,   14.0,  0.9)
) AS t(ord, gpu, name_regex, cus, bf16_tflops, fp16_tflops, fp8_tflops, tf32_tflops, fp32_tflops, tb_s);

-- dtype class and element size of Kineto's "Input type" strings (c10 scalar type names)
CREATE OR REPLACE TEMP MACRO _fl_dtype(t) AS CASE
    WHEN t = 'c10::BFloat16' THEN 'bf16' WHEN t = 'c10::Half' THEN 'fp16' WHEN t = 'float' THEN 'fp32'
    WHEN t = 'double' THEN 'fp64' WHEN starts_with(t, 'c10::Float8') THEN 'fp8' ELSE t END;
CREATE OR REPLACE TEMP MACRO _fl_size(t) AS CASE
    WHEN t IN ('c10::BFloat16', 'c10::Half', 'short int') THEN 2 WHEN t IN ('float', 'int') THEN 4
    WHEN t IN ('double', 'long int', 'c10::complex<float>') THEN 8 WHEN t = 'c10::complex<double>' THEN 16
    WHEN t IN ('signed char', 'unsigned char', 'bool') OR starts_with(t, 'c10::Float8') THEN 1 END;
CREATE OR REPLACE TEMP MACRO _fl_prod(l) AS list_reduce(l, lambda a, b: a * b, 1::BIGINT);
-- product of the broadcast of two batch shapes (aligned from the right, missing dims = 1)
CREATE OR REPLACE TEMP MACRO _fl_bprod(a, b) AS _fl_prod(list_transform(range(1, greatest(len(a), len(b)) + 1),
    lambda i: greatest(coalesce(list_reverse(a)[i], 1), coalesce(list_reverse(b)[i], 1))));

CREATE OR REPLACE TEMP MACRO _fl_family(n) AS n IN (
    'aten::mm', 'aten::addmm', 'aten::_addmm_activation', 'aten::bmm', 'aten::baddbmm', 'aten::linear',
    'aten::matmul', 'aten::_scaled_mm', 'aten::scaled_dot_product_attention',
    'aten::_scaled_dot_product_flash_attention', 'aten::_scaled_dot_product_efficient_attention',
    'aten::_scaled_dot_product_cudnn_attention', 'aten::_scaled_dot_product_flash_attention_for_cpu',
    'aten::_scaled_dot_product_attention_math', 'aten::_scaled_dot_product_fused_attention_overrideable',
    'aten::_flash_attention_forward', 'aten::_efficient_attention_forward');

-- Graph-replayed GPU ops that `tracekit graphmap -o` shaped (args."@graphmap": op, op_node, and the
-- reference op's input_dims/input_types on the row): one counted op per (graph launch, op_node), i.e.
-- per reference op call, timed by the summed duration of its replayed GPU ops; it sits at the graph
-- launch's start on the launching thread (for steps) and in the mapped phase_path.
CREATE OR REPLACE TEMP TABLE _fl_mapped AS
SELECT k.trace, CAST(NULL AS BIGINT) AS pid, any_value(k.launch_tid) AS tid, min(k.seq) AS seq, any_value(k.op) AS name,
       min(k.launch_ts_ns) AS ts_ns, min(k.launch_ts_ns) AS end_ns,
       min(coalesce(p.eff_phase_path, k.phase_path, '(none)')) AS phase_path,
       min(modules_eff_src(p.phase_source, k.phase_path)) AS phase_source,
       any_value(k.input_dims) AS input_dims, any_value(k.input_types) AS input_types,
       CAST(NULL AS DOUBLE) AS trace_flops,
       TRUE AS mapped, count(*) AS m_gpu_ops, sum(greatest(k.dur_ns, 0)) AS m_gpu_ns
FROM (SELECT *, json_extract_string(args, '$."@graphmap".op') AS op,
             TRY_CAST(json_extract_string(args, '$."@graphmap".op_node') AS BIGINT) AS op_node
      FROM kernels
      WHERE input_dims IS NOT NULL AND api_is_graph_launch(launch_name) AND contains(args, '"@graphmap"')) k
LEFT JOIN modules_gpu_phase p ON p.trace = k.trace AND p.row_id = k.row_id
WHERE _fl_family(k.op) AND k.op_node IS NOT NULL
GROUP BY k.trace, k.correlation, k.op_node;

CREATE OR REPLACE TEMP TABLE _fl_cand AS
SELECT e.trace, e.pid, e.tid, e.seq, e.name, e.ts_ns, e.ts_ns + greatest(e.dur_ns, 0) AS end_ns,
       coalesce(modules_eff_path(m.eff_phase_path, e.phase_path), '(none)') AS phase_path,
       modules_eff_src(m.phase_source, e.phase_path) AS phase_source, e.input_dims, e.input_types,
       e.flops AS trace_flops,
       FALSE AS mapped, CAST(NULL AS BIGINT) AS m_gpu_ops, CAST(NULL AS HUGEINT) AS m_gpu_ns
FROM events e LEFT JOIN modules_cpu_phase m ON m.trace = e.trace AND m.row_id = e.row_id
WHERE e.kind = 'cpu_op' AND _fl_family(e.name)
UNION ALL BY NAME SELECT * FROM _fl_mapped;

-- leaf-most: the next family op on the thread (parents sort before their children) starts after this one ends
-- (mapped ops are leaves already: graphmap took the innermost cpu_op around each launch)
CREATE OR REPLACE TEMP TABLE _fl_leaf AS
WITH _with_next AS (
    SELECT *, lead(ts_ns) OVER (PARTITION BY trace, pid, tid, mapped ORDER BY ts_ns, end_ns DESC, seq) AS _next_ts
    FROM _fl_cand
), _leaves AS (
    SELECT * EXCLUDE (_next_ts),
           CASE WHEN json_valid(input_dims) THEN from_json(input_dims, '[["BIGINT"]]') END AS d,
           CASE WHEN json_valid(input_types) THEN from_json(input_types, '["VARCHAR"]') END AS t,
           CASE WHEN name IN ('aten::addmm', 'aten::_addmm_activation', 'aten::baddbmm') THEN 2 ELSE 1 END AS ai
    FROM _with_next WHERE mapped OR _next_ts IS NULL OR _next_ts >= end_ns
), _operands AS (  -- A, B: the two matrix operands; q, k, v for attention
    SELECT *, d[ai] AS a, d[ai + 1] AS b, t[ai] AS a_type,
           name IN ('aten::_flash_attention_forward', 'aten::_efficient_attention_forward') AS bshd,
           name LIKE '%attention%' AS sdpa
    FROM _leaves
), _with_flops AS (
    SELECT *,
        CASE
        WHEN sdpa THEN CASE WHEN len(a) = 4 AND len(b) = 4 AND len(d[3]) = 4
            THEN 2 * _fl_prod(a[1:3]) * (CASE WHEN bshd THEN b[2] ELSE b[3] END) * (a[4] + d[3][4]) END
        WHEN name IN ('aten::mm', 'aten::addmm', 'aten::_addmm_activation', 'aten::_scaled_mm')
            THEN CASE WHEN len(a) = 2 AND len(b) = 2 THEN 2 * a[1] * a[2] * b[2] END
        WHEN name IN ('aten::bmm', 'aten::baddbmm')
            THEN CASE WHEN len(a) = 3 AND len(b) = 3 THEN 2 * a[1] * a[2] * a[3] * b[3] END
        WHEN name = 'aten::linear' THEN CASE WHEN len(a) >= 1 AND len(b) = 2 THEN 2 * _fl_prod(a) * b[1] END
        WHEN name = 'aten::matmul' THEN CASE
            WHEN len(a) = 1 AND len(b) = 1 THEN 2 * a[1]
            WHEN len(a) = 1 AND len(b) >= 2 THEN 2 * _fl_prod(b)
            WHEN len(a) >= 2 AND len(b) = 1 THEN 2 * _fl_prod(a)
            WHEN len(a) >= 2 AND len(b) >= 2
                THEN 2 * _fl_bprod(a[1:len(a) - 2], b[1:len(b) - 2]) * a[-2] * a[-1] * b[-1] END
        END AS shape_flops,
        -- elements of the output
        CASE
        WHEN sdpa THEN CASE WHEN len(a) = 4 AND len(d[3]) = 4 THEN _fl_prod(a[1:3]) * d[3][4] END
        WHEN name = 'aten::_scaled_mm' THEN NULL  -- out_dtype is not recorded
        WHEN name IN ('aten::mm', 'aten::addmm', 'aten::_addmm_activation') AND len(a) = 2 AND len(b) = 2
            THEN a[1] * b[2]
        WHEN name IN ('aten::bmm', 'aten::baddbmm') AND len(a) = 3 AND len(b) = 3 THEN a[1] * a[2] * b[3]
        WHEN name = 'aten::linear' AND len(a) >= 1 AND len(b) = 2 THEN _fl_prod(a[1:len(a) - 1]) * b[1]
        WHEN name = 'aten::matmul' THEN CASE
            WHEN len(a) = 1 AND len(b) = 1 THEN 1
            WHEN len(a) = 1 AND len(b) >= 2 THEN _fl_prod(b[1:len(b) - 2]) * b[-1]
            WHEN len(a) >= 2 AND len(b) = 1 THEN _fl_prod(a[1:len(a) - 1])
            WHEN len(a) >= 2 AND len(b) >= 2 THEN _fl_bprod(a[1:len(a) - 2], b[1:len(b) - 2]) * a[-2] * b[-1] END
        END AS out_elems,
        -- bytes of the tensor inputs (NULL propagates when a tensor's dtype size is unknown)
        CASE WHEN len(d) = len(t) THEN list_reduce(list_transform(range(1, len(t) + 1), lambda i:
            CASE WHEN t[i] IN ('', 'Scalar', 'ScalarList', 'GenericList') THEN 0::BIGINT
                 ELSE _fl_prod(d[i]) * _fl_size(t[i]) END), lambda x, y: x + y, 0::BIGINT) END AS in_bytes
    FROM _operands
)
SELECT row_number() OVER () AS op_id, trace, pid, tid, seq, name, ts_ns, end_ns, phase_path, phase_source, input_dims,
       mapped, m_gpu_ops, m_gpu_ns,
       coalesce(_fl_dtype(a_type), 'unknown') AS dtype,
       coalesce(trace_flops, shape_flops::DOUBLE) AS flops,
       CASE WHEN trace_flops IS NOT NULL THEN 'trace' WHEN shape_flops IS NOT NULL THEN 'shapes' END AS flops_source,
       in_bytes + out_elems * _fl_size(a_type) AS bytes
FROM _with_flops;

-- the GPU each trace ran on, and its peaks after the overrides
CREATE OR REPLACE TEMP TABLE _fl_dev AS
WITH _busy AS (SELECT trace, device, sum(dur_ns) AS ns FROM gpu_activity GROUP BY ALL),
_named AS (
    SELECT d.trace, d.name, d.sm_count,
           row_number() OVER (PARTITION BY d.trace ORDER BY coalesce(b.ns, -1) DESC, d.device) AS r
    FROM trace_devices d LEFT JOIN _busy b ON b.trace = d.trace AND b.device = d.device
    WHERE d.name IS NOT NULL
), _gpu_names AS (
    SELECT w.trace, coalesce(getvariable('gpu'), n.name) AS gpu_name,
           CASE WHEN getvariable('gpu') IS NOT NULL THEN '--gpu'
                WHEN n.name IS NOT NULL THEN 'trace' END AS name_source,
           CASE WHEN getvariable('gpu') IS NULL THEN n.sm_count END AS sm_count
    FROM trace_window w LEFT JOIN (SELECT * FROM _named WHERE r = 1) n USING (trace)
), _peak_matches AS (
    SELECT n.trace, p.*,
           row_number() OVER (PARTITION BY n.trace
                              ORDER BY CASE WHEN regexp_matches(n.gpu_name, p.name_regex) THEN 0 ELSE 1 END, p.ord) AS r
    FROM _gpu_names n JOIN _fl_peaks p
      ON regexp_matches(n.gpu_name, p.name_regex)
         OR (p.cus IS NOT NULL AND p.cus = n.sm_count AND regexp_matches(n.gpu_name, '(?i)^amd (radeon|instinct)'))
)
SELECT n.trace, n.gpu_name, n.name_source, m.gpu AS matched,
       coalesce(TRY_CAST(getvariable('peak_tflops') AS DOUBLE), m.bf16_tflops) AS bf16_tflops,
       coalesce(TRY_CAST(getvariable('peak_tflops') AS DOUBLE), m.fp16_tflops) AS fp16_tflops,
       coalesce(TRY_CAST(getvariable('peak_tflops') AS DOUBLE), m.fp8_tflops) AS fp8_tflops,
       coalesce(TRY_CAST(getvariable('peak_tflops') AS DOUBLE), m.tf32_tflops) AS tf32_tflops,
       coalesce(TRY_CAST(getvariable('peak_tflops') AS DOUBLE), m.fp32_tflops) AS fp32_tflops,
       coalesce(TRY_CAST(getvariable('peak_tb_s') AS DOUBLE), m.tb_s) AS peak_tb_s,
       concat_ws(', ',
                 CASE WHEN getvariable('peak_tflops') IS NOT NULL
                      THEN concat('peak_tflops=', getvariable('peak_tflops')) END,
                 CASE WHEN getvariable('peak_tb_s') IS NOT NULL
                      THEN concat('peak_tb_s=', getvariable('peak_tb_s')) END) AS peak_override,
       CASE
           WHEN getvariable('peak_tflops') IS NOT NULL AND (m.gpu IS NOT NULL OR getvariable('peak_tb_s') IS NOT NULL)
               THEN NULL
           WHEN n.gpu_name IS NULL
               THEN 'the trace names no GPU (no deviceProperties / GPU table): pass --gpu NAME or '
                    || '--peak-tflops X --peak-tb-s Y'
           WHEN m.gpu IS NULL
               THEN 'GPU "' || n.gpu_name || '" is not in the peak table (queries/flops.sql): '
                    || 'pass --gpu NAME (e.g. "H100 SXM") or --peak-tflops X --peak-tb-s Y'
       END AS note
FROM _gpu_names n LEFT JOIN (SELECT * FROM _peak_matches WHERE r = 1) m USING (trace);

-- per counted op: its peak, GPU ops launched inside it, and its step
CREATE OR REPLACE TEMP TABLE flops_ops AS
WITH _launched AS (
    SELECT o.op_id, count(g.gid) AS gpu_ops, sum(g.dur_ns) AS gpu_ns
    FROM (SELECT trace, pid, tid, ts_ns, correlation FROM runtime_calls WHERE launched) r
    ASOF JOIN _fl_leaf o ON r.trace = o.trace AND r.pid = o.pid AND r.tid = o.tid AND r.ts_ns >= o.ts_ns
    JOIN gpu_activity g ON g.trace = r.trace AND g.correlation = r.correlation
    WHERE r.ts_ns < o.end_ns
    GROUP BY o.op_id
), _op_steps AS (
    SELECT o.op_id, s.step_index FROM (
        SELECT op_id, trace, ts_ns, CASE WHEN t.one_thread THEN -1 ELSE tid END AS k_tid
        FROM _fl_leaf JOIN step_instances_one_thread t USING (trace)) o
    ASOF JOIN step_instances s ON o.trace = s.trace AND o.k_tid = s.k_tid AND o.ts_ns >= s.ts_ns
    WHERE o.ts_ns < s.end_ns
)
SELECT o.* EXCLUDE (m_gpu_ops, m_gpu_ns),
       CASE WHEN o.mapped THEN o.m_gpu_ops ELSE coalesce(l.gpu_ops, 0) END AS gpu_ops,
       CASE WHEN o.mapped THEN o.m_gpu_ns ELSE l.gpu_ns END AS gpu_ns, st.step_index,
       CASE o.dtype WHEN 'bf16' THEN v.bf16_tflops WHEN 'fp16' THEN v.fp16_tflops WHEN 'fp8' THEN v.fp8_tflops
                    WHEN 'fp32' THEN CASE WHEN getvariable('tf32') THEN v.tf32_tflops ELSE v.fp32_tflops END
                    ELSE TRY_CAST(getvariable('peak_tflops') AS DOUBLE) END AS peak_tflops,
       o.flops IS NOT NULL AND coalesce(CASE WHEN o.mapped THEN o.m_gpu_ns ELSE l.gpu_ns END, 0) > 0 AS timed
FROM _fl_leaf o
LEFT JOIN _launched l USING (op_id)
LEFT JOIN _op_steps st USING (op_id)
LEFT JOIN _fl_dev v USING (trace);

-- fp32 matmuls that, summed over a trace, ran faster than the GPU's fp32 peak cannot have used the
-- fp32 units: they ran on TF32 tensor cores (cuDNN's default for convolutions, and matmuls with
-- allow_tf32 / float32_matmul_precision 'high'). Such a trace is compared with the tf32 peak, with a
-- note, unless --tf32 or --peak-tflops already decided; a share of peak above 1 is never printed.
CREATE OR REPLACE TEMP TABLE _fl_auto_tf32 AS
SELECT o.trace, sum(o.flops) / sum(o.gpu_ns) / 1e3 AS fp32_tflops_s, any_value(v.fp32_tflops) AS fp32_peak
FROM flops_ops o JOIN _fl_dev v USING (trace)
WHERE o.dtype = 'fp32' AND o.timed AND NOT coalesce(getvariable('tf32'), FALSE) AND getvariable('peak_tflops') IS NULL
  AND v.tf32_tflops IS NOT NULL AND v.fp32_tflops IS NOT NULL
GROUP BY o.trace
HAVING sum(o.flops) / sum(o.gpu_ns) / 1e3 > any_value(v.fp32_tflops);

UPDATE flops_ops SET peak_tflops = v.tf32_tflops
FROM _fl_dev v, _fl_auto_tf32 a
WHERE flops_ops.trace = v.trace AND flops_ops.trace = a.trace AND flops_ops.dtype = 'fp32';

-- the rate columns shared by every output (a macro over one group of flops_ops rows)
CREATE OR REPLACE TEMP MACRO _fl_timed_flops(flops, timed) AS sum(flops) FILTER (WHERE timed);
CREATE OR REPLACE TEMP MACRO _fl_ideal_ns(flops, peak, timed) AS
    CASE WHEN count(*) FILTER (WHERE timed AND peak IS NULL) = 0
         THEN sum(flops / (peak * 1e3)) FILTER (WHERE timed) END;

-- What the trace holds, so that notes advise only what is missing: cpu_ops with input shapes
-- (record_shapes was on) and graph-replayed GPU ops that graphmap did not shape.
CREATE OR REPLACE TEMP TABLE _fl_caps AS
SELECT w.trace, coalesce(e.shaped_ops, 0) AS shaped_ops, coalesce(k.unmapped_graph_ops, 0) AS unmapped_graph_ops
FROM trace_window w
LEFT JOIN (SELECT trace, count(*) AS shaped_ops FROM events
           WHERE kind = 'cpu_op' AND input_dims IS NOT NULL AND input_dims NOT IN ('', '[]')
           GROUP BY trace) e USING (trace)
LEFT JOIN (SELECT trace,
                  count(*) FILTER (WHERE NOT coalesce(contains(args, '"@graphmap"'), FALSE)) AS unmapped_graph_ops
           FROM (SELECT trace, args FROM kernels WHERE api_is_graph_launch(launch_name))
           GROUP BY trace) k USING (trace);

-- @output flops
-- @column trace            TEXT      the trace (input file name) the row is about
-- @column phase_path       TEXT      the '/'-joined names of the ranges around the row ('(none)' outside
--                                    every range)
-- @column phase_source     TEXT      'range' | 'module' | 'frame', comma-separated when several; NULL for
--                                    '(none)'
-- @column ops              COUNT     counted (leaf-most) family ops in the phase
-- @column ops_no_flops     COUNT     of those, ops without FLOPs (no recorded shapes, or shapes the formulas
--                                    reject)
-- @column flops            COUNT     FLOPs of the counted ops (shapes formulas, or the trace's with_flops
--                                    values)
-- @column gflops_per_token NUMBER    flops / tokens_per_step / 1e9
-- @column flops_source     TEXT      'shapes' | 'trace' (with_flops values) | 'shapes+trace'
-- @column bytes            COUNT     sum of bytes of those ops (NULL when any of them lacks bytes)
-- @column timed_ops        COUNT     ops with FLOPs that launched >= 1 GPU op (the TFLOP/s population)
-- @column gpu_ops          COUNT     GPU ops launched by the timed ops
-- @column gpu_ns           DURATION  their summed duration (denominator of tflops_s and share_of_peak)
-- @column tflops_s         NUMBER    FLOPs of the timed ops / gpu_ns / 1e3 (achieved TFLOP/s)
-- @column peak_tflops      NUMBER    FLOPs of the timed ops / ideal_ns / 1e3 (dense peak for their dtypes)
-- @column share_of_peak    SHARE     ideal_ns / gpu_ns, ideal_ns = sum of FLOPs / peak over the timed ops
-- @column tb_s             NUMBER    bytes of the timed ops / gpu_ns / 1e3 (achieved TB/s; NULL when bytes
--                                    are)
-- @column bw_share         SHARE     tb_s / the GPU's peak memory bandwidth (peak_tb_s in `device`)
-- @column flop_per_byte    NUMBER    flops / bytes (arithmetic intensity; compare with peak_tflops*1e3/peak
--                                    GB/s)
-- @column dtypes           TEXT      dtypes of the ops, comma-separated
-- @column note             NOTE      what is missing and how to capture it
WITH _by_phase AS (
    SELECT trace, phase_path, count(*) AS ops, count(*) FILTER (WHERE flops IS NULL) AS ops_no_flops,
           sum(flops) AS flops, sum(flops) FILTER (WHERE step_index IS NOT NULL) AS step_flops,
           CASE WHEN bool_or(flops_source = 'trace') AND bool_or(flops_source = 'shapes') THEN 'shapes+trace'
                ELSE max(flops_source) END AS flops_source,
           CASE WHEN count(*) FILTER (WHERE flops IS NOT NULL AND bytes IS NULL) = 0
                THEN sum(bytes) FILTER (WHERE flops IS NOT NULL) END AS bytes,
           count(*) FILTER (WHERE timed) AS timed_ops,
           count(*) FILTER (WHERE flops IS NOT NULL AND gpu_ops = 0) AS untimed_ops,
           sum(gpu_ops) FILTER (WHERE timed) AS gpu_ops,
           sum(gpu_ns) FILTER (WHERE timed) AS gpu_ns,
           _fl_timed_flops(flops, timed) AS timed_flops,
           CASE WHEN count(*) FILTER (WHERE timed AND bytes IS NULL) = 0
                THEN sum(bytes) FILTER (WHERE timed) END AS timed_bytes,
           _fl_ideal_ns(flops, peak_tflops, timed) AS ideal_ns,
           string_agg(DISTINCT dtype, ',' ORDER BY dtype) AS dtypes,
           string_agg(DISTINCT CASE WHEN timed AND peak_tflops IS NULL THEN dtype END, ',') AS no_peak_dtypes,
           modules_src_agg(phase_source) AS phase_source
    FROM flops_ops GROUP BY trace, phase_path
)
SELECT g.trace, g.phase_path, g.phase_source, g.ops, g.ops_no_flops, g.flops::BIGINT AS flops,
       g.step_flops / (ns.steps * TRY_CAST(getvariable('tokens_per_step') AS DOUBLE)) / 1e9 AS gflops_per_token,
       g.flops_source, g.bytes::BIGINT AS bytes,
       g.timed_ops, g.gpu_ops::BIGINT AS gpu_ops, g.gpu_ns::BIGINT AS gpu_ns,
       g.timed_flops / nullif(g.gpu_ns, 0) / 1e3 AS tflops_s,
       g.timed_flops / nullif(g.ideal_ns, 0) / 1e3 AS peak_tflops,
       g.ideal_ns / nullif(g.gpu_ns, 0) AS share_of_peak,
       g.timed_bytes / nullif(g.gpu_ns, 0) / 1e3 AS tb_s,
       g.timed_bytes / nullif(g.gpu_ns, 0) / 1e3 / v.peak_tb_s AS bw_share,
       g.flops / nullif(g.bytes, 0) AS flop_per_byte,
       g.dtypes,
       nullif(concat_ws('; ',
           CASE WHEN g.ops_no_flops > 0
                THEN g.ops_no_flops || ' of ' || g.ops || CASE WHEN g.ops = 1 THEN ' op has' ELSE ' ops have' END
                     || ' no FLOPs: '
                     || CASE WHEN c.shaped_ops > 0
                             THEN 'these ops carry no input shapes, or shapes the formulas reject '
                                  || '(the trace does record shapes)'
                             ELSE 'no input shapes (capture with record_shapes=True) '
                                  || 'or shapes the formulas reject' END END,
           CASE WHEN g.timed_ops = 0 AND g.untimed_ops > 0
                THEN 'no GPU op was launched by these ops (CPU-only run, or no runtime rows: capture with '
                     || 'ProfilerActivity.CUDA): TFLOP/s unknown'
                WHEN g.untimed_ops > 0
                THEN g.untimed_ops
                     || CASE WHEN g.untimed_ops = 1 THEN ' op launched no GPU op and is'
                             ELSE ' ops launched no GPU op and are' END
                     || ' left out of TFLOP/s' END,
           CASE WHEN g.timed_ops > 0 AND g.ideal_ns IS NULL
                THEN coalesce(v.note, 'no peak for dtype ' || g.no_peak_dtypes || ' on ' || v.matched
                                      || ': pass --peak-tflops X') END,
           (SELECT 'fp32 ops of this trace ran at ' || printf('%.1f', a.fp32_tflops_s)
                   || ' TFLOP/s, above the fp32 peak of ' || printf('%.1f', a.fp32_peak)
                   || ': they used TF32 tensor cores, so the tf32 peak is used (--tf32 says so explicitly)'
            FROM _fl_auto_tf32 a
            WHERE a.trace = g.trace AND g.timed_ops > 0 AND contains(coalesce(g.dtypes::VARCHAR, ''), 'fp32')),
           CASE WHEN g.timed_ops > 0 AND g.timed_bytes IS NOT NULL AND v.peak_tb_s IS NULL
                     AND NOT (g.ideal_ns IS NULL AND v.note IS NOT NULL)  -- the device note is said once
                THEN coalesce(v.note, 'no memory bandwidth known: pass --peak-tb-s Y') END
       ), '') AS note
FROM _by_phase g JOIN _fl_dev v USING (trace) JOIN _fl_caps c USING (trace)
LEFT JOIN (SELECT trace, count(*) AS steps FROM step_instances GROUP BY trace) ns USING (trace)
UNION ALL
SELECT w.trace, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       CASE WHEN c.unmapped_graph_ops > 0 THEN
                'no matmul/attention cpu_op outside CUDA graph replays: the ' || c.unmapped_graph_ops
                || ' graph-replayed GPU ops '
                || 'have no cpu_op' || CASE WHEN c.shaped_ops > 0 THEN ' (the trace does record shapes)' ELSE '' END
                || '; run `tracekit graphmap` with a reference (an eager run or a profile of the graph capture) '
                || 'to count them from the reference op shapes'
            WHEN c.shaped_ops > 0 THEN 'no matmul/attention cpu_op in the trace (shapes are recorded: nothing to count)'
            ELSE 'no matmul/attention cpu_op in the trace: FLOPs need PyTorch cpu_op rows (torch.profiler; nsys traces '
                 || 'have none) with record_shapes=True' END
FROM trace_window w JOIN _fl_caps c USING (trace) WHERE NOT EXISTS (SELECT 1 FROM flops_ops o WHERE o.trace = w.trace)
ORDER BY trace, flops DESC NULLS LAST, phase_path;

-- @output ops
-- @column trace          TEXT      the trace (input file name) the row is about
-- @column name           TEXT      the op or range name
-- @column input_dims     TEXT      the op's input shapes (needs record_shapes=True)
-- @column dtype          TEXT      the op's input element type
-- @column calls          COUNT     executions of the op
-- @column flops_per_call COUNT     FLOPs of one execution
-- @column flops          COUNT     FLOPs of all its executions
-- @column bytes_per_call COUNT     bytes one execution reads and writes
-- @column gpu_ns         DURATION  their summed duration (denominator of tflops_s and share_of_peak)
-- @column tflops_s       NUMBER    FLOPs of the timed ops / gpu_ns / 1e3 (achieved TFLOP/s)
-- @column share_of_peak  SHARE     ideal_ns / gpu_ns, ideal_ns = sum of FLOPs / peak over the timed ops
-- @column tb_s           NUMBER    bytes of the timed ops / gpu_ns / 1e3 (achieved TB/s; NULL when bytes are)
-- @column flop_per_byte  NUMBER    flops / bytes (arithmetic intensity; compare with peak_tflops*1e3/peak
--                                  GB/s)
-- @column phase_path     TEXT      the '/'-joined names of the ranges around the row ('(none)' outside every
--                                  range)
-- @column flops_source   TEXT      'shapes' | 'trace' (with_flops values) | 'shapes+trace'
WITH _path_counted AS (  -- how often each phase_path holds the op: its most frequent one is reported (ties: text order)
    SELECT *, count(*) OVER (PARTITION BY trace, name, input_dims, dtype, phase_path) AS _pp_n FROM flops_ops
), _by_shape AS (
    SELECT trace, name, input_dims, dtype, count(*) AS calls, sum(flops) AS flops, max(flops) AS flops_max,
           min(flops) AS flops_min, max(bytes) AS bytes_per_call, sum(gpu_ns) FILTER (WHERE timed) AS gpu_ns,
           _fl_timed_flops(flops, timed) AS timed_flops,
           CASE WHEN count(*) FILTER (WHERE timed AND bytes IS NULL) = 0
                THEN sum(bytes) FILTER (WHERE timed) END AS timed_bytes,
           _fl_ideal_ns(flops, peak_tflops, timed) AS ideal_ns,
           first(phase_path ORDER BY _pp_n DESC, phase_path) AS phase_path,
           string_agg(DISTINCT flops_source, '+') AS flops_source
    FROM _path_counted GROUP BY ALL
)
SELECT trace, name, input_dims, dtype, calls,
       CASE WHEN flops_min = flops_max THEN flops_max::BIGINT END AS flops_per_call, flops::BIGINT AS flops,
       bytes_per_call::BIGINT AS bytes_per_call, gpu_ns::BIGINT AS gpu_ns,
       timed_flops / nullif(gpu_ns, 0) / 1e3 AS tflops_s, ideal_ns / nullif(gpu_ns, 0) AS share_of_peak,
       timed_bytes / nullif(gpu_ns, 0) / 1e3 AS tb_s, flops_max / nullif(bytes_per_call, 0) AS flop_per_byte,
       phase_path, flops_source
FROM _by_shape
QUALIFY row_number() OVER (PARTITION BY trace ORDER BY flops DESC NULLS LAST, name, input_dims, dtype)
        <= getvariable('top_n')
ORDER BY trace, flops DESC NULLS LAST, name, input_dims, dtype;

-- @output steps
-- @column trace              TEXT      the trace (input file name) the row is about
-- @column step_index         ID        the step's number in its trace (1.. in time order)
-- @column step_name          TEXT      the step range's name as captured
-- @column wall_ns            DURATION  the step's wall time
-- @column ops                COUNT     counted ops in the step
-- @column flops              COUNT     FLOPs of the step's counted ops
-- @column gflops_per_token   NUMBER    flops / tokens_per_step / 1e9
-- @column gpu_ns             DURATION  their summed duration (denominator of tflops_s and share_of_peak)
-- @column tflops_s           NUMBER    FLOPs of the timed ops / gpu_ns / 1e3 (achieved TFLOP/s)
-- @column share_of_peak      SHARE     ideal_ns / gpu_ns, ideal_ns = sum of FLOPs / peak over the timed ops
-- @column tflops_s_wall      NUMBER    flops / wall_ns / 1e3 (model-FLOPs rate over the step's wall time)
-- @column wall_share_of_peak SHARE     ideal_ns / wall_ns (model-FLOPs utilisation over the step's wall time)
WITH _by_step AS (
    SELECT trace, step_index, count(*) AS ops, sum(flops) AS flops, sum(gpu_ns) FILTER (WHERE timed) AS gpu_ns,
           _fl_timed_flops(flops, timed) AS timed_flops, _fl_ideal_ns(flops, peak_tflops, timed) AS ideal_ns,
           CASE WHEN count(*) FILTER (WHERE flops IS NOT NULL AND peak_tflops IS NULL) = 0
                THEN sum(flops / (peak_tflops * 1e3)) END AS ideal_all_ns
    FROM flops_ops WHERE step_index IS NOT NULL GROUP BY ALL
)
SELECT s.trace, s.step_index, s.name AS step_name, s.end_ns - s.ts_ns AS wall_ns, coalesce(g.ops, 0) AS ops,
       g.flops::BIGINT AS flops, g.flops / TRY_CAST(getvariable('tokens_per_step') AS DOUBLE) / 1e9 AS gflops_per_token,
       g.gpu_ns::BIGINT AS gpu_ns,
       g.timed_flops / nullif(g.gpu_ns, 0) / 1e3 AS tflops_s, g.ideal_ns / nullif(g.gpu_ns, 0) AS share_of_peak,
       g.flops / nullif(s.end_ns - s.ts_ns, 0) / 1e3 AS tflops_s_wall,
       g.ideal_all_ns / nullif(s.end_ns - s.ts_ns, 0) AS wall_share_of_peak
FROM step_instances s LEFT JOIN _by_step g USING (trace, step_index)
ORDER BY s.trace, s.step_index;

-- @output device
-- @column trace         TEXT      the trace (input file name) the row is about
-- @column gpu_name      TEXT      from the trace, or the --gpu override
-- @column name_source   TEXT      where the GPU name came from: '--gpu' | 'trace'
-- @column matched       TEXT      the peak table row, NULL when none
-- @column bf16_tflops   NUMBER    peak dense bf16 TFLOP/s
-- @column fp16_tflops   NUMBER    peak dense fp16 TFLOP/s
-- @column fp8_tflops    NUMBER    peak dense fp8 TFLOP/s
-- @column tf32_tflops   NUMBER    peak dense tf32 TFLOP/s
-- @column fp32_tflops   NUMBER    peak fp32 TFLOP/s
-- @column peak_tb_s     NUMBER    peak memory bandwidth in TB/s (after overrides)
-- @column peak_override TEXT      which peaks the options overrode (NULL: none)
-- @column note          NOTE      what is missing and how to capture it
SELECT trace, gpu_name, name_source, matched, bf16_tflops, fp16_tflops, fp8_tflops, tf32_tflops, fp32_tflops,
       peak_tb_s, nullif(peak_override, '') AS peak_override, note
FROM _fl_dev ORDER BY trace;
