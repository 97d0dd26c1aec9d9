-- store_views: the views tracekit.store registers on every connection, under every query in queries/.
--
-- One view per statement: `CREATE OR REPLACE VIEW name AS <SELECT>;`, the statement ending at a line that ends
-- with `;`. tracekit.store reads this file (it is not a report analysis: nothing here is run by `tracekit report`
-- itself). The views over `events` (a view of every row of the files, made by tracekit.store) come first,
-- the views over the files' trace-level metadata read `{files}`, which tracekit.store replaces by the
-- list literal of the connection's Parquet files (tracekit.store.connect_runs: one union per labelled run).

-- GPU ops: kernels and copies/sets (kind in kernel, memcpy, memset).
CREATE OR REPLACE VIEW kernels AS SELECT * FROM events WHERE kind IN ('kernel', 'memcpy', 'memset');

-- CPU runtime calls (cudaLaunchKernel, cudaMemcpyAsync, ...): kind = runtime.
CREATE OR REPLACE VIEW runtime AS SELECT * FROM events WHERE kind = 'runtime';

-- CPU ranges, except the token-count events (`tracekit.count key=value ...`, tracekit.annotate.count): never a phase.
CREATE OR REPLACE VIEW ranges AS SELECT * FROM events WHERE kind = 'range' AND NOT starts_with(name, 'tracekit.count ');

-- ``trace_devices``: the GPUs of each trace, in the id space of the GPU ops' ``device`` column.
-- Rows of two sources (``id_source``): ``metadata``, one per GPU the files' ``tracekit.traces``
-- metadata lists (Kineto deviceProperties, or torch 1.8's computeProperties: id/name/numSms (old:
-- multiProcessorCount)/gcnArchName/totalGlobalMem; nsys TARGET_INFO_*: id/name/sm_count; only Parquet
-- footers are read), and ``gpu_op``, one per device id that GPU ops use but no listed GPU has. That
-- happens when the trace lists no GPU at all (old or trimmed traces: name, sm_count and arch NULL,
-- ``gpu_index`` the id itself, as nothing renumbers it), and on ROCm: roctracer writes the HSA agent
-- id, which numbers the host's CPU agents first (GPU 0 is 2 on a two-socket host), while
-- deviceProperties list HIP device indices 0..N-1. Such a row takes the name, sm_count and arch of
-- the listed GPUs when they are all one model (the usual node), else NULL: which listed GPU it is
-- cannot be told from the trace. ``name``: the listed name; where it is empty or ROCm's generic "AMD
-- Radeon Graphics" and the LLVM target (gcnArchName) is known, the product named by the target and
-- CU count / memory as in AMD's "GPU specifications" table (rocm.docs.amd.com, reference/gpu-specs):
-- gfx90a 110 CUs MI250X, 104 CUs MI250/MI210 (one GCD each, same per-GCD peaks); gfx942 304 CUs
-- MI300X (192 GiB) or MI325X (256 GiB), 228 CUs MI300A; gfx950 256 CUs MI350X/MI355X.
-- ``gpu_index``: the listed GPU (the deviceProperties / TARGET_INFO id that ``tracekit info`` prints) that
-- the GPU ops of id ``device`` ran on: the one device numbering of every page and line (the HTML
-- timeline's GPU lanes). When every id GPU ops use is listed, it is ``device``. When some is not, the
-- trace's op ids are HSA agent ids (every CPU agent is numbered before the GPUs, in order), so
-- ``gpu_index = device - c`` with ``c`` the count of CPU agents, which the trace does not state: ``c``
-- is known when one value puts every used id on the listed range, i.e. when max(used) - max(listed) =
-- min(used) - min(listed) (one listed GPU and one used id: agent 9 is GPU 0; eight listed and ops on
-- agents 2..9: c = 2), else ``gpu_index`` is NULL (eight listed, ops on agent 9 only: GPU 7 with two CPU
-- agents, GPU 0 with nine). A trace whose used ids are all listed keeps them, though on ROCm a listed
-- id may itself be an agent id (the MI250 trace in ../shared: ops on 2 of listed 0..3): nothing in the
-- trace tells the two apart.
CREATE OR REPLACE VIEW trace_devices AS
WITH _listed AS (
    SELECT t.key AS trace, TRY_CAST(json_extract_string(d.value, '$.id') AS INTEGER) AS device,
           nullif(trim(json_extract_string(d.value, '$.name')), '') AS listed_name,
           nullif(split_part(json_extract_string(d.value, '$.gcnArchName'), ':', 1), '') AS arch,
           TRY_CAST(coalesce(json_extract_string(d.value, '$.numSms'), json_extract_string(d.value, '$.sm_count'),
                             json_extract_string(d.value, '$.multiProcessorCount')) AS INTEGER) AS sm_count,
           TRY_CAST(json_extract_string(d.value, '$.totalGlobalMem') AS BIGINT) AS mem
    FROM parquet_kv_metadata({files}) m,
         json_each(decode(m.value)::JSON) t,
         json_each(json_extract(t.value, '$.devices')) d
    WHERE decode(m.key) = 'tracekit.traces' AND json_type(json_extract(t.value, '$.devices')) = 'ARRAY'
), _named AS (
    SELECT trace, device, sm_count, arch,
           CASE WHEN (listed_name IS NULL OR listed_name = 'AMD Radeon Graphics') AND from_arch IS NOT NULL THEN from_arch
                ELSE listed_name END AS name
    FROM (SELECT *, CASE
            WHEN arch = 'gfx90a' AND sm_count = 110 THEN 'AMD Instinct MI250X (gfx90a, 1 GCD)'
            WHEN arch = 'gfx90a' AND sm_count = 104 THEN 'AMD Instinct MI250 (gfx90a, 1 GCD; or MI210)'
            WHEN arch = 'gfx942' AND sm_count = 304 AND mem >= 257698037760 THEN 'AMD Instinct MI325X (gfx942)'  -- >= 240 GiB: MI325X 256, MI300X 192
            WHEN arch = 'gfx942' AND sm_count = 304 THEN 'AMD Instinct MI300X (gfx942)'
            WHEN arch = 'gfx942' AND sm_count = 228 THEN 'AMD Instinct MI300A (gfx942)'
            WHEN arch = 'gfx950' THEN 'AMD Instinct MI350X/MI355X (gfx950)'
            WHEN arch IS NOT NULL THEN 'AMD ' || arch END AS from_arch FROM _listed)
), _one AS (
    SELECT trace, any_value(name) AS name, any_value(sm_count) AS sm_count, any_value(arch) AS arch
    FROM _named GROUP BY trace
    HAVING count(DISTINCT coalesce(name, '')) = 1 AND count(DISTINCT coalesce(sm_count, -1)) = 1
), _used AS (
    SELECT DISTINCT trace, device FROM read_parquet({files}, union_by_name = true)
    WHERE kind IN ('kernel', 'memcpy', 'memset') AND device IS NOT NULL
), _agent AS (  -- traces whose GPU ops use an id no listed GPU has: their op ids are HSA agent ids
    SELECT u.trace, CASE WHEN max(u.device) - l.lmax = min(u.device) - l.lmin AND min(u.device) - l.lmin > 0
                         THEN min(u.device) - l.lmin END AS offset
    FROM _used u JOIN (SELECT trace, min(device) AS lmin, max(device) AS lmax FROM _named GROUP BY trace) l USING (trace)
    GROUP BY u.trace, l.lmin, l.lmax
    HAVING bool_or(NOT EXISTS (SELECT 1 FROM _named n WHERE n.trace = u.trace AND n.device = u.device))
)
SELECT n.trace, n.device, n.name, n.sm_count, n.arch, 'metadata' AS id_source,
       CASE WHEN a.trace IS NULL OR n.device NOT IN (SELECT device FROM _used u WHERE u.trace = n.trace) THEN n.device
            ELSE n.device - a.offset END AS gpu_index
FROM _named n LEFT JOIN _agent a USING (trace)
UNION ALL
SELECT u.trace, u.device, o.name, o.sm_count, o.arch, 'gpu_op',
       CASE WHEN u.trace IN (SELECT trace FROM _named) THEN u.device - a.offset ELSE u.device END
FROM _used u LEFT JOIN _one o USING (trace) LEFT JOIN _agent a USING (trace)
WHERE NOT EXISTS (SELECT 1 FROM _named n WHERE n.trace = u.trace AND n.device = u.device);

-- ``trace_notes``: one row per (trace, note) of the files' ``tracekit.traces`` metadata (the converter's notes).
CREATE OR REPLACE VIEW trace_notes AS
SELECT t.key AS trace, json_extract_string(n.value, '$') AS note
FROM parquet_kv_metadata({files}) m,
     json_each(decode(m.value)::JSON) t,
     json_each(json_extract(t.value, '$.notes')) n
