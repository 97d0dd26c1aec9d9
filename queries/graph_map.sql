-- graph_map: which phase and op shapes did each kernel replayed from a CUDA graph have when the
-- graph's work was launched one op at a time (eager run or graph capture)?
-- @param graph_map_replay TEXT - trace name holding the graph replays (tracekit.graphmap sets it)
-- @param graph_map_reference TEXT - trace name of the reference
--
-- Why: a cudaGraphLaunch replays its whole kernel sequence under one correlation id, so every
-- replayed kernel takes the launch's phase (tracekit.ingest.link) and carries no inner range
-- (draft / lm_head / sampler) and no cpu_op shapes. A reference trace of the same model run
-- op by op still has them; this file aligns the two, position by position.
--
-- Inputs: views `events`, `kernels`, `runtime` (tracekit.store.connect over both traces; they may
-- be one and the same trace, whose eager kernels are then the reference) and the variables above,
-- and step_pattern (lib/step_instances.sql's @param; tracekit.report.DEFAULTS).
-- Not read: queries/lib/ (this file needs two traces and runs on its own: `tracekit graphmap`).
--
-- How the alignment works (names must be equal; never guessed):
--   replayed sequence  the GPU ops (kernel/memcpy/memset) whose launch is a *GraphLaunch, per launch
--                      (correlation), numbered node 1..n by GPU start (ts_ns, then seq).
--   1. method 'sequence' (reference ran the ops eagerly: GPU rows with kernel names): reference
--      GPU ops not launched by a graph, numbered per launching thread in launch order
--      (launch_ts_ns, ts_ns, seq). A region is every place where the n names in a row equal the
--      replayed names, node for node. Node k then takes the inner path of the region's k-th op:
--      its phase_path after the innermost segment that matches step_pattern (the whole path
--      when none does).
--   2. capture windows (only for sequences with no 'sequence' region; the reference profiles the
--      graph capture): the launch calls (cuda/cu/hip Launch*, Memcpy*Async, Memset*Async) on one thread
--      between a *StreamBeginCapture and the next *StreamEndCapture that launched no GPU row
--      (captured, not run), numbered 1..m in time order. A launch's name at capture: args.kernel
--      of the call (ROCm writes it on hipLaunchKernel / hipExtModuleLaunchKernel); CUDA has none.
--   2a. method 'capture_name' (the window has names): for each shift d (window position = node + d)
--      count the nodes whose name equals the window launch's name at that place (one join on name:
--      d = pos - node). The window's best shift is the one with the most equal names; it must be the
--      only shift with that count (a tie, e.g. a run of equal names shorter than the window, is not
--      guessed) and align at least half of the n nodes. The regions of a sequence are the windows
--      whose best shift aligns the most nodes. Node k takes the launch at k + d only where the names
--      are equal there; a node whose place holds another name or lies outside the window stays
--      'unmatched' and is counted as `unaligned`; window launches that no node took are counted as
--      `ref_unaligned`. So extra or missing launches at either end (one trailing launch: 1,567 launches
--      for 1,566 nodes -> shift 0, 1 launch unaligned; a missing first launch -> shift -1, node 1
--      unaligned) and different names in the middle cost only those nodes. Then once more inside each
--      gap of unaligned nodes: between the window positions of the aligned nodes before and after the
--      gap, the gap's own best shift, again only when unique (a launch inserted or dropped in the
--      middle shifts the nodes after it: they align here, in order). Gaps are searched once: what a
--      second indel in the same gap leaves over stays unaligned (reported), never guessed; an indel
--      exactly in the middle, whose two sides tie in pass 1, leaves the sequence unmatched.
--   2b. method 'capture_order' (the window has no names, and only then): a region is a window with
--      exactly n such launch calls; node k takes the k-th (order and count only).
--      A named window whose names do not align is never used by order: the sequence stays unmatched.
--   Inner path (2a, 2b): the launch's phase_path after the BeginCapture call's own phase_path.
--   Shapes of a region op: the innermost cpu_op (latest start) on the launching thread that
--   encloses the launch call's start: its name, input_dims, input_types.
--   Agreement: with several regions (repeated eager steps, one capture per batch size), node k is
--   matched only when every region gives it the same inner path; shapes only when every region
--   gives the same (op, input_dims, input_types). Otherwise the node stays as it was: 'ambiguous'.
--   New phase_path: the launch's phase_path + '/' + inner path, where a leading part of the inner
--   path that repeats the end of the launch's path is written once (launch 'ProfilerStep#7/decode'
--   + inner 'decode/draft/lm_head' -> 'ProfilerStep#7/decode/draft/lm_head'). Paths are split at '/'.
--   Caveat: a multi-stream graph's GPU start order can differ from its launch order; such
--   sequences usually find no region and are reported unmatched, not guessed.
--
-- Outputs:
--   graph_map (one row per graph launch of the replay trace)
--     trace               replay trace
--     launch_correlation  correlation id of the cudaGraphLaunch (shared by the kernels it replayed)
--     launch_ts_ns        start of the launch call
--     launch_phase_path   phase_path of the launch call ('(none)' when outside every range)
--     replayed            GPU ops replayed by this launch (denominator of the three counts below)
--     matched             of those, given an inner phase_path from the reference
--     shaped              of those, given cpu_op shapes from the reference (a subset of matched)
--     ambiguous           of those, left as they were because the regions disagree on the path
--     method              'sequence', 'capture_name', 'capture_order' or 'none' (no region: all left as they were)
--     regions             reference regions found for this launch's sequence
--     unaligned           of the replayed ops, those no region aligned ('capture_name': no launch of
--                         that name at their place); 0 for the other methods and for 'none'
--     ref_unaligned       'capture_name': launches of the region window taken by no node (the most over
--                         the regions); NULL for the other methods
--     note                how to read the row, what is missing and how to capture it
--   summary (one row)
--     replay_trace, reference_trace, graph_launches, distinct_sequences, replayed, matched,
--     shaped, ambiguous, unmatched (= replayed - matched), matched_pct (= 100 * matched / replayed;
--     NULL when nothing was replayed), note
--   rows (one row per replayed GPU op; what `tracekit graphmap -o` writes back)
--     kind, seq           the row's identity in the replay trace
--     launch_correlation, node, name
--     status              'matched' | 'ambiguous' | 'unmatched'
--     method, regions     as in graph_map
--     old_phase_path      phase_path before mapping
--     phase, phase_path   after mapping (unchanged unless matched)
--     op_name, input_dims, input_types   the reference op's (NULL unless shaped; input_* also kept
--                         as they were when not shaped)
--     ref_seq             seq of the reference op when exactly one region was found, else NULL
--     args                the row's args with an '@graphmap' object recording the provenance:
--                         reference, method, node, regions, ref_seq, inner_path, op, shapes,
--                         op_node (the first node launched by the same reference cpu_op call, equal
--                         in every region, else NULL: queries/flops.sql counts one op per op_node),
--                         launch_phase_path
--
-- How to read it: matched / replayed per launch says how much of the graph could be attributed;
-- a launch with method 'none' had no counterpart: run the reference with the same model, batch
-- size and kernels (e.g. SGLang --disable-cuda-graph, or profile the capture itself).

