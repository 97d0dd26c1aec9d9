-- lm_head: how much GPU time does the LM head (vocabulary projection) take, per scope?
--
-- Run it with `tracekit report` (or tracekit.report.run): that loads _common.sql first and sets every
-- getvariable() parameter to its documented default (tracekit/report.py: DEFAULTS).
--
-- Three methods, tried in order; `used` marks the first that found lm_head GPU ops:
--   1_range         GPU ops launched inside a range whose name fully matches
--                   getvariable('lm_head_regex') (default '(?i).*lm_head.*'); scope = the
--                   phase_path above that range (e.g. 'step/draft' vs 'step/target').
--   2_gemm_shape    GPU ops launched inside a GEMM cpu_op (aten::linear/mm/addmm/matmul/bmm/
--                   baddbmm) whose output dimension (linear: weight rows; mm/matmul/bmm: last
--                   dim of the 2nd input; addmm/baddbmm: of the 3rd) equals the vocabulary size:
--                   getvariable('vocab') when set, else inferred as the largest such output dim
--                   when >= 16000 (vocab_source says which). Needs record_shapes=True.
--                   Scope = the GPU op's phase_path.
--   3_kernel_regex  kernels whose name matches getvariable('lm_head_kernel_regex') (no default).
-- Kernels replayed by a CUDA graph carry only the graph launch's phase: when a method finds
-- nothing and the trace has graph-replayed GPU ops, it ABSTAINS (status 'abstain') instead of
-- reporting 0, and says how to capture instead.
--
-- Inputs: events (cpu_op rows), ranges; _gpu, _window (from _common.sql).
--
-- Output columns (one row per trace, method and scope; one row per trace and method when none):
--   trace, method, used (TRUE on the rows of the first method with status 'ok')
--   status          ok | not_found | unavailable | abstain
--   scope           phase_path the share is taken within ('(top)' = the whole trace)
--   lm_head_ops     GPU ops attributed to the LM head
--   lm_head_gpu_ns  their summed duration (numerator)
--   scope_gpu_ns    summed duration of all GPU ops launched in the scope, descendants included
--                   (denominator; all GPU ops of the trace for '(top)')
--   share           lm_head_gpu_ns / scope_gpu_ns
--   vocab, vocab_source   for method 2: the vocabulary size used and 'given' | 'inferred ...'
--   note            why a method abstained or found nothing
--
-- How to read: share is of summed GPU op time in the scope (a model's forward if the scope is
-- a forward range), not of wall time.

CREATE OR REPLACE TEMP MACRO _lm_first_seg(pp, re) AS
    list_filter(range(1, len(string_split(pp, '/')) + 1), lambda i: regexp_full_match(string_split(pp, '/')[i], re))[1];
-- GPU op time per phase_path including descendants ('(top)' = the whole trace); each path's time is
-- added to every ancestor prefix, so this is linear in the total path depth.
CREATE OR REPLACE TEMP TABLE _lm_incl AS
WITH _ops AS (SELECT trace, phase_path, sum(dur_ns) AS ns FROM _gpu GROUP BY ALL)
SELECT trace, array_to_string(segs[1:i], '/') AS scope, sum(ns) AS scope_gpu_ns
FROM (SELECT trace, ns, segs, unnest(range(1, len(segs) + 1)) AS i
      FROM (SELECT trace, ns, string_split(phase_path, '/') AS segs FROM _ops WHERE phase_path <> '(none)'))
GROUP BY ALL
UNION ALL SELECT trace, phase_path, ns FROM _ops WHERE phase_path = '(none)'
UNION ALL SELECT trace, '(top)', sum(ns) FROM _ops GROUP BY trace;

CREATE OR REPLACE TEMP TABLE _lm_vocab AS
WITH _gemm AS (
    SELECT trace,
           CASE WHEN name = 'aten::linear' THEN try_cast(json_extract_string(input_dims, '$[1][0]') AS BIGINT)
                WHEN name IN ('aten::addmm', 'aten::baddbmm') THEN try_cast(json_extract_string(input_dims, '$[2][#-1]') AS BIGINT)
                ELSE try_cast(json_extract_string(input_dims, '$[1][#-1]') AS BIGINT) END AS out_dim
    FROM events
    WHERE kind = 'cpu_op' AND input_dims IS NOT NULL AND json_valid(input_dims)
      AND name IN ('aten::linear', 'aten::mm', 'aten::addmm', 'aten::matmul', 'aten::bmm', 'aten::baddbmm')
)
SELECT w.trace, count(g.out_dim) AS gemms,
       coalesce(getvariable('vocab'), CASE WHEN max(g.out_dim) >= 16000 THEN max(g.out_dim) END) AS vocab,
       CASE WHEN getvariable('vocab') IS NOT NULL THEN 'given'
            WHEN max(g.out_dim) >= 16000 THEN 'inferred: largest GEMM output dim'
            ELSE 'not inferred: no GEMM output dim >= 16000' END AS vocab_source
FROM _window w LEFT JOIN _gemm g USING (trace) GROUP BY w.trace;

