-- collectives: one row per collective call (type, group, size, bandwidth), and the same calls
-- @requires lib/gpu_activity lib/step_instances lib/trace_window
-- matched across ranks: who arrives late, who waits, how far each rank's steps are skewed.
-- @param rank_align CHOICE(collective_end,none) 'collective_end' several ranks: shift each rank's clock so
--     matched collectives end together (collective_end), or keep raw timestamps (none: one host, or
--     clocks known to agree)
--
-- Run it with `tracekit report` (or tracekit.report.run): that loads the modules on its @requires line first.
--
-- A collective call = one communication kernel (op_class 'communication' in lib/gpu_activity's gpu_activity_names). Its
-- facts come from, first to last: the kernel's own Kineto args (torch >= 2.1: `Collective name`,
-- `In msg nelems`, `Out msg nelems`, `dtype`, `Group size`, `Process Group Name`/`Description`/
-- `Ranks`, `Seq`); the `record_param_comms` cpu_op with the same External id (older torch); for the
-- type only, a `nccl:<type>` range enclosing the launch (torch's record_function, also the NVTX
-- ranges of an nsys capture); the kernel name (`ncclKernel_AllReduce_...`, `ncclDevKernel_SendRecv`).
-- Types are normalised: all_reduce, all_gather, reduce_scatter, all_to_all, broadcast, reduce,
-- send_recv, barrier, gather, scatter (others kept, lower-cased without punctuation).
-- Size and bandwidth follow NCCL's published conventions (nccl-tests doc/PERFORMANCE.md):
--   msg_bytes  = max(In msg nelems, Out msg nelems) x element size: the buffer size S of nccl-tests
--                (all_reduce/broadcast/reduce: the tensor; all_gather: the gathered output;
--                reduce_scatter: the full input; all_to_all: all data sent)
--   algbw_gbs  = msg_bytes / dur_ns (bytes per ns = GB/s), dur_ns = the kernel's duration
--   busbw_gbs  = algbw_gbs x factor, n = group size: all_reduce 2(n-1)/n; all_gather,
--                reduce_scatter, all_to_all (n-1)/n; broadcast, reduce, send_recv 1; others NULL
-- The kernel's duration includes time spent waiting inside it for late peers, so these are lower
-- bounds of the link's bandwidth; `waits` below says how much of a call was waiting.
--
-- Ranks. A rank is one (trace, device) running collectives: its number is the trace's rank
-- (metadata `distributedInfo.rank`, else `rank<N>` in the trace name, else its position among the
-- traces), or the device index when one trace holds several GPUs' collectives (an nsys report of
-- a multi-process run); the reference rank is the lowest. Calls are matched across ranks in two passes.
-- CLOCKS ARE NOT SYNCHRONISED across traces, so pass 1 estimates each trace's clock shift: with
-- rank_align = 'collective_end' (default) it is the median, over calls paired by (process group,
-- Seq) or without Seq by (process group, type, step, n-th such call in the step), of (its call end -
-- the reference trace's end of the same call): a collective completes on every rank at (nearly) the
-- same moment, whoever arrived late. Ranks in one trace share a clock and one shift. rank_align =
-- 'none' keeps raw timestamps (one host, or clocks known to agree). Pass 2 matches: by (process
-- group, Seq) when recorded, else each call takes the reference rank's call of the same group and
-- type whose shifted end is nearest, if within half the shorter call (captures that miss or add
-- calls, e.g. sampled ones, still match the rest); each reference call is taken once per rank.
-- Calls the reference rank does not hold are not matched. The `alignment` output gives each trace's
-- shift and the largest residual misfit of matched ends after it (a quality check).
--
-- Inputs: kernels, events (record_param_comms cpu_ops), trace_ranks; step_instances, trace_window, gpu_activity_names
-- (queries/lib/).
--
-- Output `collectives` (one row per call): trace, device, rank, stream, ts_ns, dur_ns, coll_type,
--   type_source (args | record_param_comms | range | kernel_name | unknown), pg_name, pg_desc,
--   group_size, group_ranks (global ranks of the group, as torch writes them), seq, in_nelems,
--   out_nelems, dtype, msg_bytes, algbw_gbs, busbw_gbs, size_bucket,
--   phase_path, step_index (the step holding the launch, by time), kernel, note (why sizes are NULL)
-- Output `by_type` (trace, device, coll_type, pg_name, size_bucket): calls, total_ns, mean_ns,
--   p50_ns, max_ns, msg_bytes (summed), algbw_gbs = summed bytes / summed ns, busbw_gbs likewise
-- Output `by_phase` (trace, device, phase_path, coll_type): calls, total_ns, msg_bytes, algbw_gbs
-- Output `alignment` (one row per trace in a multi-rank set): trace, rank, method (collective_end |
--   none), offset_ns (subtracted from its timestamps), matched_calls (with the reference), residual_ns
--   (largest |end - reference end| left after the shift), note
-- Output `matched` (one row per call seen on >= 2 ranks): match_key, match_by (seq | nearest_end),
--   coll_type, pg_name, ranks, first_arrival_ts_ns, last_arrival_ts_ns (aligned kernel starts: timestamps),
--   the late rank cost every other rank at least), total_wait_ns = summed waits of all ranks,
--   mean_dur_ns, step_key (step of the reference rank's call)
-- Output `waits` (one row per rank and matched call): match_key, trace, device, rank, arrival_ts_ns,
-- Output `by_rank`: trace, device, rank, calls (matched), wait_ns (summed), times_last (calls it
--   arrived at last), caused_wait_ns (others' waits in the calls it was last at), late_ns (summed)
-- Output `rank_steps` (per step and trace, multi-trace sets): step_key, trace, rank, start_ts_ns,
--   end_ts_ns (aligned timestamps), start_offset_ns, end_offset_ns (from the step's earliest aligned
--   start over all ranks: the per-rank step timeline), wall_ns, wait_ns (its waits at the step's matched calls),
--   late_ns (its arrival - the first arrival, summed over those calls)
-- Output `step_skew` (per step key seen on >= 2 traces): ranks, earliest_start_ts_ns, start_skew_ns,
--   for the last), min_wall_ns, max_wall_ns, slowest_rank (ends last; NULL when all end together), late_rank (most
--   late_ns at the step's calls; NULL when none is late), late_ns, max_wait_ns
-- Output `straggler` (one row when >= 2 ranks' collectives matched; the report's sentence): rank, trace
--   (the rank whose lateness made the others wait longest: most caused_wait_ns, ties to the lowest
--   rank), times_last (matched calls it arrived at last), matched_calls (all matched calls: the
--   denominator of times_last), late_ns_mean (mean late_ns over the calls it was last at: how much
--   later than the next-latest rank it arrived, i.e. what it cost every other rank at least per call),
--   caused_wait_ns (others' summed waits at those calls), steps (step keys seen on >= 2 ranks; 0 when
--   no step matched), caused_wait_ns_per_step = caused_wait_ns / steps (NULL without steps),
--   skew_ns_mean (mean step_skew.skew_ns; NULL without steps), slowest_steps (steps it ended last),
--   alignment (collective_end when any trace's clock was shifted by matched collective ends, else none)
-- Steps are matched by name when a step's name is unique in its trace and holds a number
-- (ProfilerStep#551), else by (step kind, n-th step of that kind).
--
-- How to read: late_ns and caused_wait_ns name the straggler; wait_share near 1 means a call's
-- time was mostly waiting, not moving data (its bandwidth then says nothing about the links).

CREATE OR REPLACE TEMP MACRO _cl_type(x) AS CASE
    WHEN x IS NULL OR x = '' THEN NULL
    WHEN contains(x, 'allreduce') THEN 'all_reduce'
    WHEN contains(x, 'reducescatter') THEN 'reduce_scatter'
    WHEN contains(x, 'allgather') THEN 'all_gather'
    WHEN contains(x, 'alltoall') THEN 'all_to_all'
    WHEN contains(x, 'broadcast') THEN 'broadcast'
    WHEN contains(x, 'sendrecv') OR x IN ('send', 'recv') THEN 'send_recv'
    WHEN contains(x, 'barrier') THEN 'barrier'
    WHEN contains(x, 'reduce') THEN 'reduce'
    WHEN contains(x, 'gather') THEN 'gather'
    WHEN contains(x, 'scatter') THEN 'scatter'
    ELSE x END;
CREATE OR REPLACE TEMP MACRO _cl_norm(x) AS lower(regexp_replace(x, '[^A-Za-z]', '', 'g'));
-- bytes per element of torch's dtype names (c10 ScalarType) as Kineto writes them
CREATE OR REPLACE TEMP MACRO _cl_elt(d) AS CASE
    WHEN d IN ('Float', 'Int', 'Float32', 'Int32', 'UInt32') THEN 4
    WHEN d IN ('Double', 'Long', 'ComplexFloat', 'Int64', 'UInt64') THEN 8
    WHEN d IN ('Half', 'BFloat16', 'Short', 'Int16', 'UInt16') THEN 2
    WHEN d IN ('Byte', 'Char', 'Bool', 'Int8', 'UInt8') OR starts_with(d, 'Float8') THEN 1
    WHEN d = 'ComplexDouble' THEN 16 END;
CREATE OR REPLACE TEMP MACRO _cl_bus(t, n) AS CASE
    WHEN n IS NULL OR n < 1 THEN NULL
    WHEN t = 'all_reduce' THEN 2.0 * (n - 1) / n
    WHEN t IN ('all_gather', 'reduce_scatter', 'all_to_all') THEN (n - 1) / n
    WHEN t IN ('broadcast', 'reduce', 'send_recv') THEN 1.0 END;

-- Step keys, the same on every rank: the name when unique in its trace and numbered, else kind#n.
CREATE OR REPLACE TEMP TABLE _cl_steps AS
SELECT trace, step_index, ts_ns, end_ns,
       CASE WHEN count(*) OVER (PARTITION BY trace, name) = 1 AND regexp_matches(name, '[0-9]') THEN name
            ELSE step_kind || '#' || row_number() OVER (PARTITION BY trace, step_kind ORDER BY ts_ns, seq) END
           AS step_key
FROM step_instances_matched;  -- a whole trace (no step matched) has no step to align

CREATE OR REPLACE TEMP TABLE _cl AS
WITH _comm_kernels AS (
    SELECT trace, coalesce(device, -1) AS device, stream, name, ts_ns, greatest(dur_ns, 0) AS dur_ns, external_id,
           coalesce(phase_path, '(none)') AS phase_path, coalesce(launch_ts_ns, ts_ns) AS at_ns, args
    FROM kernels WHERE (kind, name) IN (SELECT kind, name FROM gpu_activity_names WHERE op_class = 'communication')
), _param_comms AS (
    SELECT trace, external_id, any_value(args) AS args FROM events
    WHERE kind = 'cpu_op' AND name = 'record_param_comms' AND external_id IS NOT NULL GROUP BY ALL
), _args_parsed AS (  -- each args object parsed once: all keys in one json_extract_string call
    SELECT k.* EXCLUDE (args),
           json_extract_string(k.args, ['$."Collective name"', '$."Process Group Name"',
               '$."Process Group Description"', '$."Group size"', '$."Process Group Ranks"', '$."Seq"',
               '$."In msg nelems"', '$."Out msg nelems"', '$."dtype"']) AS ka,
           json_extract_string(r.args, ['$."Collective name"', '$."Process Group Name"',
               '$."Process Group Description"', '$."Group size"', '$."Process Group Ranks"', '$."Seq"',
               '$."In msg nelems"', '$."Out msg nelems"', '$."dtype"']) AS ra
    FROM _comm_kernels k LEFT JOIN _param_comms r ON r.trace = k.trace AND r.external_id = k.external_id
), _with_args AS (
    SELECT * EXCLUDE (ka, ra), ka[1] AS k_type, ra[1] AS r_type,
           coalesce(ka[2], ra[2]) AS pg_name, coalesce(ka[3], ra[3]) AS pg_desc,
           coalesce(TRY_CAST(coalesce(ka[4], ra[4]) AS INTEGER),
                    json_array_length(TRY_CAST(coalesce(ka[5], ra[5]) AS JSON))::INTEGER) AS group_size,
           coalesce(ka[5], ra[5]) AS group_ranks, TRY_CAST(coalesce(ka[6], ra[6]) AS BIGINT) AS seq,
           TRY_CAST(coalesce(ka[7], ra[7]) AS BIGINT) AS in_nelems,
           TRY_CAST(coalesce(ka[8], ra[8]) AS BIGINT) AS out_nelems,
           coalesce(ka[9], ra[9]) AS dtype,
           _cl_type(_cl_norm(regexp_extract(phase_path, 'nccl:([A-Za-z_]+)', 1))) AS range_type,
           _cl_type(_cl_norm(regexp_extract(name, '(?:nccl|rccl|hccl)(?:Dev)?Kernel_([A-Za-z]+)', 1))) AS name_type
    FROM _args_parsed
), _typed AS (
    SELECT *, coalesce(_cl_type(_cl_norm(k_type)), _cl_type(_cl_norm(r_type)), range_type, name_type,
                       'unknown') AS coll_type,
           CASE WHEN k_type IS NOT NULL THEN 'args' WHEN r_type IS NOT NULL THEN 'record_param_comms'
                WHEN range_type IS NOT NULL THEN 'range' WHEN name_type IS NOT NULL THEN 'kernel_name'
                ELSE 'unknown' END AS type_source,
           greatest(in_nelems, out_nelems) * _cl_elt(dtype) AS msg_bytes
    FROM _with_args
)
SELECT t.*, t.msg_bytes / nullif(t.dur_ns, 0) AS algbw_gbs,
       t.msg_bytes / nullif(t.dur_ns, 0) * _cl_bus(t.coll_type, t.group_size) AS busbw_gbs,
       CASE WHEN t.msg_bytes IS NULL THEN NULL WHEN t.msg_bytes < 65536 THEN '<64KiB'
            WHEN t.msg_bytes < 1048576 THEN '64KiB-1MiB' WHEN t.msg_bytes < 16777216 THEN '1-16MiB'
            WHEN t.msg_bytes < 268435456 THEN '16-256MiB' ELSE '>=256MiB' END AS size_bucket,
       CASE WHEN t.at_ns < s.end_ns THEN s.step_index END AS step_index,
       CASE WHEN t.at_ns < s.end_ns THEN s.step_key END AS step_key
FROM _typed t ASOF LEFT JOIN _cl_steps s ON t.trace = s.trace AND t.at_ns >= s.ts_ns;

-- Ranks: traces (rank from metadata, name, or position) and (trace, device) units that ran collectives.
CREATE OR REPLACE TEMP TABLE _cl_trace AS
WITH _traces AS (SELECT trace FROM trace_window)
SELECT t.trace, coalesce(r.rank, TRY_CAST(regexp_extract(t.trace, '(?i)rank[-_]?([0-9]+)', 1) AS INTEGER),
                         (dense_rank() OVER (ORDER BY t.trace) - 1)::INTEGER) AS rank,
       CASE WHEN r.rank IS NOT NULL THEN 'metadata'
            WHEN regexp_matches(t.trace, '(?i)rank[-_]?[0-9]+') THEN 'trace name'
            ELSE 'position' END AS rank_source
FROM _traces t LEFT JOIN trace_ranks r USING (trace);

CREATE OR REPLACE TEMP TABLE _cl_unit AS
WITH _units AS (SELECT DISTINCT trace, device FROM _cl)
SELECT u.trace, u.device, CASE WHEN count(*) OVER (PARTITION BY u.trace) > 1 THEN u.device ELSE t.rank END AS rank,
       min(u.device) OVER (PARTITION BY u.trace) = u.device AS clock_unit
FROM _units u JOIN _cl_trace t USING (trace);

-- First pass (clock shift only): (process group, Seq), or without Seq the n-th call of each (process
-- group, type) inside each step (so a call missing in one step does not shift the others); only when
-- >= 2 ranks ran collectives.
CREATE OR REPLACE TEMP TABLE _cl_key0 AS
SELECT c.trace, c.device, u.rank, u.clock_unit, c.ts_ns, c.dur_ns, c.ts_ns + c.dur_ns AS end_ns, c.coll_type,
       coalesce(c.pg_name, '?') AS pgk, c.seq, c.step_key,
       CASE WHEN c.seq IS NOT NULL THEN coalesce(c.pg_name, '?') || '#' || c.seq
            ELSE coalesce(c.pg_name, '?') || ':' || c.coll_type || '@' || coalesce(c.step_key, '') || '#'
                 || row_number() OVER (PARTITION BY c.trace, c.device, c.pg_name, c.coll_type, c.step_key, c.seq IS NULL
                                       ORDER BY c.ts_ns) END AS key0
FROM _cl c JOIN _cl_unit u USING (trace, device)
WHERE (SELECT count(*) FROM _cl_unit) >= 2;

CREATE OR REPLACE TEMP TABLE _cl_align AS
WITH _ref_trace AS (
    SELECT trace FROM _cl_unit ORDER BY rank, trace, device LIMIT 1
), _end_diffs AS (
    SELECT k.trace, k.end_ns - r.end_ns AS d
    FROM _cl_key0 k JOIN _cl_key0 r ON r.key0 = k.key0 AND r.clock_unit AND r.trace = (SELECT trace FROM _ref_trace)
    WHERE k.clock_unit
), _offsets AS (
    SELECT trace, count(*) AS matched_calls, quantile_disc(d, 0.5) AS med FROM _end_diffs GROUP BY trace
), _aligned_traces AS (
    SELECT DISTINCT k.trace FROM _cl_key0 k
    UNION SELECT DISTINCT trace FROM _cl_steps WHERE (SELECT count(DISTINCT trace) FROM _cl_steps) >= 2
)
SELECT t.trace, tr.rank,
       CASE WHEN getvariable('rank_align') = 'none' THEN 'none' WHEN o.matched_calls > 0 THEN 'collective_end'
            ELSE 'none' END AS method,
       CASE WHEN getvariable('rank_align') = 'none' THEN 0 ELSE coalesce(o.med, 0) END AS offset_ns,
       coalesce(o.matched_calls, 0) AS matched_calls, t.trace = (SELECT trace FROM _ref_trace) AS reference
FROM _aligned_traces t JOIN _cl_trace tr USING (trace) LEFT JOIN _offsets o USING (trace);

-- Second pass (the match): with Seq, (process group, Seq). Without, each call takes the reference
-- rank's call of the same group and type whose shifted end is nearest, if the ends differ by at most
-- half the shorter call (so a capture that lacks some calls, or holds extra ones, still matches the
-- rest); each reference call is taken at most once per rank.
CREATE OR REPLACE TEMP TABLE _cl_key AS
WITH _shifted AS (
    SELECT k.*, k.end_ns - a.offset_ns AS ae FROM _cl_key0 k JOIN _cl_align a USING (trace)
), _ref_unit AS (
    SELECT trace, device FROM _cl_unit ORDER BY rank, trace, device LIMIT 1
), _ref_calls AS (
    SELECT a.pgk, a.coll_type, a.ae, a.dur_ns, a.key0 FROM _shifted a JOIN _ref_unit USING (trace, device)
    WHERE a.seq IS NULL
), _other_calls AS (
    SELECT a.* FROM _shifted a
    WHERE a.seq IS NULL AND (a.trace, a.device) NOT IN (SELECT (trace, device) FROM _ref_unit)
), _nearest_below AS (
    SELECT o.*, r.ae AS lo_ae, r.dur_ns AS lo_dur, r.key0 AS lo_key
    FROM _other_calls o ASOF LEFT JOIN _ref_calls r ON o.pgk = r.pgk AND o.coll_type = r.coll_type AND o.ae >= r.ae
), _nearest_above AS (
    SELECT o.*, r.ae AS hi_ae, r.dur_ns AS hi_dur, r.key0 AS hi_key
    FROM _nearest_below o ASOF LEFT JOIN _ref_calls r ON o.pgk = r.pgk AND o.coll_type = r.coll_type AND o.ae <= r.ae
), _pick AS (
    SELECT *, CASE WHEN hi_key IS NULL OR (lo_key IS NOT NULL AND ae - lo_ae <= hi_ae - ae) THEN lo_key
                   ELSE hi_key END AS mk,
              CASE WHEN hi_key IS NULL OR (lo_key IS NOT NULL AND ae - lo_ae <= hi_ae - ae) THEN ae - lo_ae
                   ELSE hi_ae - ae END AS gap,
              CASE WHEN hi_key IS NULL OR (lo_key IS NOT NULL AND ae - lo_ae <= hi_ae - ae) THEN lo_dur
                   ELSE hi_dur END AS mdur
    FROM _nearest_above
), _nearest_matched AS (
    SELECT trace, device, rank, clock_unit, ts_ns, dur_ns, end_ns, coll_type, pgk, step_key, mk AS match_key,
           'nearest_end' AS match_by
    FROM _pick WHERE mk IS NOT NULL AND 2 * gap <= least(dur_ns, mdur)
    QUALIFY row_number() OVER (PARTITION BY trace, device, mk ORDER BY gap, ts_ns) = 1
)
SELECT trace, device, rank, clock_unit, ts_ns, dur_ns, end_ns, coll_type, pgk AS pg_name, step_key, key0 AS match_key,
       CASE WHEN seq IS NOT NULL THEN 'seq' ELSE 'reference' END AS match_by
FROM _shifted WHERE seq IS NOT NULL OR (trace, device) IN (SELECT (trace, device) FROM _ref_unit)
UNION ALL SELECT * FROM _nearest_matched;

CREATE OR REPLACE TEMP TABLE collectives_waits AS
WITH _arrivals AS (
    SELECT k.*, k.ts_ns - a.offset_ns AS arrival_ns, k.end_ns - a.offset_ns AS aend_ns
    FROM _cl_key k JOIN _cl_align a USING (trace)
), _per_match AS (
    SELECT match_key, count(*) AS ranks, min(arrival_ns) AS first_arrival_ns, max(arrival_ns) AS last_arrival_ns,
           arg_max(rank, arrival_ns) AS last_rank, list_sort(list(arrival_ns), 'DESC') AS arr
    FROM _arrivals GROUP BY match_key HAVING count(*) >= 2
)
SELECT a.*, m.ranks, m.first_arrival_ns, m.last_arrival_ns, m.last_rank, m.last_arrival_ns - m.arr[2] AS late_ns,
       m.last_arrival_ns - a.arrival_ns AS wait_ns, a.arrival_ns - m.first_arrival_ns AS behind_ns
FROM _arrivals a JOIN _per_match m USING (match_key);

CREATE OR REPLACE TEMP TABLE collectives_rank_steps AS
WITH _waits_per_step AS (
    SELECT trace, step_key, sum(wait_ns) AS wait_ns, sum(behind_ns) AS late_ns
    FROM collectives_waits WHERE step_key IS NOT NULL GROUP BY ALL
)
SELECT s.step_key, s.trace, a.rank, s.ts_ns - a.offset_ns AS start_ns, s.end_ns - a.offset_ns AS end_ns,
       s.end_ns - s.ts_ns AS wall_ns, coalesce(w.wait_ns, 0)::BIGINT AS wait_ns,
       coalesce(w.late_ns, 0)::BIGINT AS late_ns
FROM _cl_steps s JOIN _cl_align a USING (trace) LEFT JOIN _waits_per_step w USING (trace, step_key)
WHERE (SELECT count(DISTINCT trace) FROM _cl_steps) >= 2;

-- @output collectives
-- @column trace       TEXT      the trace (input file name) the row is about
-- @column device      ID        GPU device id as the trace gives it
-- @column rank        ID        metadata `distributedInfo.rank`, else `rank<N>` in the trace name, else its
--                               position among the traces
-- @column stream      ID        GPU stream id
-- @column ts_ns       TIMESTAMP start
-- @column dur_ns      DURATION  the kernel's duration
-- @column coll_type   TEXT      collective type (all_reduce, all_gather, ...)
-- @column type_source TEXT      args | record_param_comms | range | kernel_name | unknown
-- @column pg_name     TEXT      process group name (record_param_comms' Process Group Name)
-- @column pg_desc     TEXT      process group description
-- @column group_size  COUNT     ranks in the process group
-- @column group_ranks TEXT      global ranks of the group, as torch writes them
-- @column seq         ID        the collective's sequence number in its process group
-- @column in_nelems   COUNT     input elements of the call (record_param_comms)
-- @column out_nelems  COUNT     output elements of the call
-- @column dtype       TEXT      element type of the collective's data
-- @column msg_bytes   COUNT     max(In msg nelems, Out msg nelems) x element size: the buffer size S of nccl-
--                               tests
-- @column algbw_gbs   NUMBER    msg_bytes / dur_ns (bytes per ns = GB/s)
-- @column busbw_gbs   NUMBER    algbw_gbs x the collective's bus factor (nccl-tests: all_reduce 2(n-1)/n,
--                               ...)
-- @column size_bucket TEXT      message size class
-- @column phase_path  TEXT      the '/'-joined names of the ranges around the row ('(none)' outside every
--                               range)
-- @column step_index  ID        the step's number in its trace (1.. in time order)
-- @column kernel      TEXT      the communication kernel's name
-- @column note        NOTE      why a value of the row is NULL or what to keep in mind reading it
SELECT c.trace, c.device, u.rank, c.stream, c.ts_ns, c.dur_ns, c.coll_type, c.type_source, c.pg_name, c.pg_desc,
       c.group_size, c.group_ranks, c.seq, c.in_nelems, c.out_nelems, c.dtype, c.msg_bytes, c.algbw_gbs, c.busbw_gbs,
       c.size_bucket,
       c.phase_path, c.step_index, c.name AS kernel,
       CASE WHEN c.msg_bytes IS NULL THEN 'no message size/dtype in the trace: torch.profiler records them on NCCL '
            || 'kernels and record_param_comms (torch >= 2.1, record_shapes=True); nsys exports have none'
            WHEN c.busbw_gbs IS NULL THEN 'no group size or no bus-bandwidth convention for ' || c.coll_type END AS note
FROM _cl c JOIN _cl_unit u USING (trace, device)
ORDER BY c.trace, c.device, c.ts_ns, c.stream, c.dur_ns, c.name, c.seq NULLS LAST;

-- @output by_type
-- @column trace       TEXT      the trace (input file name) the row is about
-- @column device      ID        GPU device id as the trace gives it
-- @column coll_type   TEXT      collective type (all_reduce, all_gather, ...)
-- @column pg_name     TEXT      process group name (record_param_comms' Process Group Name)
-- @column size_bucket TEXT      message size class
-- @column calls       COUNT     collective calls
-- @column total_ns    DURATION  summed duration
-- @column mean_ns     DURATION  mean duration
-- @column p50_ns      DURATION  median duration
-- @column max_ns      DURATION  longest duration
-- @column msg_bytes   COUNT     summed message bytes
-- @column algbw_gbs   NUMBER    msg_bytes / total_ns (GB/s)
-- @column busbw_gbs   NUMBER    algbw_gbs x the bus factor
--
--                               NULL
SELECT trace, device, coll_type, pg_name, coalesce(size_bucket, '(unknown size)') AS size_bucket, count(*) AS calls,
       sum(dur_ns)::BIGINT AS total_ns, avg(dur_ns) AS mean_ns, quantile_disc(dur_ns, 0.5) AS p50_ns,
       max(dur_ns) AS max_ns,
       sum(msg_bytes)::BIGINT AS msg_bytes,
       sum(msg_bytes) / nullif(sum(dur_ns) FILTER (WHERE msg_bytes IS NOT NULL), 0) AS algbw_gbs,
       sum(msg_bytes * _cl_bus(coll_type, group_size)) / nullif(sum(dur_ns) FILTER (WHERE busbw_gbs IS NOT NULL), 0)
           AS busbw_gbs
FROM _cl GROUP BY ALL ORDER BY trace, device, total_ns DESC, coll_type, pg_name NULLS LAST, size_bucket;

-- @output by_phase
-- @column trace      TEXT      the trace (input file name) the row is about
-- @column device     ID        GPU device id as the trace gives it
-- @column phase_path TEXT      the '/'-joined names of the ranges around the row ('(none)' outside every
--                              range)
-- @column coll_type  TEXT      collective type (all_reduce, all_gather, ...)
-- @column calls      COUNT     collective calls
-- @column total_ns   DURATION  summed duration
-- @column msg_bytes  COUNT     summed message bytes
-- @column algbw_gbs  NUMBER    msg_bytes / total_ns (GB/s)
SELECT trace, device, phase_path, coll_type, count(*) AS calls, sum(dur_ns)::BIGINT AS total_ns,
       sum(msg_bytes)::BIGINT AS msg_bytes,
       sum(msg_bytes) / nullif(sum(dur_ns) FILTER (WHERE msg_bytes IS NOT NULL), 0) AS algbw_gbs
FROM _cl GROUP BY ALL ORDER BY trace, device, total_ns DESC, phase_path NULLS LAST, coll_type;

-- @output alignment
-- @column trace         TEXT      the trace (input file name) the row is about
-- @column rank          ID        metadata `distributedInfo.rank`, else `rank<N>` in the trace name, else its
--                                 position among the traces
-- @column method        TEXT      how the row was found
-- @column offset_ns     DURATION  subtracted from the trace's timestamps
-- @column matched_calls COUNT     calls matched with the reference rank
-- @column residual_ns   DURATION  largest |end - reference end| left after the shift
-- @column reference     BOOL      TRUE for the reference rank's trace (the lowest rank: shift 0)
-- @column note          NOTE      why a value of the row is NULL or what to keep in mind reading it
WITH _residuals AS (
    SELECT w.trace, max(abs(w.aend_ns - r.aend_ns)) AS residual_ns
    FROM collectives_waits w JOIN collectives_waits r ON r.match_key = w.match_key AND r.clock_unit
         AND r.trace = (SELECT trace FROM _cl_align WHERE reference)
    WHERE w.clock_unit GROUP BY w.trace
)
SELECT a.trace, a.rank, a.method, a.offset_ns, a.matched_calls, r.residual_ns, a.reference,
       CASE WHEN a.method = 'none' AND getvariable('rank_align') <> 'none'
            THEN 'no collective matched with the reference rank: raw timestamps used, cross-rank times may be off by '
                 || 'the clock difference'
            WHEN a.method = 'none' THEN 'rank_align = none: raw timestamps (valid only when the ranks share one clock)'
            ELSE 'clock shifted so matched collectives end together (ranks'' clocks are not synchronised)' END AS note
FROM _cl_align a LEFT JOIN _residuals r USING (trace)
ORDER BY a.rank, a.trace;

-- @output matched
-- @column match_key           TEXT      what matches one call across ranks (process group, sequence number)
-- @column match_by            TEXT      seq | nearest_end
-- @column coll_type           TEXT      collective type (all_reduce, all_gather, ...)
-- @column pg_name             TEXT      process group name (record_param_comms' Process Group Name)
-- @column ranks               COUNT     ranks (traces) that have the row
-- @column first_arrival_ts_ns TIMESTAMP earliest aligned kernel start of the call over the ranks
-- @column last_arrival_ts_ns  TIMESTAMP latest aligned kernel start of the call over the ranks
-- @column arrival_skew_ns     DURATION  last - first arrival
-- @column last_rank           COUNT     the rank that arrived last
-- @column late_ns             DURATION  last arrival - the one before it (what the last rank alone cost)
-- @column total_wait_ns       DURATION  summed waits of all ranks
-- @column mean_dur_ns         DURATION  mean kernel duration of the call over the ranks
-- @column step_key            TEXT      step of the reference rank's call
SELECT match_key, CASE WHEN bool_or(match_by = 'seq') THEN 'seq' ELSE 'nearest_end' END AS match_by,
       any_value(coll_type) AS coll_type, nullif(any_value(pg_name), '?') AS pg_name,
       any_value(ranks) AS ranks, any_value(first_arrival_ns) AS first_arrival_ts_ns,
       any_value(last_arrival_ns) AS last_arrival_ts_ns,
       any_value(last_arrival_ns - first_arrival_ns) AS arrival_skew_ns, any_value(last_rank) AS last_rank,
       any_value(late_ns) AS late_ns, sum(wait_ns)::BIGINT AS total_wait_ns, avg(dur_ns) AS mean_dur_ns,
       arg_min(step_key, rank) AS step_key
FROM collectives_waits GROUP BY match_key ORDER BY first_arrival_ts_ns, match_key;

-- @output waits
-- @column match_key     TEXT      what matches one call across ranks (process group, sequence number)
-- @column trace         TEXT      the trace (input file name) the row is about
-- @column device        ID        GPU device id as the trace gives it
-- @column rank          ID        metadata `distributedInfo.rank`, else `rank<N>` in the trace name, else its
--                                 position among the traces
-- @column arrival_ts_ns TIMESTAMP the rank's aligned kernel start of the call
-- @column behind_ns     DURATION  this rank's arrival - the first arrival
-- @column wait_ns       DURATION  last arrival - this rank's arrival (time its kernel spent waiting for the
--                                 last peer),
-- @column dur_ns        DURATION  the rank's kernel duration
-- @column wait_share    SHARE     wait_ns / dur_ns
SELECT match_key, trace, device, rank, arrival_ns AS arrival_ts_ns, behind_ns, wait_ns, dur_ns,
       wait_ns / nullif(dur_ns, 0) AS wait_share
FROM collectives_waits ORDER BY first_arrival_ns, match_key, rank;

-- @output by_rank
-- @column trace          TEXT      the trace (input file name) the row is about
-- @column device         ID        GPU device id as the trace gives it
-- @column rank           ID        metadata `distributedInfo.rank`, else `rank<N>` in the trace name, else
--                                  its position among the traces
-- @column calls          COUNT     calls matched
-- @column wait_ns        DURATION  summed waits of the rank
-- @column times_last     COUNT     calls it arrived at last
-- @column caused_wait_ns DURATION  others' waits in the calls it was last at
-- @column late_ns        DURATION  summed late_ns of the calls it was last at
WITH _wait_per_call AS (SELECT match_key, sum(wait_ns) AS total_wait FROM collectives_waits GROUP BY match_key)
SELECT w.trace, w.device, w.rank, count(*) AS calls, sum(w.wait_ns)::BIGINT AS wait_ns,
       count(*) FILTER (WHERE w.wait_ns = 0 AND w.rank = w.last_rank) AS times_last,
       coalesce(sum(c.total_wait) FILTER (WHERE w.wait_ns = 0 AND w.rank = w.last_rank), 0)::BIGINT AS caused_wait_ns,
       sum(w.behind_ns)::BIGINT AS late_ns
FROM collectives_waits w JOIN _wait_per_call c USING (match_key)
GROUP BY w.trace, w.device, w.rank ORDER BY w.rank, w.trace, w.device;

-- @output rank_steps
-- @column step_key        TEXT      step of the reference rank's call
-- @column trace           TEXT      the trace (input file name) the row is about
-- @column rank            ID        metadata `distributedInfo.rank`, else `rank<N>` in the trace name, else
--                                   its position among the traces
-- @column start_ts_ns     TIMESTAMP aligned start of the rank's first call in the step
-- @column end_ts_ns       TIMESTAMP aligned end of the rank's last call in the step
-- @column start_offset_ns DURATION  start_ts_ns - the step's earliest aligned start over the ranks
-- @column end_offset_ns   DURATION  end_ts_ns - the step's earliest aligned start over the ranks
-- @column wall_ns         DURATION  end_ts_ns - start_ts_ns
-- @column wait_ns         DURATION  summed waits of the rank in the step's calls
-- @column late_ns         DURATION  summed late_ns of the step's calls it was last at
SELECT step_key, trace, rank, start_ns AS start_ts_ns, end_ns AS end_ts_ns,
       start_ns - min(start_ns) OVER (PARTITION BY step_key) AS start_offset_ns,
       end_ns - min(start_ns) OVER (PARTITION BY step_key) AS end_offset_ns, wall_ns, wait_ns, late_ns
FROM collectives_rank_steps ORDER BY start_ns, rank;

-- @output step_skew
-- @column step_key             TEXT      step of the reference rank's call
-- @column ranks                COUNT     ranks (traces) that have the row
-- @column earliest_start_ts_ns TIMESTAMP earliest aligned start of the step's calls over the ranks
-- @column start_skew_ns        DURATION  latest - earliest start of the step over the ranks
-- @column earliest_end_ts_ns   TIMESTAMP earliest aligned end of the step over the ranks
-- @column skew_ns              DURATION  latest end - earliest end (the first rank to finish waits this long)
-- @column min_wall_ns          DURATION  shortest rank's span of the step
-- @column max_wall_ns          DURATION  longest rank's span of the step
-- @column slowest_rank         COUNT     the rank that ends the step last; NULL when all end together
-- @column late_rank            COUNT     the rank with the most late_ns at the step's calls; NULL when none
--                                        is late
-- @column late_ns              DURATION  that rank's summed late_ns
-- @column max_wait_ns          DURATION  longest wait of one rank in the step's calls
SELECT step_key, count(*) AS ranks, min(start_ns) AS earliest_start_ts_ns,
       max(start_ns) - min(start_ns) AS start_skew_ns,
       min(end_ns) AS earliest_end_ts_ns, max(end_ns) - min(end_ns) AS skew_ns, min(wall_ns) AS min_wall_ns,
       max(wall_ns) AS max_wall_ns,
       CASE WHEN max(end_ns) > min(end_ns) THEN arg_max(rank, end_ns) END AS slowest_rank,
       CASE WHEN max(late_ns) > 0 THEN arg_max(rank, late_ns) END AS late_rank, max(late_ns) AS late_ns,
       max(wait_ns) AS max_wait_ns
FROM collectives_rank_steps GROUP BY step_key HAVING count(*) >= 2
ORDER BY min(start_ns), step_key;

-- @output straggler
-- @column rank                    ID        metadata `distributedInfo.rank`, else `rank<N>` in the trace
--                                           name, else its position among the traces
-- @column trace                   TEXT      the trace (input file name) the row is about
-- @column times_last              COUNT     calls it arrived at last
-- @column matched_calls           COUNT     calls matched with the reference rank
-- @column late_ns_mean            DURATION  mean late_ns over the calls it was last at: how much later than
--                                           the next-latest rank it arrived, i.e. what it cost every other
--                                           rank at least per call
-- @column caused_wait_ns          DURATION  others' waits in the calls it was last at
-- @column steps                   COUNT     steps seen on >= 2 traces
-- @column caused_wait_ns_per_step DURATION  = caused_wait_ns / steps (NULL without steps)
-- @column skew_ns_mean            DURATION  mean step_skew.skew_ns; NULL without steps
-- @column slowest_steps           COUNT     steps it ended last
-- @column alignment               TEXT      collective_end when any trace's clock was shifted by matched
--                                           collective ends, else none
--
--                                           collective ends, else none
WITH _times_last_by_rank AS (
    SELECT rank, any_value(trace) AS trace, count(*) FILTER (WHERE wait_ns = 0 AND rank = last_rank) AS times_last
    FROM collectives_waits GROUP BY rank
), _per_call AS (
    SELECT match_key, sum(wait_ns) AS total_wait, any_value(last_rank) AS last_rank, any_value(late_ns) AS late_ns
    FROM collectives_waits GROUP BY match_key
), _caused_by_rank AS (
    SELECT last_rank AS rank, sum(total_wait) AS caused_wait_ns, avg(late_ns) AS late_ns_mean
    FROM _per_call GROUP BY last_rank
), _pick AS (
    SELECT b.rank, b.caused_wait_ns, b.late_ns_mean FROM _caused_by_rank b WHERE b.caused_wait_ns > 0
    ORDER BY b.caused_wait_ns DESC, b.rank LIMIT 1
), _step_skews AS (
    SELECT step_key, max(end_ns) - min(end_ns) AS skew_ns,
           CASE WHEN max(end_ns) > min(end_ns) THEN arg_max(rank, end_ns) END AS slowest_rank
    FROM collectives_rank_steps GROUP BY step_key HAVING count(*) >= 2
), _skew_summary AS (
    SELECT count(*) AS steps, avg(skew_ns) AS skew_ns_mean FROM _step_skews
)
SELECT p.rank, r.trace, r.times_last, (SELECT count(*) FROM _per_call) AS matched_calls, p.late_ns_mean,
       p.caused_wait_ns::BIGINT AS caused_wait_ns, k.steps,
       CASE WHEN k.steps > 0 THEN p.caused_wait_ns / k.steps END AS caused_wait_ns_per_step,
       k.skew_ns_mean, (SELECT count(*) FROM _step_skews WHERE slowest_rank = p.rank) AS slowest_steps,
       CASE WHEN EXISTS (SELECT 1 FROM _cl_align WHERE method = 'collective_end') THEN 'collective_end'
            ELSE 'none' END AS alignment
FROM _pick p JOIN _times_last_by_rank r USING (rank) CROSS JOIN _skew_summary k;