CREATE OR REPLACE TEMP MACRO _gm_after_step(path) AS CASE
    WHEN path IS NULL THEN NULL
    ELSE array_to_string(string_split(path, '/')[
        coalesce(list_max(list_filter(range(1, len(string_split(path, '/')) + 1),
                 lambda i: regexp_full_match(string_split(path, '/')[i], getvariable('step_pattern')))), 0) + 1:], '/')
    END;

CREATE OR REPLACE TEMP MACRO _gm_after_prefix(path, prefix) AS CASE
    WHEN path IS NULL THEN NULL
    WHEN prefix IS NULL THEN path
    WHEN path = prefix THEN ''
    WHEN starts_with(path, prefix || '/') THEN path[length(prefix) + 2:]
    ELSE path END;

-- Launch path joined with an inner path, the overlap (end of lp = start of inner_path) written once.
CREATE OR REPLACE TEMP MACRO _gm_join(lp, inner_path) AS CASE
    WHEN inner_path IS NULL OR inner_path = '' THEN lp
    WHEN lp IS NULL THEN inner_path
    ELSE nullif(array_to_string(
        string_split(lp, '/') || string_split(inner_path, '/')[
            list_max(list_filter(range(0, least(len(string_split(lp, '/')), len(string_split(inner_path, '/'))) + 1),
                     lambda k: string_split(lp, '/')[len(string_split(lp, '/')) - k + 1:]
                               = string_split(inner_path, '/')[1:k])) + 1:],
        '/'), '') END;

