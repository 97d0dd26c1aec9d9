-- lib/intervals: the union of time intervals per group, the one algorithm behind every GPU-busy number.
--
-- Used by lib/idle (the gaps between a device's ops and its busy time), steps.sql (per step and device)
-- and phase_time.sql (per phase and device): each was a copy of these two windows before.
-- intervals_union(tbl): tbl names a table or a CTE of the calling statement with the columns
--   grp     the group whose intervals are united (any type; a STRUCT such as (trace, device) for several keys)
--   ts_ns, end_ns   the interval (end_ns >= ts_ns)
--   tie     the last sort key (e.g. row_id), so that equal intervals always come in one order
-- and returns its rows, each with two more columns:
--   prev_end_ns  the latest end among the group's earlier intervals (order: ts_ns, end_ns, tie); NULL for
--                the first. An interval with ts_ns > prev_end_ns starts a new island of the union and
--                ends a gap of it (prev_end_ns .. ts_ns); touching intervals (ts_ns = prev_end_ns) are one.
--   island       1.. per group: the island of the union the interval belongs to.
-- The union's length per group is the sum over islands of max(end_ns) - min(ts_ns). One sort per group and
-- two running windows: linear after the sort, never an interval join.
-- Public: intervals_union (a table macro).

CREATE OR REPLACE TEMP MACRO intervals_union(tbl) AS TABLE
WITH _prev AS (
    SELECT *, max(end_ns) OVER (PARTITION BY grp ORDER BY ts_ns, end_ns, tie
                                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end_ns
    FROM query_table(tbl)
)
SELECT *, sum(CASE WHEN prev_end_ns IS NULL OR ts_ns > prev_end_ns THEN 1 ELSE 0 END)
              OVER (PARTITION BY grp ORDER BY ts_ns, end_ns, tie ROWS UNBOUNDED PRECEDING) AS island
FROM _prev;
