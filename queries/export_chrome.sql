-- export_chrome: which rows of one trace make up a slice (steps and/or a phase), as Chrome-trace rows.
-- @requires lib/step_instances
-- @param ec_trace TEXT - the trace to slice (the dataset may hold several)
-- @param ec_phase TEXT - phase name, NULL = no phase filter. A row is in the phase when its phase_path
--     contains it as whole path element(s): '/' || phase_path || '/' contains '/' || ec_phase || '/'
--     ('draft' matches 'step/draft/x', not 'draft2'; 'a/b' matches the consecutive elements a, b)
-- @param ec_step_first COUNT - first step (1-based step_index of step_instances, inclusive), NULL = no step filter
-- @param ec_step_last COUNT - last step (inclusive), NULL = up to the last step
--
-- Not an analysis of `tracekit report`: run by tracekit.export_chrome (`tracekit export-chrome`),
-- which loads the modules on its @requires line first (lib/step_instances: the one definition of a step), sets
-- step_pattern like the report does, and sets the ec_* variables above (tracekit/export_chrome.py).
--
-- What the slice holds:
--   CPU-side rows (every kind but GPU ops, gpu_range, flow, meta) that pass both filters: in the
--     phase (above) and starting inside a selected step, on the step's thread or on any thread
--     when all steps of the trace are on one thread (the rule of steps.sql; an ASOF join).
--     With neither filter, every row of the trace.
--   GPU ops and gpu_sync rows whose correlation equals that of a runtime row in the slice (the
--     GPU work launched there: kernels replayed by a graph launch share its correlation);
--     gpu_range rows (Kineto's GPU projection of an annotation) whose external_id equals that
--     of a range row in the slice.
--   Flow rows (Kineto ac2g / fwdbwd arrows), grouped by (cat, id): a group is kept when it has
--     an `s` and an `f` row and every one of its rows binds to a row of the slice: same pid, tid
--     and ts_ns (Kineto writes each flow end at the start of the event it ties; measured: every
--     flow end of the shared HTA traces does). Flows with an end outside the slice are dropped.
--   For nsys rows (no flow rows in the source): one ac2g pair per GPU op of the slice whose
--     launching runtime row is in the slice, `s` at the call and `f` (bp e) at the op.
--   Metadata (ph M): process-level rows (process_name, process_labels, process_sort_index) of
--     every pid of the slice, thread-level rows of every (pid, tid) of the slice. Kineto rows whose
--     pid/tid were not integers carry them as `@pid`/`@tid` in args; those are matched too.
--     For nsys GPU rows, process_name "GPU <device>" and thread_name "stream <stream>" rows are made.
--
-- Output mapping (the Chrome trace rows, tracekit.export_chrome renders them):
--   Kineto rows go out as they came in: args holds the event's args plus its non-column top-level
--   fields under '@' keys, which the writer moves back to the top level.
--   nsys rows: GPU ops take pid = device and tid = stream (Kineto's layout, one "GPU n" process),
--   CPU rows keep pid/tid; cat becomes Kineto's category (kernel, gpu_memcpy, gpu_memset,
--   cuda_runtime, cuda_sync, user_annotation for NVTX ranges; others keep the nsys table name),
--   and args gain the typed facts under Kineto's arg names (correlation, device, stream, grid,
--   block, registers per thread, shared memory, bytes) plus nsys_table.
--
-- Output `export_chrome` (one row per Chrome event, in source order: Kineto seq; nsys metadata
-- first, then by time):
-- Output `slice`: one row: steps (step instances of the trace), steps_selected, first_ts_ns and
--   last_end_ns of the selected steps (NULL without a step filter).

CREATE OR REPLACE TEMP MACRO _ec_in_phase(p) AS
    getvariable('ec_phase') IS NULL
    OR coalesce(contains('/' || p || '/', '/' || getvariable('ec_phase') || '/'), FALSE);

CREATE OR REPLACE TEMP TABLE _ec_steps AS
SELECT * FROM step_instances_matched  -- a whole trace is not a step to pick
WHERE trace = getvariable('ec_trace')
  AND step_index >= getvariable('ec_step_first')
  AND step_index <= coalesce(getvariable('ec_step_last'), step_index);