CREATE OR REPLACE TEMP TABLE _gm_rep AS
SELECT kind, seq, name, hash(name) AS h, ts_ns, correlation, phase, phase_path, input_dims, input_types, args,
       launch_ts_ns,
       row_number() OVER (PARTITION BY correlation ORDER BY ts_ns, seq) AS node,
       count(*) OVER (PARTITION BY correlation) AS n
FROM kernels
WHERE trace = getvariable('graph_map_replay') AND contains(launch_name, 'GraphLaunch') AND correlation IS NOT NULL;

-- One id per distinct replayed name sequence: launches replaying the same graph share it.
CREATE OR REPLACE TEMP TABLE _gm_launch AS
SELECT correlation, any_value(n) AS n, min(launch_ts_ns) AS launch_ts_ns, any_value(phase_path) AS launch_phase_path,
       md5(string_agg(name, chr(31) ORDER BY node)) AS sig
FROM _gm_rep GROUP BY correlation;

CREATE OR REPLACE TEMP TABLE _gm_seq AS
SELECT DISTINCT l.sig, l.n, r.node, r.name, r.h
FROM _gm_rep r JOIN _gm_launch l USING (correlation);

CREATE OR REPLACE TEMP TABLE _gm_ref AS
SELECT kind, seq, name, hash(name) AS h, launch_tid, launch_ts_ns, phase, phase_path,
       row_number() OVER (PARTITION BY launch_tid ORDER BY launch_ts_ns, ts_ns, seq) AS pos
FROM kernels
WHERE trace = getvariable('graph_map_reference') AND launch_ts_ns IS NOT NULL
  AND NOT coalesce(contains(launch_name, 'GraphLaunch'), FALSE);

-- Method 1: exact runs of the replayed names in the reference launch order.
CREATE OR REPLACE TEMP TABLE _gm_seq_regions AS
WITH _start AS (
    SELECT s.sig, s.n, r.launch_tid AS tid, r.pos AS start
    FROM _gm_seq s JOIN _gm_ref r ON s.node = 1 AND r.h = s.h AND r.name = s.name
)
SELECT c.sig, c.tid, c.start
FROM _start c
JOIN _gm_seq s ON s.sig = c.sig
JOIN _gm_ref r ON r.launch_tid = c.tid AND r.pos = c.start + s.node - 1 AND r.h = s.h AND r.name = s.name
GROUP BY c.sig, c.tid, c.start, c.n
HAVING count(*) = c.n;

-- Method 2: capture windows (BeginCapture .. the next EndCapture on the same thread).
CREATE OR REPLACE TEMP TABLE _gm_cap_win AS
SELECT b.seq AS win, b.tid, b.ts_ns AS t0, b.phase_path AS anchor,
       (SELECT min(e.ts_ns + greatest(e.dur_ns, 0)) FROM runtime e
        WHERE e.trace = b.trace AND e.tid = b.tid AND e.ts_ns >= b.ts_ns
          AND regexp_matches(e.name, 'StreamEndCapture')) AS t1
FROM runtime b
WHERE b.trace = getvariable('graph_map_reference') AND regexp_matches(b.name, 'StreamBeginCapture');

-- The launch calls of each capture window that launched no GPU row (captured, not run; eager launches
-- to other streams in the window ran and are left out), in time order, with the kernel name recorded
-- at capture: args.kernel of the call (ROCm hipLaunchKernel / hipExtModuleLaunchKernel write it);
-- NULL when absent (CUDA capture).
CREATE OR REPLACE TEMP TABLE _gm_cap_all AS
WITH _ran_correlations AS (SELECT DISTINCT correlation FROM kernels
              WHERE trace = getvariable('graph_map_reference') AND correlation IS NOT NULL)
SELECT w.win, w.anchor, r.seq, r.tid, r.ts_ns AS launch_ts_ns, r.phase, r.phase_path,
       CASE WHEN json_valid(r.args) THEN nullif(json_extract_string(r.args, '$.kernel'), '') END AS kname,
       row_number() OVER (PARTITION BY w.win ORDER BY r.ts_ns, r.seq) AS pos,
       count(*) OVER (PARTITION BY w.win) AS n
FROM _gm_cap_win w
JOIN runtime r ON r.trace = getvariable('graph_map_reference') AND r.tid = w.tid
                AND r.ts_ns >= w.t0 AND r.ts_ns <= coalesce(w.t1, w.t0)
