-- lm_head: how much GPU time does the LM head (vocabulary projection) take, per scope?
-- @requires lib/api lib/gpu_activity lib/modules lib/trace_window
-- @param vocab COUNT NULL vocabulary size for lm_head method 2 (NULL: inferred from GEMM shapes; the output
--     says which)
-- @param lm_head_regex REGEX '(?i).*lm_head.*' regex (full match) for lm_head range names (method 1)
-- @param lm_head_kernel_regex REGEX NULL regex (full match) for the LM head's kernel names (method 3; none by default)
--
-- Run it with `tracekit report` (or tracekit.report.run): that loads the modules on its @requires line first and sets
-- every getvariable() parameter to its default (its @param line; docs/queries.md).
--
-- Three methods, tried in order; `used` marks the first that found lm_head GPU ops:
--   1_range         GPU ops launched inside a range whose name fully matches
--                   getvariable('lm_head_regex') (default '(?i).*lm_head.*'); scope = the
--                   phase_path above that range (e.g. 'step/draft' vs 'step/target').
--                   Phases are EFFECTIVE phases (lib/modules.sql): in a trace without user ranges below
--                   the step, a module phase whose class is named like an LM head (_lm_is_head_module:
--                   contains `lm_head`, `LMHead` or `LMPredictionHead`, case-insensitive, and does not end
--                   in `Model`: BertLMPredictionHead, BertOnlyMLMHead, ParallelLMHead, not GPT2LMHeadModel,
--                   the whole model) counts as such a range; the row's note says so. A head that is a
--                   plain `Linear` (Qwen2ForCausalLM.lm_head) has no such class name: method 2 finds it.
--   2_gemm_shape    GPU ops launched inside a GEMM cpu_op (aten::linear/mm/addmm/matmul/bmm/
--                   baddbmm) whose output dimension (linear: weight rows; mm/matmul/bmm: last
--                   dim of the 2nd input; addmm/baddbmm: of the 3rd) equals the vocabulary size:
--                   getvariable('vocab') when set, else inferred as the largest such output dim
--                   when >= 16000 (vocab_source says which). Needs record_shapes=True.
--                   Scope = the GPU op's (effective) phase_path.
--   3_kernel_regex  kernels whose name matches getvariable('lm_head_kernel_regex') (no default).
-- Kernels replayed by a CUDA graph carry only the graph launch's phase and no cpu_op. After
-- `tracekit graphmap -o`, mapped ones carry the reference's phase_path (method 1 sees them) and the
-- reference op's name and shapes (args."@graphmap".op, input_dims: method 2 counts such a GPU op when
-- its op is a GEMM with the vocabulary as output dim, and its shapes count for the vocab inference).
-- Method 2 reads only ops not replayed by a graph through cpu_ops (a graph launch is not a GEMM).
-- When a method finds nothing and graph-replayed GPU ops remain unmapped, it ABSTAINS (status
-- 'abstain', severity 'warn') instead of reporting 0, and recommends `tracekit graphmap` (and nsys
-- --cuda-graph-trace=node only when the trace is not ROCm: HIP runtime calls).
-- Advice checks the trace first: record_shapes is recommended only when no cpu_op has input shapes;
-- with shapes but GEMMs hidden in graph replays, graphmap is recommended instead.
-- No LM head at all (e.g. a diffusion model): no method found anything, no range matches
-- lm_head_regex, no vocabulary given or inferred, no kernel regex given, and no graph-replayed op is
-- left unmapped (else the head may hide there: abstain): then nothing abstains and one info note
-- (on 1_range) says so; when an aten::embedding weight has >= 16000 rows (the model has a
-- vocabulary, so an LM head), the note says the window does not show it instead.
-- When methods abstain, only the first abstaining row is severity 'warn'.
--
-- Inputs: events (cpu_op rows), kernels (args."@graphmap"), ranges; gpu_activity, runtime_calls,
-- trace_window (queries/lib/); modules_gpu_phase, modules_intervals (lib/modules.sql).
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
--   note            why a method abstained or found nothing, and what would fix it; on an ok 1_range row
--                   found through a module, which module class
--   severity        'warn' on the first abstaining method of a trace where no method succeeded
--                   (the report's warning: one per trace), else 'info'
--
-- How to read: share is of summed GPU op time in the scope (a model's forward if the scope is
-- a forward range), not of wall time.

CREATE OR REPLACE TEMP MACRO _lm_first_seg(pp, re) AS
    list_filter(range(1, len(string_split(pp, '/')) + 1), lambda i: regexp_full_match(string_split(pp, '/')[i], re))[1];
-- A module class named like an LM head (header: 1_range).
CREATE OR REPLACE TEMP MACRO _lm_is_head_module(c) AS
    regexp_full_match(c, '(?i).*(lm_?head|lmpredictionhead).*') AND NOT regexp_full_match(c, '(?i).*model');
-- The first segment of effective path pp that is a module (mp: the module part of pp, at its end) named like
-- an LM head.
CREATE OR REPLACE TEMP MACRO _lm_first_mod_seg(pp, mp) AS CASE WHEN mp IS NOT NULL THEN
    list_filter(range(len(string_split(pp, '/')) - len(string_split(mp, '/')) + 1, len(string_split(pp, '/')) + 1),
                lambda i: _lm_is_head_module(string_split(pp, '/')[i]))[1] END;
-- GPU ops with their effective phase (lib/modules.sql) and the first LM-head segment of it (range, else module)
CREATE OR REPLACE TEMP TABLE _lm_gpu AS
WITH _paths AS (  -- the segments of each distinct path: a regex per segment once per path, not once per op (a
                  -- 419k-event trace has 100k+ ops on a few hundred paths: 0.16 -> 0.05 s)
    SELECT eff_phase_path, module_path, _lm_first_seg(eff_phase_path, getvariable('lm_head_regex')) AS r_seg,
           _lm_first_mod_seg(eff_phase_path, module_path) AS m_seg
    FROM (SELECT DISTINCT eff_phase_path, module_path FROM modules_gpu_phase)
)
SELECT g.*, p.eff_phase_path, p.module_path, list_min([s.r_seg, s.m_seg]) AS lm_seg, s.r_seg IS NULL AS lm_by_module
FROM gpu_activity g JOIN modules_gpu_phase p USING (gid)
JOIN _paths s ON s.eff_phase_path IS NOT DISTINCT FROM p.eff_phase_path
             AND s.module_path IS NOT DISTINCT FROM p.module_path;
-- GPU op time per phase_path including descendants ('(top)' = the whole trace); each path's time is
-- added to every ancestor prefix, so this is linear in the total path depth.
CREATE OR REPLACE TEMP TABLE _lm_incl AS
WITH _ops AS (SELECT trace, eff_phase_path AS phase_path, sum(dur_ns) AS ns FROM _lm_gpu GROUP BY ALL)
SELECT trace, array_to_string(segs[1:i], '/') AS scope, sum(ns) AS scope_gpu_ns
FROM (SELECT trace, ns, segs, unnest(range(1, len(segs) + 1)) AS i
      FROM (SELECT trace, ns, string_split(phase_path, '/') AS segs FROM _ops WHERE phase_path <> '(none)'))
GROUP BY ALL
UNION ALL SELECT trace, phase_path, ns FROM _ops WHERE phase_path = '(none)'
UNION ALL SELECT trace, '(top)', sum(ns) FROM _ops GROUP BY trace;

-- Output dimension of a GEMM op from its input shapes (linear: weight rows; addmm/baddbmm: last dim
-- of the 3rd input; mm/matmul/bmm: last dim of the 2nd).
CREATE OR REPLACE TEMP MACRO _lm_out_dim(op, dims) AS
    CASE WHEN op = 'aten::linear' THEN try_cast(json_extract_string(dims, '$[1][0]') AS BIGINT)
         WHEN op IN ('aten::addmm', 'aten::baddbmm') THEN try_cast(json_extract_string(dims, '$[2][#-1]') AS BIGINT)
         ELSE try_cast(json_extract_string(dims, '$[1][#-1]') AS BIGINT) END;
CREATE OR REPLACE TEMP MACRO _lm_is_gemm(op) AS
    op IN ('aten::linear', 'aten::mm', 'aten::addmm', 'aten::matmul', 'aten::bmm', 'aten::baddbmm');

-- GPU ops replayed by a CUDA graph that `tracekit graphmap` gave the shapes of the reference op
-- that launched them (args."@graphmap".op, input_dims): they stand in for the cpu_op the replay lacks.
CREATE OR REPLACE TEMP TABLE _lm_mapped AS
SELECT k.trace, greatest(k.dur_ns, 0) AS dur_ns, api_is_graph_launch(k.launch_name) AS graph,
       coalesce(p.eff_phase_path, k.phase_path, '(none)') AS phase_path, k.op,
       _lm_out_dim(k.op, k.input_dims) AS out_dim
FROM (SELECT *, json_extract_string(args, '$."@graphmap".op') AS op FROM kernels
      WHERE input_dims IS NOT NULL AND api_is_graph_launch(launch_name) AND contains(args, '"@graphmap"')
            AND json_valid(input_dims)) k
LEFT JOIN modules_gpu_phase p ON p.trace = k.trace AND p.row_id = k.row_id
WHERE _lm_is_gemm(k.op);

-- What the trace holds, to advise only what is missing: cpu_ops with shapes (record_shapes was on),
-- graph-replayed GPU ops and how many of them graphmap mapped, HIP runtime calls (ROCm: no nsys).
CREATE OR REPLACE TEMP TABLE _lm_caps AS
WITH _cpu_side AS (  -- one pass over the CPU-side rows (the regex and the JSON under CASE, not FILTER: DuckDB
                    -- evaluates a FILTER's whole condition on every row, 60 of 75 ms on a 419k-event trace)
    SELECT trace,
           count(*) FILTER (WHERE kind = 'cpu_op' AND input_dims IS NOT NULL
                                  AND input_dims NOT IN ('', '[]')) AS shaped_ops,
           count(CASE WHEN kind = 'range' AND regexp_full_match(name, getvariable('lm_head_regex')) THEN 1 END)
               AS lm_ranges,
           count(*) FILTER (WHERE kind = 'runtime' AND starts_with(name, 'hip')) > 0 AS rocm,
           -- a vocabulary the model embeds (aten::embedding weight [V, H], V >= 16000): it has an LM head
           max(CASE WHEN kind = 'cpu_op' AND name = 'aten::embedding' AND json_valid(input_dims)
                    THEN try_cast(json_extract_string(input_dims, '$[0][0]') AS BIGINT) END) AS embed_rows
    FROM events WHERE kind IN ('cpu_op', 'range', 'runtime') GROUP BY trace
), _graph_side AS (  -- graph-replayed GPU ops, and those graphmap mapped (args are read on graph rows only)
    SELECT trace, count(*) AS graph_ops, count(*) FILTER (WHERE contains(args, '"@graphmap"')) AS mapped_ops
    FROM (SELECT trace, args FROM kernels WHERE api_is_graph_launch(launch_name)) GROUP BY trace
)
SELECT w.trace, coalesce(e.shaped_ops, 0) AS shaped_ops, coalesce(k.graph_ops, 0) AS graph_ops,
       coalesce(k.mapped_ops, 0) AS mapped_ops, coalesce(e.rocm, FALSE) AS rocm, coalesce(e.lm_ranges, 0) AS lm_ranges,
       CASE WHEN e.embed_rows >= 16000 THEN e.embed_rows END AS embed_vocab
FROM trace_window w LEFT JOIN _cpu_side e USING (trace) LEFT JOIN _graph_side k USING (trace);

-- module phases named like an LM head, per trace (they count as lm_head ranges for `no LM head at all`)
UPDATE _lm_caps SET lm_ranges = lm_ranges + m.n
FROM (SELECT trace, count(*) AS n FROM modules_intervals
      WHERE eff_phase_path IS NOT NULL AND _lm_is_head_module(label) GROUP BY trace) m
WHERE _lm_caps.trace = m.trace;

CREATE OR REPLACE TEMP TABLE _lm_vocab AS
WITH _gemm AS (
    SELECT trace, _lm_out_dim(name, input_dims) AS out_dim
    FROM events
    WHERE kind = 'cpu_op' AND input_dims IS NOT NULL AND json_valid(input_dims) AND _lm_is_gemm(name)
    UNION ALL SELECT trace, out_dim FROM _lm_mapped
)
SELECT w.trace, count(g.out_dim) AS gemms,
       coalesce(getvariable('vocab'), CASE WHEN max(g.out_dim) >= 16000 THEN max(g.out_dim) END) AS vocab,
       CASE WHEN getvariable('vocab') IS NOT NULL THEN 'given'
            WHEN max(g.out_dim) >= 16000 THEN 'inferred: largest GEMM output dim'
            ELSE 'not inferred: no GEMM output dim >= 16000' END AS vocab_source
FROM trace_window w LEFT JOIN _gemm g USING (trace) GROUP BY w.trace;

CREATE OR REPLACE TEMP TABLE _lm_hits AS
WITH _by_range AS (
    SELECT trace, '1_range' AS method, dur_ns, graph,
           coalesce(nullif(array_to_string(string_split(eff_phase_path, '/')[1:lm_seg - 1], '/'), ''),
                    '(top)') AS scope,
           CASE WHEN lm_by_module THEN 'the LM head is the module `' || string_split(eff_phase_path, '/')[lm_seg]
                || '` (with_modules: a module class named like an LM head; no user range names it)' END AS via
    FROM _lm_gpu WHERE lm_seg IS NOT NULL
), _gemm AS (
    SELECT trace, tid, ts_ns, ts_ns + greatest(dur_ns, 0) AS end_ns, name, _lm_out_dim(name, input_dims) AS out_dim
    FROM events
    WHERE kind = 'cpu_op' AND input_dims IS NOT NULL AND json_valid(input_dims) AND _lm_is_gemm(name)
), _lm_gemm AS (
    SELECT g.* FROM _gemm g JOIN _lm_vocab v USING (trace) WHERE g.out_dim = v.vocab
), _by_shape AS (  -- eager GPU ops launched inside an lm_head GEMM cpu_op, plus graph-replayed ops graphmap
                  -- shaped as one
    SELECT g.trace, '2_gemm_shape' AS method, g.dur_ns, g.graph, g.eff_phase_path AS scope, NULL AS via
    FROM (SELECT * FROM _lm_gpu WHERE launch_ts_ns IS NOT NULL AND NOT graph) g
    ASOF JOIN _lm_gemm m ON g.trace = m.trace AND g.launch_tid = m.tid AND g.launch_ts_ns >= m.ts_ns
    WHERE g.launch_ts_ns <= m.end_ns
    UNION ALL
    SELECT m.trace, '2_gemm_shape', m.dur_ns, m.graph, m.phase_path, NULL
    FROM _lm_mapped m JOIN _lm_vocab v USING (trace) WHERE m.out_dim = v.vocab
), _by_regex AS (
    SELECT trace, '3_kernel_regex' AS method, dur_ns, graph, eff_phase_path AS scope, NULL AS via
    FROM _lm_gpu WHERE getvariable('lm_head_kernel_regex') IS NOT NULL
                AND regexp_matches(name, getvariable('lm_head_kernel_regex'))
)
SELECT h.*, CASE WHEN h.method = '2_gemm_shape' THEN v.vocab END AS vocab,
       CASE WHEN h.method = '2_gemm_shape' THEN v.vocab_source END AS vocab_source FROM (
    SELECT * FROM _by_range UNION ALL SELECT * FROM _by_shape UNION ALL SELECT * FROM _by_regex) h
LEFT JOIN _lm_vocab v USING (trace);

-- @output lm_head
-- @column trace          TEXT      the trace (input file name) the row is about
-- @column method         TEXT      how the row was found
-- @column used           BOOL      TRUE on the rows of the first method with status 'ok'
-- @column status         TEXT      ok | not_found | unavailable | abstain
-- @column scope          TEXT      phase_path the share is taken within ('(top)' = the whole trace)
-- @column lm_head_ops    COUNT     GPU ops attributed to the LM head
-- @column lm_head_gpu_ns DURATION  their summed duration (numerator)
-- @column scope_gpu_ns   DURATION  summed duration of all GPU ops launched in the scope, descendants included
--                                  (denominator; all GPU ops of the trace for '(top)')
-- @column share          SHARE     lm_head_gpu_ns / scope_gpu_ns
-- @column vocab          COUNT     method 2: the vocabulary size used
-- @column vocab_source   TEXT      method 2: 'given' | 'inferred ...'
-- @column note           NOTE      why a method abstained or found nothing, and what would fix it; on an ok
--                                  1_range row found through a module, which module class
-- @column severity       TEXT      'warn' on the first abstaining method of a trace where no method succeeded
--                                  (the report's warning: one per trace), else 'info'
--
--                                  (the report's warning: one per trace), else 'info'
WITH _methods AS (SELECT unnest(['1_range', '2_gemm_shape', '3_kernel_regex']) AS method),
_found AS (
    SELECT trace, method, scope, count(*) AS lm_head_ops, sum(dur_ns) AS lm_head_gpu_ns,
           any_value(vocab) AS vocab, any_value(vocab_source) AS vocab_source, min(via) AS via
    FROM _lm_hits GROUP BY trace, method, scope
), _trace_caps AS (  -- per trace: graph ops graphmap did not map, and whether the trace shows no LM head at all
    SELECT c.*, v.gemms, v.vocab, v.vocab_source, c.graph_ops - c.mapped_ops AS unmapped,
           NOT EXISTS (SELECT 1 FROM _found o WHERE o.trace = c.trace) AND c.lm_ranges = 0 AND v.vocab IS NULL
               AND getvariable('lm_head_kernel_regex') IS NULL AND c.graph_ops = c.mapped_ops AS no_lm_head
    FROM _lm_caps c JOIN _lm_vocab v USING (trace)
), _graph_advice AS (
    SELECT trace, 'run `tracekit graphmap` with a reference of the same model (an eager run, or a profile of the graph '
                  || 'capture) to give the replayed ops their phases and shapes'
                  || CASE WHEN rocm THEN ''
                          ELSE ', or capture with nsys --cuda-graph-trace=node plus NVTX ranges around lm_head' END
                  || ', or capture with graphs disabled (e.g. SGLang --disable-cuda-graph)' AS advice
    FROM _trace_caps
), _rows AS (
    SELECT o.trace, o.method, 'ok' AS status, o.scope, o.lm_head_ops, o.lm_head_gpu_ns::BIGINT AS lm_head_gpu_ns,
           i.scope_gpu_ns::BIGINT AS scope_gpu_ns,
           o.vocab, o.vocab_source, o.via AS note, NULL AS severity
    FROM _found o LEFT JOIN _lm_incl i USING (trace, scope)
    UNION ALL
    SELECT t.trace, m.method,
           CASE WHEN m.method = '2_gemm_shape' AND t.gemms = 0 THEN 'unavailable'
                WHEN m.method = '3_kernel_regex' AND getvariable('lm_head_kernel_regex') IS NULL THEN 'unavailable'
                WHEN t.unmapped > 0 AND NOT t.no_lm_head THEN 'abstain'
                ELSE 'not_found' END,
           NULL, NULL, NULL, NULL,
           CASE WHEN m.method = '2_gemm_shape' THEN t.vocab END,
           CASE WHEN m.method = '2_gemm_shape' THEN t.vocab_source END,
           CASE WHEN t.no_lm_head THEN CASE WHEN m.method = '1_range' THEN
                    CASE WHEN t.embed_vocab IS NOT NULL THEN
                        'no LM head GPU op in this trace: the model embeds a vocabulary of ' || t.embed_vocab
                        || ' tokens (aten::embedding), but no range matches ' || getvariable('lm_head_regex')
                        || ' and none of its ' || t.gemms
                        || ' shaped GEMMs has an output dim >= 16000: the LM head ran outside the captured window, or '
                        || 'as an op not recognised here (pass --vocab ' || t.embed_vocab
                        || ' or --lm-head-kernel-regex).'
                    ELSE 'no LM head in this trace: no range matching ' || getvariable('lm_head_regex')
                        || ' and none of its ' || t.gemms
                        || ' shaped GEMMs has an output dim >= 16000 (a vocabulary): a model without one (e.g. '
                        || 'diffusion) or a window without it. Pass --vocab V or --lm-head-kernel-regex if it has one.'
                    END END
                WHEN m.method = '2_gemm_shape' AND t.gemms = 0 THEN
                    CASE WHEN t.shaped_ops > 0 AND t.unmapped > 0 THEN
                             'no GEMM cpu_op ran outside CUDA graphs (shapes are recorded: ' || t.shaped_ops
                             || ' cpu_ops carry them); '
                             || t.unmapped || ' GPU ops were replayed by graphs, without shapes: ' || a.advice
                         WHEN t.shaped_ops > 0 THEN
                             'no GEMM cpu_op (aten::linear/mm/addmm/matmul/bmm/baddbmm) in the trace, '
                             || 'although shapes are recorded'
                         ELSE 'no GEMM cpu_op with input shapes: profile with record_shapes=True' END
                WHEN m.method = '3_kernel_regex' AND getvariable('lm_head_kernel_regex') IS NULL
                    THEN 'no kernel regex given (--lm-head-kernel-regex)'
                WHEN t.unmapped > 0 AND m.method = '2_gemm_shape' THEN
                    'no GEMM whose output dim equals the vocabulary size outside the ' || t.unmapped
                    || ' graph-replayed GPU ops (abstains for the reason given on 1_range)'
                WHEN t.unmapped > 0 THEN
                    'no lm_head GPU op found, and ' || t.unmapped || ' GPU ops were replayed by CUDA graph launches'
                    || CASE WHEN t.mapped_ops > 0 THEN ' without a graphmap mapping' ELSE '' END
                    || ', which carry only the launch''s phase: lm_head time may be inside them. ' || a.advice
                WHEN m.method = '1_range'
                    THEN 'no GPU op launched inside a range matching ' || getvariable('lm_head_regex')
                ELSE 'no GEMM whose output dim equals the vocabulary size' END,
           NULL
    FROM _trace_caps t CROSS JOIN _methods m JOIN _graph_advice a USING (trace)
    WHERE NOT EXISTS (SELECT 1 FROM _found o WHERE o.trace = t.trace AND o.method = m.method)
), _first AS (SELECT trace, min(method) AS used_method FROM _found GROUP BY trace)
SELECT r.trace, r.method, coalesce(r.method = f.used_method, FALSE) AS used, r.status, r.scope, r.lm_head_ops,
       r.lm_head_gpu_ns, r.scope_gpu_ns, r.lm_head_gpu_ns / nullif(r.scope_gpu_ns, 0) AS share,
       r.vocab, r.vocab_source, r.note,
       CASE WHEN r.status = 'abstain' AND f.used_method IS NULL
                 AND r.method = min(r.method) FILTER (WHERE r.status = 'abstain') OVER (PARTITION BY r.trace)
            THEN 'warn' ELSE 'info' END AS severity
FROM _rows r LEFT JOIN _first f USING (trace)
ORDER BY r.trace, r.method, r.lm_head_gpu_ns DESC NULLS LAST;