-- CPU-side rows of the slice (every column: the slice is the output). The rows are picked on the few columns the
-- test reads, then read whole (DuckDB reads every column of every row a filter passes before a join decides: a
-- third less time on a median step of 26k CPU rows, issue 25).
CREATE OR REPLACE TEMP TABLE _ec_cpu AS
WITH _cpu_rows AS (
    SELECT e.row_id, e.ts_ns, CASE WHEN coalesce(o.one_thread, FALSE) THEN -1 ELSE e.tid END AS _k_tid
    FROM events e LEFT JOIN step_instances_one_thread o USING (trace)
    WHERE e.trace = getvariable('ec_trace')
      AND e.kind NOT IN ('kernel', 'memcpy', 'memset', 'gpu_sync', 'gpu_range', 'flow', 'meta')
      AND _ec_in_phase(e.phase_path)
      -- a row inside a selected step starts within the selected steps' span: read only those (a median step
      -- of a long trace is a small part of it; the ASOF join below decides)
      AND (getvariable('ec_step_first') IS NULL
           OR e.ts_ns BETWEEN (SELECT min(ts_ns) FROM _ec_steps) AND (SELECT max(end_ns) FROM _ec_steps))
), _ids AS (
    SELECT row_id FROM _cpu_rows WHERE getvariable('ec_step_first') IS NULL
    UNION ALL
    SELECT _cpu_rows.row_id FROM _cpu_rows
    ASOF JOIN _ec_steps s ON _cpu_rows._k_tid = s.k_tid AND _cpu_rows.ts_ns >= s.ts_ns
    WHERE getvariable('ec_step_first') IS NOT NULL AND _cpu_rows.ts_ns < s.end_ns
)
SELECT e.* FROM events e SEMI JOIN _ids USING (row_id) WHERE e.trace = getvariable('ec_trace');