WHERE regexp_full_match(r.name, '(cuda|cu|hip)(LaunchKernel|LaunchKernelExC|LaunchKernelEx|LaunchCooperativeKernel|'
                                || 'ExtModuleLaunchKernel|ModuleLaunchKernel|Memcpy\w*Async|Memset\w*Async)'
                                || '(_v\d+|_ptsz|_spt)*')
  AND (r.correlation IS NULL OR r.correlation NOT IN (SELECT correlation FROM _ran_correlations));

CREATE OR REPLACE TEMP TABLE _gm_cap_named AS
SELECT win FROM _gm_cap_all GROUP BY win HAVING count(kname) > 0;

-- Method 2b (order only): windows without any name.
CREATE OR REPLACE TEMP TABLE _gm_cap_launch AS
SELECT * FROM _gm_cap_all WHERE win NOT IN (SELECT win FROM _gm_cap_named);

-- Method 2a (names): per (sequence, named window), the shift d = window position - node that puts the
-- most equal names on the same place; tied = how many shifts reach that count.
CREATE OR REPLACE TEMP TABLE _gm_cap_shift AS
WITH _shift_hits AS (
    SELECT s.sig, s.n, c.win, c.n AS win_launches, c.pos - s.node AS d, count(*) AS hits
    FROM _gm_seq s JOIN _gm_cap_all c ON c.kname = s.name
    WHERE c.win IN (SELECT win FROM _gm_cap_named)
    GROUP BY ALL
), _with_best AS (SELECT *, max(hits) OVER (PARTITION BY sig, win) AS best FROM _shift_hits)
-- tied shifts (tied > 1): d is the smallest of them, never the row order's pick
SELECT sig, n, win, win_launches, max(hits) AS hits, first(d ORDER BY hits DESC, d) AS d,
       count(*) FILTER (WHERE hits = best) AS tied
FROM _with_best GROUP BY sig, n, win, win_launches;

-- The regions of a sequence: the named windows whose best shift is unique and aligns the most
-- nodes, at least half of them.
CREATE OR REPLACE TEMP TABLE _gm_cap_region AS
SELECT sig, win, d, hits, win_launches FROM _gm_cap_shift
WHERE tied = 1 AND 2 * hits >= n
QUALIFY hits = max(hits) OVER (PARTITION BY sig);

-- The (node, window position) pairs of each region: pass 1, the equal names at the region's shift;
-- pass 2, inside each gap of unaligned nodes, between the positions of the aligned nodes around it
-- (lo < position < hi), the gap's own best shift when it is the only one with that count (a launch
-- dropped or inserted in the middle moves the nodes after it by one: they align in pass 2).
CREATE OR REPLACE TEMP TABLE _gm_cap_pairs AS
WITH _pass1 AS (
    SELECT g.sig, g.win, s.node, c.pos, 1 AS pass
    FROM _gm_cap_region g JOIN _gm_seq s ON s.sig = g.sig
    JOIN _gm_cap_all c ON c.win = g.win AND c.pos = s.node + g.d AND c.kname = s.name
), _gap AS (
    SELECT g.sig, g.win, s.node, s.name,
           coalesce((SELECT max(p.pos) FROM _pass1 p WHERE p.sig = g.sig AND p.win = g.win AND p.node < s.node),
                    0) AS lo,
           coalesce((SELECT min(p.pos) FROM _pass1 p WHERE p.sig = g.sig AND p.win = g.win AND p.node > s.node),
                    g.win_launches + 1) AS hi
    FROM _gm_cap_region g JOIN _gm_seq s ON s.sig = g.sig
    WHERE NOT EXISTS (SELECT 1 FROM _pass1 p WHERE p.sig = g.sig AND p.win = g.win AND p.node = s.node)
), _gap_shifts AS (
    SELECT x.sig, x.win, x.lo, c.pos - x.node AS d, count(*) AS hits
    FROM _gap x JOIN _gm_cap_all c ON c.win = x.win AND c.kname = x.name AND c.pos > x.lo AND c.pos < x.hi
    GROUP BY ALL
), _best AS (
    SELECT sig, win, lo, d FROM _gap_shifts
    QUALIFY hits = max(hits) OVER (PARTITION BY sig, win, lo) AND count(*) OVER (PARTITION BY sig, win, lo, hits) = 1
)
SELECT * FROM _pass1
UNION ALL
SELECT x.sig, x.win, x.node, c.pos, 2
FROM _gap x JOIN _best b USING (sig, win, lo)
JOIN _gm_cap_all c ON c.win = x.win AND c.pos = x.node + b.d AND c.kname = x.name AND c.pos > x.lo AND c.pos < x.hi;

