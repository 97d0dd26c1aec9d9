-- lib/notes: the sentences that say why a number is NULL and which capture option fixes it,
-- each fact worded in one place (macros returning text; the analyses call them).
--

-- The sentence for a trace with no GPU activity at all, the one place it is worded (trust, headline).
CREATE OR REPLACE TEMP MACRO notes_no_gpu_activity(acts) AS 'no GPU activity in this run (no GPU op, no CUDA/HIP runtime call, no sync record): '
    || CASE WHEN contains(acts, 'CUDA') THEN 'the program ran nothing on a GPU (tracekit capture recorded CUDA activity)'
            WHEN acts IS NOT NULL THEN 'a CPU-only run (tracekit capture: this torch has no CUDA support)'
            ELSE 'a CPU-only run, or CUDA activity was not captured (Kineto activities=[CPU, CUDA], nsys --trace=cuda)' END;