-- (picked as _ec_cpu's rows are: 40% less time on a median step)
CREATE OR REPLACE TEMP TABLE _ec_gpu AS
WITH _no_filter AS (SELECT getvariable('ec_step_first') IS NULL AND getvariable('ec_phase') IS NULL AS v),
_ids AS (
    SELECT e.row_id FROM events e
    WHERE e.trace = getvariable('ec_trace') AND e.kind IN ('kernel', 'memcpy', 'memset', 'gpu_sync')
      AND ((SELECT v FROM _no_filter)
           OR e.correlation IN (SELECT correlation FROM _ec_cpu WHERE kind = 'runtime' AND correlation IS NOT NULL))
    UNION ALL
    SELECT e.row_id FROM events e
    WHERE e.trace = getvariable('ec_trace') AND e.kind = 'gpu_range'
      AND ((SELECT v FROM _no_filter)
           OR e.external_id IN (SELECT external_id FROM _ec_cpu WHERE kind = 'range' AND external_id IS NOT NULL))
)
SELECT e.* FROM events e SEMI JOIN _ids USING (row_id) WHERE e.trace = getvariable('ec_trace');

CREATE OR REPLACE TEMP TABLE _ec_sel AS
SELECT * FROM _ec_cpu UNION ALL BY NAME SELECT * FROM _ec_gpu;

-- (the groups are decided on the few columns the test reads, the kept rows then read whole: 35% less time on a
-- median step of a trace with 65k flow rows)
CREATE OR REPLACE TEMP TABLE _ec_flow AS
WITH _bind AS (SELECT DISTINCT pid, tid, ts_ns FROM _ec_sel),
_flows AS (
    SELECT f.row_id, f.cat, f.correlation, f.ph, b.ts_ns IS NOT NULL AS _bound
    FROM events f LEFT JOIN _bind b ON b.pid = f.pid AND b.tid = f.tid AND b.ts_ns = f.ts_ns
    WHERE f.trace = getvariable('ec_trace') AND f.kind = 'flow'
),
_complete AS (
    SELECT cat, correlation FROM _flows GROUP BY ALL
    HAVING bool_and(_bound) AND count(*) FILTER (WHERE ph = 's') > 0 AND count(*) FILTER (WHERE ph = 'f') > 0
),
_kept AS (
    SELECT _flows.row_id FROM _flows SEMI JOIN _complete
        ON _complete.cat IS NOT DISTINCT FROM _flows.cat
       AND _complete.correlation IS NOT DISTINCT FROM _flows.correlation
)
SELECT f.* FROM events f SEMI JOIN _kept ON f.row_id = _kept.row_id
WHERE f.trace = getvariable('ec_trace') AND f.kind = 'flow';

-- Keys of the slice for metadata: ids as text, so Kineto's string pids/tids ('@pid') match too.
CREATE OR REPLACE TEMP TABLE _ec_keys AS
SELECT DISTINCT coalesce(CAST(pid AS VARCHAR), json_extract_string(args, '$."@pid"')) AS pkey,
       CASE WHEN NOT (source = 'nsys' AND kind IN ('kernel', 'memcpy', 'memset', 'gpu_sync'))
            THEN coalesce(CAST(tid AS VARCHAR), json_extract_string(args, '$."@tid"')) END AS tkey
FROM (SELECT source, kind, pid, tid, args FROM _ec_sel UNION ALL SELECT source, kind, pid, tid, args FROM _ec_flow);

CREATE OR REPLACE TEMP TABLE _ec_meta AS
WITH _meta_rows AS (
    SELECT *, coalesce(CAST(pid AS VARCHAR), json_extract_string(args, '$."@pid"')) AS pkey,
              coalesce(CAST(tid AS VARCHAR), json_extract_string(args, '$."@tid"')) AS tkey
    FROM events WHERE trace = getvariable('ec_trace') AND kind = 'meta' AND ph = 'M'
)
SELECT _meta_rows.* EXCLUDE (pkey, tkey) FROM _meta_rows
WHERE (name IN ('process_name', 'process_labels', 'process_sort_index')
       AND pkey IN (SELECT pkey FROM _ec_keys WHERE pkey IS NOT NULL))
   OR (name NOT IN ('process_name', 'process_labels', 'process_sort_index')
       AND (pkey, tkey) IN (SELECT (pkey, tkey) FROM _ec_keys WHERE pkey IS NOT NULL AND tkey IS NOT NULL));

-- @output export_chrome
-- @column ph     TEXT      Chrome phase letter (X, i, s, f, M, C, ...)
-- @column cat    TEXT      category (NULL: none)
-- @column name   TEXT      event name
-- @column pid    ID        process id (NULL: see `@pid` in args)
-- @column tid    ID        thread id (NULL: see `@tid` in args)
-- @column ts_ns  TIMESTAMP start in ns (NULL: the source had none)
-- @column dur_ns DURATION  duration in ns (written for ph X only)
-- @column id     COUNT     flow id (flow rows), else NULL
-- @column args   TEXT      JSON object text: args plus '@'-prefixed top-level fields (NULL: none)
WITH _rows AS (
    SELECT source, kind, ph, cat, name, pid, tid, ts_ns, dur_ns, correlation, device, stream,
           grid_x, grid_y, grid_z, block_x, block_y, block_z, registers, shared_mem_bytes, bytes, args, seq
    FROM _ec_sel
    UNION ALL BY NAME
    SELECT source, kind, ph, cat, name, pid, tid, ts_ns, dur_ns, correlation, args, seq FROM _ec_flow
    UNION ALL BY NAME
    SELECT source, kind, ph, cat, name, pid, tid, ts_ns, dur_ns, correlation, args, seq FROM _ec_meta
), _nsys_flows AS (
    SELECT 'nsys' AS source, 'flow' AS kind, ph, 'ac2g' AS cat, 'ac2g' AS name, pid, tid, ts_ns, 0 AS dur_ns,
           correlation, args, seq, gpu_first AS _first
    FROM (
        SELECT 's' AS ph, r.pid, r.tid, r.ts_ns, g.correlation, NULL AS args, r.seq, g.ts_ns AS gpu_first
        FROM (SELECT correlation, min(ts_ns) AS ts_ns FROM _ec_gpu
              WHERE source = 'nsys' AND kind IN ('kernel', 'memcpy', 'memset') GROUP BY correlation) g
        JOIN _ec_cpu r ON r.kind = 'runtime' AND r.correlation = g.correlation AND r.source = 'nsys'
        UNION ALL
        SELECT 'f', g.device, g.stream, g.ts_ns, g.correlation, '{"@bp":"e"}', g.seq, g.ts_ns
        FROM _ec_gpu g
        WHERE g.source = 'nsys' AND g.kind IN ('kernel', 'memcpy', 'memset')
          AND g.correlation IN (SELECT correlation FROM _ec_cpu WHERE kind = 'runtime' AND source = 'nsys')
    )
), _nsys_meta AS (
    SELECT DISTINCT 'nsys' AS source, 'meta' AS kind, 'M' AS ph, CAST(NULL AS VARCHAR) AS cat, 'process_name' AS name,
           CAST(device AS BIGINT) AS pid, CAST(NULL AS BIGINT) AS tid,
           json_object('name', 'GPU ' || device)::VARCHAR AS args
    FROM _ec_gpu WHERE source = 'nsys' AND device IS NOT NULL
    UNION ALL
    SELECT DISTINCT 'nsys', 'meta', 'M', NULL, 'thread_name', CAST(device AS BIGINT), stream,
           json_object('name', 'stream ' || stream)::VARCHAR
    FROM _ec_gpu WHERE source = 'nsys' AND device IS NOT NULL AND stream IS NOT NULL
), _out_rows AS (
    SELECT
        ph,
        CASE WHEN source <> 'nsys' OR kind IN ('meta', 'flow') THEN cat
             ELSE CASE kind WHEN 'kernel' THEN 'kernel' WHEN 'memcpy' THEN 'gpu_memcpy' WHEN 'memset' THEN 'gpu_memset'
                            WHEN 'runtime' THEN 'cuda_runtime' WHEN 'gpu_sync' THEN 'cuda_sync'
                            WHEN 'range' THEN 'user_annotation' ELSE cat END END AS cat,
        name,
        CASE WHEN source = 'nsys' AND kind IN ('kernel', 'memcpy', 'memset', 'gpu_sync') THEN CAST(device AS BIGINT)
             ELSE pid END AS pid,
        CASE WHEN source = 'nsys' AND kind IN ('kernel', 'memcpy', 'memset', 'gpu_sync') THEN stream
             ELSE tid END AS tid,
        ts_ns, dur_ns,
        CASE WHEN kind = 'flow' THEN correlation END AS id,
        CASE WHEN source <> 'nsys' OR kind IN ('meta', 'flow') THEN args
             ELSE json_merge_patch(coalesce(args, '{}'), json_object(
                 'correlation', correlation, 'device', device, 'stream', stream,
                 'grid', CASE WHEN grid_x IS NOT NULL THEN [grid_x, grid_y, grid_z] END,
                 'block', CASE WHEN block_x IS NOT NULL THEN [block_x, block_y, block_z] END,
                 'registers per thread', registers, 'shared memory', shared_mem_bytes, 'bytes', bytes,
                 'nsys_table', cat))::VARCHAR END AS args,
        CASE WHEN source = 'nsys' THEN (ph <> 'M')::INTEGER ELSE 0 END AS _o1,
        CASE WHEN source = 'nsys' THEN ts_ns ELSE seq END AS _o2,
        seq AS _o3
    FROM _rows
    UNION ALL
    SELECT ph, cat, name, pid, tid, ts_ns, dur_ns, correlation, args, 1, _first, seq FROM _nsys_flows
    UNION ALL
    SELECT ph, cat, name, pid, tid, NULL, 0, NULL, args, 0, NULL, NULL FROM _nsys_meta
)
SELECT ph, cat, name, pid, tid, ts_ns, dur_ns, id, args FROM _out_rows
ORDER BY _o1, _o2 NULLS FIRST, _o3 NULLS FIRST,
         ph, name, pid, tid, dur_ns, id, args;  -- the last keys: ties never follow row order

-- @output slice
-- @column steps          COUNT     steps of the trace
-- @column steps_selected COUNT     steps inside the selection
-- @column first_ts_ns    TIMESTAMP earliest start of a sliced row
-- @column last_end_ns    TIMESTAMP latest end of a sliced row
SELECT (SELECT count(*) FROM step_instances_matched WHERE trace = getvariable('ec_trace')) AS steps,
       (SELECT count(*) FROM _ec_steps) AS steps_selected,
       (SELECT min(ts_ns) FROM _ec_steps) AS first_ts_ns,
       (SELECT max(end_ns) FROM _ec_steps) AS last_end_ns;