-- Every (sequence, node) -> the reference op of every region, from the method that applies.
CREATE OR REPLACE TEMP TABLE _gm_cand AS
SELECT s.sig, s.node, 'sequence' AS method, g.tid || ':' || g.start AS region,
       r.seq AS ref_seq, r.launch_tid AS tid, r.launch_ts_ns, r.phase AS ref_phase,
       _gm_after_step(r.phase_path) AS inner_path
FROM _gm_seq_regions g
JOIN _gm_seq s ON s.sig = g.sig
JOIN _gm_ref r ON r.launch_tid = g.tid AND r.pos = g.start + s.node - 1
UNION ALL
SELECT s.sig, s.node, 'capture_name', CAST(g.win AS VARCHAR), c.seq, c.tid, c.launch_ts_ns, c.phase,
       _gm_after_prefix(c.phase_path, c.anchor)
FROM _gm_cap_pairs g
JOIN _gm_seq s ON s.sig = g.sig AND s.node = g.node
JOIN _gm_cap_all c ON c.win = g.win AND c.pos = g.pos
WHERE s.sig NOT IN (SELECT sig FROM _gm_seq_regions)
UNION ALL
SELECT s.sig, s.node, 'capture_order', CAST(c.win AS VARCHAR), c.seq, c.tid, c.launch_ts_ns, c.phase,
       _gm_after_prefix(c.phase_path, c.anchor)
FROM _gm_seq s
JOIN _gm_cap_launch c ON c.n = s.n AND c.pos = s.node
WHERE s.sig NOT IN (SELECT sig FROM _gm_seq_regions) AND s.sig NOT IN (SELECT sig FROM _gm_cap_region);

-- Per sequence: the method that gave it regions, how many, and for names: the shift(s), the launches
-- of the region(s) left unaligned, the best count and whether the best shift was tied.
CREATE OR REPLACE TEMP TABLE _gm_sig AS
WITH _methods AS (SELECT sig, any_value(method) AS method, count(DISTINCT region) AS regions
                  FROM _gm_cand GROUP BY sig),
_shifts AS (SELECT g.sig, min(g.d) AS shift_min, max(g.d) AS shift_max, max(g.win_launches - p.taken) AS ref_unaligned,
              max(p.gap_aligned) AS gap_aligned
       FROM _gm_cap_region g
       JOIN (SELECT sig, win, count(*) AS taken, count(*) FILTER (WHERE pass = 2) AS gap_aligned
             FROM _gm_cap_pairs GROUP BY ALL) p USING (sig, win)
       GROUP BY g.sig),
_best_counts AS (SELECT sig, max(hits) AS best_hits, bool_or(tied > 1) AS best_tied
       FROM (SELECT *, max(hits) OVER (PARTITION BY sig) AS top FROM _gm_cap_shift) WHERE hits = top GROUP BY sig)
SELECT l.sig, l.n, coalesce(c.method, 'none') AS method, coalesce(c.regions, 0) AS regions,
       g.shift_min, g.shift_max, g.ref_unaligned, g.gap_aligned, b.best_hits, coalesce(b.best_tied, FALSE) AS best_tied
FROM (SELECT DISTINCT sig, n FROM _gm_launch) l
LEFT JOIN _methods c USING (sig) LEFT JOIN _shifts g USING (sig) LEFT JOIN _best_counts b USING (sig);

-- The innermost cpu_op around each candidate's launch call (its shapes).
CREATE OR REPLACE TEMP TABLE _gm_cand_op AS
WITH _ops AS (
    SELECT tid, ts_ns, ts_ns + greatest(dur_ns, 0) AS end_ns, name, input_dims, input_types, row_id
    FROM events WHERE trace = getvariable('graph_map_reference') AND kind = 'cpu_op'
)
SELECT c.*, o.op.name AS op_name, o.op.input_dims AS input_dims, o.op.input_types AS input_types,
       -- the first node this op instance launched in this region: nodes sharing it came from one op call
       CASE WHEN o.op.name IS NOT NULL THEN min(c.node) OVER (PARTITION BY c.sig, c.region, o.op.ts_ns) END AS op_node