CREATE OR REPLACE TEMP TABLE _lm_hits AS
WITH _m1 AS (
    SELECT trace, '1_range' AS method, dur_ns, graph,
           coalesce(nullif(array_to_string(string_split(phase_path, '/')[1:_lm_first_seg(phase_path, getvariable('lm_head_regex')) - 1], '/'), ''), '(top)') AS scope
    FROM _gpu WHERE _lm_first_seg(phase_path, getvariable('lm_head_regex')) IS NOT NULL
), _gemm AS (
    SELECT trace, tid, ts_ns, ts_ns + greatest(dur_ns, 0) AS end_ns, name,
           CASE WHEN name = 'aten::linear' THEN try_cast(json_extract_string(input_dims, '$[1][0]') AS BIGINT)
                WHEN name IN ('aten::addmm', 'aten::baddbmm') THEN try_cast(json_extract_string(input_dims, '$[2][#-1]') AS BIGINT)
                ELSE try_cast(json_extract_string(input_dims, '$[1][#-1]') AS BIGINT) END AS out_dim
    FROM events
    WHERE kind = 'cpu_op' AND input_dims IS NOT NULL AND json_valid(input_dims)
      AND name IN ('aten::linear', 'aten::mm', 'aten::addmm', 'aten::matmul', 'aten::bmm', 'aten::baddbmm')
), _lm_gemm AS (
    SELECT g.* FROM _gemm g JOIN _lm_vocab v USING (trace) WHERE g.out_dim = v.vocab
), _m2 AS (
    SELECT g.trace, '2_gemm_shape' AS method, g.dur_ns, g.graph, g.phase_path AS scope
    FROM (SELECT * FROM _gpu WHERE launch_ts_ns IS NOT NULL) g
    ASOF JOIN _lm_gemm m ON g.trace = m.trace AND g.launch_tid = m.tid AND g.launch_ts_ns >= m.ts_ns
    WHERE g.launch_ts_ns <= m.end_ns
), _m3 AS (
    SELECT trace, '3_kernel_regex' AS method, dur_ns, graph, phase_path AS scope
    FROM _gpu WHERE getvariable('lm_head_kernel_regex') IS NOT NULL
                AND regexp_matches(name, getvariable('lm_head_kernel_regex'))
)
SELECT h.*, CASE WHEN h.method = '2_gemm_shape' THEN v.vocab END AS vocab,
       CASE WHEN h.method = '2_gemm_shape' THEN v.vocab_source END AS vocab_source FROM (
    SELECT * FROM _m1 UNION ALL SELECT * FROM _m2 UNION ALL SELECT * FROM _m3) h
LEFT JOIN _lm_vocab v USING (trace);

-- @output lm_head
WITH _methods AS (SELECT unnest(['1_range', '2_gemm_shape', '3_kernel_regex']) AS method),
_graph AS (SELECT trace, count(*) FILTER (WHERE graph) AS graph_ops FROM _gpu GROUP BY trace),
_ok AS (
    SELECT trace, method, scope, count(*) AS lm_head_ops, sum(dur_ns) AS lm_head_gpu_ns,
           any_value(vocab) AS vocab, any_value(vocab_source) AS vocab_source
    FROM _lm_hits GROUP BY ALL
), _rows AS (
    SELECT o.trace, o.method, 'ok' AS status, o.scope, o.lm_head_ops, o.lm_head_gpu_ns::BIGINT AS lm_head_gpu_ns,
           i.scope_gpu_ns::BIGINT AS scope_gpu_ns,
           o.vocab, o.vocab_source, NULL AS note
    FROM _ok o LEFT JOIN _lm_incl i USING (trace, scope)
    UNION ALL
    SELECT w.trace, m.method,
           CASE WHEN m.method = '2_gemm_shape' AND v.gemms = 0 THEN 'unavailable'
                WHEN m.method = '3_kernel_regex' AND getvariable('lm_head_kernel_regex') IS NULL THEN 'unavailable'
                WHEN coalesce(gr.graph_ops, 0) > 0 THEN 'abstain'
                ELSE 'not_found' END,
           NULL, NULL, NULL, NULL,
           CASE WHEN m.method = '2_gemm_shape' THEN v.vocab END, CASE WHEN m.method = '2_gemm_shape' THEN v.vocab_source END,
           CASE WHEN m.method = '2_gemm_shape' AND v.gemms = 0 THEN 'no GEMM cpu_op with input shapes: profile with record_shapes=True'
                WHEN m.method = '3_kernel_regex' AND getvariable('lm_head_kernel_regex') IS NULL THEN 'no kernel regex given (--lm-head-kernel-regex)'
                WHEN coalesce(gr.graph_ops, 0) > 0 THEN
                    'no lm_head GPU op found, and ' || gr.graph_ops || ' GPU ops were replayed by CUDA graph launches, which carry only the '
                    || 'launch''s phase: lm_head time may be inside them. Capture with graphs disabled (e.g. SGLang --disable-cuda-graph, '
                    || 'torch.compile mode without cudagraphs) or with nsys --cuda-graph-trace=node plus NVTX ranges around lm_head.'
                WHEN m.method = '1_range' THEN 'no GPU op launched inside a range matching ' || getvariable('lm_head_regex')
                ELSE 'no GEMM whose output dim equals the vocabulary size' END
    FROM _window w CROSS JOIN _methods m
    LEFT JOIN _graph gr USING (trace) LEFT JOIN _lm_vocab v USING (trace)
    WHERE NOT EXISTS (SELECT 1 FROM _ok o WHERE o.trace = w.trace AND o.method = m.method)
), _first AS (SELECT trace, min(method) AS used_method FROM _ok GROUP BY trace)
SELECT r.trace, r.method, coalesce(r.method = f.used_method, FALSE) AS used, r.status, r.scope, r.lm_head_ops,
       r.lm_head_gpu_ns, r.scope_gpu_ns, r.lm_head_gpu_ns / nullif(r.scope_gpu_ns, 0) AS share,
       r.vocab, r.vocab_source, r.note
FROM _rows r LEFT JOIN _first f USING (trace)
ORDER BY r.trace, r.method, r.lm_head_gpu_ns DESC NULLS LAST;
