-- lib/kernel_names: readable kernel names (loaded by `-- @requires lib/kernel_names`).
-- @requires lib/gpu_activity
--
-- Kernel names as traces write them are C++ signatures, sometimes mangled, hundreds of characters
-- long; at 80 columns four of an H100 trace's six top kernels printed as the same `void at::nati…ambda(int)#1})`.
-- Two steps, both per distinct name:
--   demangled   the toolchain's C++ demangler's reading of a mangled name (table _demangled, built by
--               tracekit.demangle.register in tracekit.report.prepare from the distinct `_Z...` names;
--               other names come back as they are, and so does a mangled name no demangler here can read)
--   short_name  the function without template noise, keeping what tells kernels of one family apart (the table
--               below puts it together from the _ks_* parts). Rules, in order:
--               - a name with no `<` or `(` (cuBLAS/cuDNN `sm90_xmma_gemm_...`, hipBLASLt `Cijk_...`,
--                 `ampere_sgemm_...`, NCCL, Triton) stays, except: `sm*_xmma_*` drops its stage / warp size /
--                 alignment / `execute_kernel__5x_cublas` parts (tile size and split_k stay); `Cijk_*` keeps
--                 its operand layouts, type, macro tile (MT) and matrix instruction (MI)
--               - `void ` and namespaces (`at::native::`, `(anonymous namespace)::`) are dropped
--               - `cutlass::Kernel<X>` with one name X as its argument: X
--               - otherwise family<dtype, numbers, op, element type>: the family (the function name; a
--                 function called `kernel`/`Kernel` keeps its namespace: `gemvx::kernel`), then from its
--                 template arguments the first one when it is a scalar type, the first run of integer
--                 arguments (tile sizes, vector widths: `elementwise_kernel<128, 4, ...>`,
--                 `flash_fwd_kernel<64, 128, 128, 4>`), the op: the first function named inside
--                 (`silu_kernel` shown as `silu`, `direct_copy_kernel_cuda` as `direct_copy`) else the first
--                 functor or reduction (`MulFunctor<float>`; `MeanOps<float, float, ...>` as `MeanOps`; a thrust
--                 agent) that is not a wrapper
--                 (BinaryFunctor, AUnaryFunctor, BUnaryFunctor, ReduceOp, gpu_kernel_impl), and the element
--                 type the op runs on (the innermost typed lambda's argument, or the wrapper's first type)
--               Names of one family may still share a short name (two `direct_copy` lambdas of one dtype):
--               outputs keep one row per full name, and the full name is beside the short one.
-- Output (temp table, public): kernel_names  one row per distinct (kind, name) of gpu_activity_names: kind, name,
--   category, demangled, short_name (memcpy/memset: their name).
CREATE OR REPLACE TEMP MACRO _ks_body(d) AS regexp_replace(d, '^(void |std::enable_if<[^<>]*>::type )', '');
CREATE OR REPLACE TEMP MACRO _ks_strip(s) AS
    regexp_replace(s, '(\(anonymous namespace\)|<unnamed>|[A-Za-z_]\w*)::', '', 'g');
CREATE OR REPLACE TEMP MACRO _ks_args(s) AS
    CASE WHEN regexp_matches(s, '^[A-Za-z_]\w*<') THEN substr(s, length(regexp_extract(s, '^[A-Za-z_]\w*')) + 2) END;
CREATE OR REPLACE TEMP MACRO _ks_nums(a) AS regexp_replace(regexp_replace(
    regexp_extract(a, '(?:^|[<,] ?)((?:\((?:int|unsigned int|long|bool)\))?-?[0-9]+[ul]*'
                      || '(?:, (?:\((?:int|unsigned int|long|bool)\))?-?[0-9]+[ul]*)*)(?:[,>]|$)', 1),
    '\((?:int|unsigned int|long|bool)\)', '', 'g'), '([0-9])[ul]+', '\1', 'g');
CREATE OR REPLACE TEMP MACRO _ks_fn(a) AS list_filter(
    regexp_extract_all(a, '([A-Za-z_]\w*)(?:<(?:[^<>()]|<[^<>()]*>)*>)?\(', 1),
    lambda x: x NOT IN ('operator', 'lambda', 'decltype', 'const')
              AND NOT regexp_matches(x, '^(gpu_kernel_impl|gpu_index_kernel)'))[1];
CREATE OR REPLACE TEMP MACRO _ks_functor(a) AS list_filter(
    regexp_extract_all(a, '([A-Za-z_]\w*(?:Functor|functor|Ops|Agent)\w*(?:<[^<>()]*>)?)', 1),
    lambda x: NOT regexp_matches(x, '^(BinaryFunctor|AUnaryFunctor|BUnaryFunctor|UnaryFunctor|ReduceOp)(<|$)'))[1];
CREATE OR REPLACE TEMP MACRO _ks_dtype(a) AS nullif(regexp_extract(a,
    '^((?:c10::)?(?:float|double|half|Half|BFloat16|bfloat16_t|__nv_bfloat16|__half|int|long|bool|signed char'
    || '|unsigned char|short|u?int(?:8|16|32|64)_t|Float8\w*|float8\w*))[,>]', 1), '');