FROM _gm_cand c
LEFT JOIN (
    SELECT c2.sig, c2.node, c2.region,
           -- the innermost enclosing op: latest start; equal starts: the shortest, then the highest row_id
           first({'name': p.name, 'input_dims': p.input_dims, 'input_types': p.input_types, 'ts_ns': p.ts_ns}
                 ORDER BY p.ts_ns DESC, p.end_ns, p.row_id DESC) AS op
    FROM _gm_cand c2 JOIN _ops p ON p.tid = c2.tid AND p.ts_ns <= c2.launch_ts_ns AND c2.launch_ts_ns < p.end_ns
    GROUP BY ALL
) o USING (sig, node, region);

CREATE OR REPLACE TEMP TABLE _gm_node AS
SELECT sig, node, any_value(method) AS method, count(DISTINCT region) AS regions,
       count(DISTINCT coalesce(inner_path, chr(0))) = 1 AS path_ok,
       count(DISTINCT coalesce(op_name, '') || chr(31) || coalesce(input_dims, '') || chr(31)
                      || coalesce(input_types, '')) = 1
           AND bool_and(op_name IS NOT NULL) AS shape_ok,
       any_value(inner_path) AS inner_path, any_value(ref_phase) AS ref_phase, any_value(op_name) AS op_name,
       any_value(input_dims) AS input_dims, any_value(input_types) AS input_types,
       CASE WHEN count(DISTINCT region) = 1 THEN any_value(ref_seq) END AS ref_seq,
       CASE WHEN count(DISTINCT coalesce(op_node, -1)) = 1 THEN any_value(op_node) END AS op_node
FROM _gm_cand_op GROUP BY sig, node;

CREATE OR REPLACE TEMP TABLE _gm_rows AS
SELECT r.kind, r.seq, r.correlation AS launch_correlation, r.node, r.name,
       CASE WHEN m.path_ok THEN 'matched' WHEN m.regions > 0 THEN 'ambiguous' ELSE 'unmatched' END AS status,
       coalesce(m.method, 'none') AS method, coalesce(m.regions, 0) AS regions,
       r.phase_path AS old_phase_path,
       CASE WHEN m.path_ok AND coalesce(m.inner_path, '') <> '' THEN m.ref_phase ELSE r.phase END AS phase,
       CASE WHEN m.path_ok THEN _gm_join(r.phase_path, m.inner_path) ELSE r.phase_path END AS phase_path,
       CASE WHEN m.path_ok AND m.shape_ok THEN m.op_name END AS op_name,
       CASE WHEN m.path_ok AND m.shape_ok THEN m.input_dims ELSE r.input_dims END AS input_dims,
       CASE WHEN m.path_ok AND m.shape_ok THEN m.input_types ELSE r.input_types END AS input_types,
       m.path_ok AND m.shape_ok AS shaped,
       CASE WHEN m.path_ok THEN m.ref_seq END AS ref_seq,
       CASE WHEN m.path_ok THEN json_merge_patch(CASE WHEN json_valid(r.args) THEN r.args ELSE '{}' END,
            json_object('@graphmap', json_object(
                'reference', getvariable('graph_map_reference'), 'method', m.method, 'node', r.node,
                'regions', m.regions, 'ref_seq', m.ref_seq, 'inner_path', m.inner_path, 'op', m.op_name,
                'shapes', m.shape_ok, 'op_node', CASE WHEN m.shape_ok THEN m.op_node END,
                'launch_phase_path', r.phase_path)))
            ELSE r.args END AS args
FROM _gm_rep r
JOIN _gm_launch l USING (correlation)
LEFT JOIN _gm_node m ON m.sig = l.sig AND m.node = r.node;

CREATE OR REPLACE TEMP TABLE _gm_caps AS
SELECT (SELECT count(*) FROM _gm_ref) AS ref_ops,
       (SELECT count(*) FROM _gm_cap_win) AS cap_windows,
       (SELECT count(*) FROM events WHERE trace = getvariable('graph_map_reference') AND kind = 'cpu_op'
            AND input_dims IS NOT NULL AND input_dims NOT IN ('[]', '')) AS ref_shaped_ops;

