-- lib/trace_window: each trace's window (trace_window), the span every share of wall time divides by.
--
-- Public (temp table):
--   trace_window  per trace: window_start_ns / window_end_ns / window_ns, the trace window
--            (earliest start to latest end over every timed row except metadata).

CREATE OR REPLACE TEMP TABLE trace_window AS
SELECT trace, min(ts_ns) AS window_start_ns, max(ts_ns + greatest(dur_ns, 0)) AS window_end_ns,
       max(ts_ns + greatest(dur_ns, 0)) - min(ts_ns) AS window_ns
FROM events WHERE kind NOT IN ('meta') AND ts_ns IS NOT NULL
GROUP BY trace;