CREATE OR REPLACE TEMP MACRO _ks_plain(n) AS CASE
    WHEN regexp_matches(n, '^sm[0-9]+_xmma_') THEN regexp_replace(regexp_replace(n,
        '_(stage|warpsize|warpgroupsize|aligna|alignc|tensor)[0-9x]+|_ffma|_g1(_|$)|_execute|_t1r1s1', '\2', 'g'),
        '_kernel_*(_5x)?(_cublas|_cudnn\w*)?$', '')
    WHEN regexp_matches(n, '^Cijk_')
    THEN regexp_replace(n, '^(Cijk_[A-Za-z]+_[A-Za-z]+_[A-Za-z0-9]+)_.*?(_MT[0-9x]+).*?(_MI[0-9x]+)?_.*$', '\1\2\3')
    ELSE n END;
-- the element type an elementwise op runs on: its innermost lambda's argument, or the first type of the
-- Binary/Unary functor wrapping the op (MulFunctor<float> runs on BFloat16 inside BinaryFunctor<BFloat16, ...>)
CREATE OR REPLACE TEMP MACRO _ks_etype(a) AS nullif(coalesce(
    list_filter(regexp_extract_all(a, '[{\[]lambda\(([^(),]+)\)', 1),
                lambda x: x NOT IN ('', 'int') AND NOT contains(x, 'auto'))[-1],
    regexp_extract(a, '(?:BinaryFunctor|AUnaryFunctor|BUnaryFunctor)<([^,<>]+)', 1)), '');
-- the op: a function's name without its `_kernel` / `_cuda` / `_impl` suffixes (silu_kernel -> silu,
-- direct_copy_kernel_cuda -> direct_copy); a functor keeps one template argument, not a list (MeanOps<float, ...> ->
-- MeanOps). The `_of` macros take their parts as values: the table below computes each part once per name, as a
-- column; one macro nesting the others (DuckDB binds a macro's regexes again at each use of its argument) cost
-- 60 ms a report.
CREATE OR REPLACE TEMP MACRO _ks_op_of(fn, functor, etype) AS CASE
    WHEN fn IS NOT NULL OR functor IS NOT NULL
    THEN concat_ws(', ', coalesce(nullif(regexp_replace(fn, '(_kernel|_cuda|_impl)+$', ''), ''),
                                  regexp_replace(functor, '<[^<>]*,[^<>]*>$', '')), etype) END;
CREATE OR REPLACE TEMP MACRO _ks_join_of(f, a, dtype, nums, op) AS CASE WHEN a IS NULL THEN f ELSE
    f || coalesce('<' || nullif(concat_ws(', ', dtype, nullif(nums, ''), op), '') || '>', '') END;
CREATE OR REPLACE TEMP MACRO _ks_of_joined(s, f, a, joined) AS CASE
    WHEN NOT regexp_matches(s, '[<(]') THEN _ks_plain(s)
    WHEN regexp_matches(f, '(^|:)Kernel2?$') AND regexp_matches(a, '^[A-Za-z_]\w*>')
    THEN regexp_extract(a, '^([A-Za-z_]\w*)>', 1)
    ELSE joined END;
CREATE OR REPLACE TEMP MACRO _ks_family(b) AS CASE
    WHEN regexp_extract(_ks_strip(b), '^([A-Za-z_]\w*)', 1) IN ('kernel', 'Kernel', 'Kernel2')
    THEN regexp_extract(b, '([A-Za-z_]\w*::)?[A-Za-z_]\w*[<(]', 0)[:-2]
    ELSE regexp_extract(_ks_strip(b), '^([A-Za-z_]\w*)', 1) END;

CREATE OR REPLACE TEMP TABLE kernel_names AS
WITH _named AS (
    SELECT g.kind, g.name, g.category,
           CASE WHEN g.kind = 'kernel' THEN coalesce(d.demangled, g.name) ELSE g.name END AS demangled
    FROM gpu_activity_names g LEFT JOIN _demangled d ON d.name = g.name
),
-- the short name, one part per column (see the `_of` macros above)
_body AS (SELECT *, _ks_body(demangled) AS _b FROM _named),
_stripped AS (SELECT *, _ks_strip(_b) AS _s, _ks_family(_b) AS _f FROM _body),
_args AS (SELECT *, _ks_args(_s) AS _a FROM _stripped),
_parts AS (
    SELECT *, _ks_fn(_a) AS _fn, _ks_functor(_a) AS _fu, _ks_etype(_a) AS _et, _ks_dtype(_a) AS _dt,
           _ks_nums(_a) AS _nu
    FROM _args
),
_joined AS (SELECT *, _ks_join_of(_f, _a, _dt, _nu, _ks_op_of(_fn, _fu, _et)) AS _j FROM _parts)
SELECT kind, name, category, demangled,
       CASE WHEN kind = 'kernel' AND demangled IS NOT NULL THEN _ks_of_joined(_s, _f, _a, _j) ELSE name END
           AS short_name
FROM _joined;