-- @output graph_map
-- @column trace              TEXT      the replay trace
-- @column launch_correlation COUNT     correlation id of the cudaGraphLaunch (shared by the kernels it
--                                      replayed)
-- @column launch_ts_ns       TIMESTAMP start of the launch call
-- @column launch_phase_path  TEXT      phase_path of the launch call ('(none)' when outside every range)
-- @column replayed           COUNT     GPU ops replayed by this launch (denominator of the three counts
--                                      below)
-- @column matched            COUNT     of those, given an inner phase_path from the reference
-- @column shaped             COUNT     of those, given cpu_op shapes from the reference (a subset of matched)
-- @column ambiguous          COUNT     of those, left as they were because the regions disagree on the path
-- @column method             TEXT      'sequence', 'capture_name', 'capture_order' or 'none' (no region: all
--                                      left as they were)
-- @column regions            COUNT     reference regions found for this launch's sequence
-- @column unaligned          COUNT     of the replayed ops, those no region aligned ('capture_name': no
--                                      launch of that name at their place); 0 for the other methods and for
--                                      'none'
-- @column ref_unaligned      COUNT     'capture_name': launches of the region window taken by no node (the
--                                      most over the regions); NULL for the other methods
-- @column note               NOTE      how to read the row, what is missing and how to capture it
SELECT getvariable('graph_map_replay') AS trace, l.correlation AS launch_correlation, l.launch_ts_ns,
       coalesce(l.launch_phase_path, '(none)') AS launch_phase_path,
       count(*) AS replayed,
       count(*) FILTER (WHERE x.status = 'matched') AS matched,
       count(*) FILTER (WHERE x.shaped) AS shaped,
       count(*) FILTER (WHERE x.status = 'ambiguous') AS ambiguous,
       any_value(g.method) AS method, any_value(g.regions) AS regions,
       count(*) FILTER (WHERE x.regions = 0 AND g.regions > 0) AS unaligned,
       any_value(g.ref_unaligned) AS ref_unaligned,
       CASE
         WHEN any_value(g.regions) = 0 THEN
           'unmatched: this sequence of ' || count(*) || ' GPU ops does not occur in the reference''s eager launches ('
           || (SELECT ref_ops FROM _gm_caps) || ' ops)'
           || CASE WHEN (SELECT cap_windows FROM _gm_caps) = 0
                   THEN ' and the reference holds no cudaStreamBeginCapture window'
                   WHEN any_value(g.best_tied)
                   THEN ' and the kernel names of the capture window(s) align equally well at several shifts '
                        || '(not guessed)'
                   WHEN any_value(g.best_hits) IS NOT NULL
                   THEN ' and no named capture window aligns at least half of its ops by name (best: '
                        || any_value(g.best_hits) || ' of ' || count(*) || ')'
                   ELSE ' and no capture window has exactly ' || count(*) || ' launches' END
           || ': profile the same model and batch size eagerly (CUDA graphs off) or profile the capture'
         WHEN count(*) FILTER (WHERE x.status = 'ambiguous') > 0 THEN
           'ambiguous: the ' || any_value(g.regions) || ' reference regions disagree on the phase of '
           || count(*) FILTER (WHERE x.status = 'ambiguous') || ' ops, left as they were'
         ELSE any_value(g.method) || ': ' || any_value(g.regions) || ' reference region(s)'
           || CASE any_value(g.method)
                WHEN 'capture_order'
                     THEN ', nodes identified by launch order and count only (no kernel names at capture)'
                WHEN 'capture_name' THEN ', kernel names at capture aligned at shift ' || any_value(g.shift_min)
                     || CASE WHEN any_value(g.shift_max) <> any_value(g.shift_min) THEN '..' || any_value(g.shift_max)
                             ELSE '' END
                     || CASE WHEN any_value(g.gap_aligned) > 0
                             THEN ' (' || any_value(g.gap_aligned) || ' more inside gaps at their own shift)'
                             ELSE '' END
                ELSE ', kernel names equal node for node' END
         END
       || CASE WHEN any_value(g.regions) > 0 AND count(*) FILTER (WHERE x.regions = 0) > 0 THEN
            '; ' || count(*) FILTER (WHERE x.regions = 0)
            || ' ops not aligned (no launch of that name at their place), left as they were'
            ELSE '' END
       || CASE WHEN any_value(g.ref_unaligned) > 0 THEN
            '; ' || any_value(g.ref_unaligned) || ' capture launches aligned to no replayed op' ELSE '' END
       || CASE WHEN any_value(g.regions) > 0
                    AND count(*) FILTER (WHERE x.shaped) < count(*) FILTER (WHERE x.status = 'matched') THEN
            CASE WHEN (SELECT ref_shaped_ops FROM _gm_caps) = 0
                 THEN '; no shapes: the reference has no cpu_op input shapes (profile with record_shapes=True)'
                 ELSE '; ' || (count(*) FILTER (WHERE x.status = 'matched') - count(*) FILTER (WHERE x.shaped))
                      || ' matched ops without shapes (no enclosing cpu_op, or regions disagree on shapes)' END
            ELSE '' END AS note