WHERE decode(m.key) = 'tracekit.traces' AND json_type(json_extract(t.value, '$.notes')) = 'ARRAY';

-- ``trace_ranks``: one row per trace: the distributed rank and world size its metadata states (Kineto
-- ``distributedInfo``; NULL for nsys and single-process traces). queries/collectives.sql numbers ranks with it.
CREATE OR REPLACE VIEW trace_ranks AS
SELECT t.key AS trace, TRY_CAST(json_extract_string(t.value, '$.rank') AS INTEGER) AS rank,
       TRY_CAST(json_extract_string(t.value, '$.world_size') AS INTEGER) AS world_size
FROM parquet_kv_metadata({files}) m, json_each(decode(m.value)::JSON) t
WHERE decode(m.key) = 'tracekit.traces';

-- ``trace_capture``: one row per trace: ``activities``, the profiler activities ``tracekit capture`` recorded
-- (``CPU,CUDA``; ``CPU`` when that torch had no CUDA), from the ``tracekit_capture`` key the capture bootstrap
-- adds to the trace (kept in the metadata's ``extra``); NULL for a trace not made by ``tracekit capture``.
-- A CPU-only run captured with CUDA on needs no advice to turn CUDA on (queries/trust.sql, headline.sql).
CREATE OR REPLACE VIEW trace_capture AS
SELECT t.key AS trace, json_extract_string(t.value, '$.extra.tracekit_capture') AS activities
FROM parquet_kv_metadata({files}) m, json_each(decode(m.value)::JSON) t
WHERE decode(m.key) = 'tracekit.traces';