FROM _gm_launch l JOIN _gm_rows x ON x.launch_correlation = l.correlation
JOIN _gm_sig g ON g.sig = l.sig
GROUP BY l.correlation, l.launch_ts_ns, l.launch_phase_path
ORDER BY l.launch_ts_ns, l.correlation;

-- @output summary
-- @column replay_trace       TEXT      trace holding the graph replays
-- @column reference_trace    TEXT      trace of the reference
-- @column graph_launches     COUNT     graph launch calls in the replay trace
-- @column distinct_sequences COUNT     distinct replayed kernel sequences
-- @column replayed           COUNT     GPU ops replayed by graph launches
-- @column matched            COUNT     of those, given an inner phase_path from the reference
-- @column shaped             COUNT     of those, given cpu_op shapes from the reference (a subset of matched)
-- @column ambiguous          COUNT     of those, left as they were because the regions disagree on the path
-- @column unmatched          COUNT     replayed - matched
-- @column matched_pct        NUMBER    100 * matched / replayed; NULL when nothing was replayed
-- @column note               NOTE      how to read the row, what is missing and how to capture it
SELECT getvariable('graph_map_replay') AS replay_trace, getvariable('graph_map_reference') AS reference_trace,
       (SELECT count(*) FROM _gm_launch) AS graph_launches,
       (SELECT count(DISTINCT sig) FROM _gm_launch) AS distinct_sequences,
       count(*) AS replayed,
       count(*) FILTER (WHERE status = 'matched') AS matched,
       count(*) FILTER (WHERE shaped) AS shaped,
       count(*) FILTER (WHERE status = 'ambiguous') AS ambiguous,
       count(*) FILTER (WHERE status <> 'matched') AS unmatched,
       round(100.0 * count(*) FILTER (WHERE status = 'matched') / nullif(count(*), 0), 2) AS matched_pct,
       CASE WHEN count(*) = 0 THEN 'the replay trace has no GPU ops launched by a *GraphLaunch call: nothing to map'
            ELSE 'matched_pct = matched / replayed GPU ops under graph launches' END AS note
FROM _gm_rows;

-- @output rows
-- @column kind               TEXT      the row's kind (its identity in the replay trace, with seq)
-- @column seq                ID        the row's seq (its identity in the replay trace, with kind)
-- @column launch_correlation COUNT     correlation id of the cudaGraphLaunch (shared by the kernels it
--                                      replayed)
-- @column node               COUNT     the op's position in its graph launch's replayed sequence
-- @column name               TEXT      the op or range name
-- @column status             TEXT      'matched' | 'ambiguous' | 'unmatched'
-- @column method             TEXT      'sequence', 'capture_name', 'capture_order' or 'none' (no region: all
--                                      left as they were)
-- @column regions            COUNT     reference regions found for this launch's sequence
-- @column old_phase_path     TEXT      phase_path before mapping
-- @column phase              TEXT      the phase after mapping (unchanged unless matched)
-- @column phase_path         TEXT      the phase_path after mapping (unchanged unless matched)
-- @column op_name            TEXT      the reference op's name (NULL unless shaped)
-- @column input_dims         TEXT      the reference op's input shapes (NULL unless shaped)
-- @column input_types        TEXT      the reference op's input types (NULL unless shaped)
-- @column ref_seq            COUNT     seq of the reference op when exactly one region was found, else NULL
-- @column args               TEXT      the row's args with an '@graphmap' object recording the provenance:
--                                      reference, method, node, regions, ref_seq, inner_path, op, shapes,
--                                      op_node (the first node launched by the same reference cpu_op call,
--                                      equal in every region, else NULL: queries/flops.sql counts one op per
--                                      op_node), launch_phase_path
SELECT kind, seq, launch_correlation, node, name, status, method, regions, old_phase_path, phase, phase_path,
       op_name, input_dims, input_types, ref_seq, args
FROM _gm_rows ORDER BY launch_correlation, node;
