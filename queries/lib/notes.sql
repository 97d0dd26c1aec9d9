-- lib/notes: the sentences that say why a number is NULL and which capture option fixes it
-- (macros returning text; the analyses call them instead of spelling the fix).
--
-- FIX macros: how to capture what is missing, one per wording. The wordings differ between analyses
-- today (`Kineto: activities=[CPU, CUDA]; nsys: --trace=cuda` against `ProfilerActivity.CUDA; nsys
-- --trace=cuda` for the same fact) and the report's JSON carries the text, so each wording in use is
-- its own macro here (the report's output stays byte-identical); the next change of wording is one
-- edit in this file. NOTE macros: whole notes said the same way in more than one analysis.
-- Public: notes_fix_runtime(), notes_fix_runtime_short(), notes_fix_cuda(), notes_fix_cuda_activity(),
-- notes_fix_cuda_torch(), notes_fix_cuda_kineto(), notes_no_runtime_rows(), notes_no_sync_captured(),
-- notes_no_gpu_launched_in(place), notes_no_gpu_activity(acts).

-- runtime (CUDA/HIP API) rows: Kineto records them with ProfilerActivity.CPU, nsys with --trace=cuda
CREATE OR REPLACE TEMP MACRO notes_fix_runtime() AS 'Kineto: include ProfilerActivity.CPU; nsys: --trace=cuda';
CREATE OR REPLACE TEMP MACRO notes_fix_runtime_short() AS 'Kineto ProfilerActivity.CPU, nsys --trace=cuda';
-- GPU ops and sync records: Kineto's CUDA activity, nsys --trace=cuda
CREATE OR REPLACE TEMP MACRO notes_fix_cuda() AS 'Kineto: activities=[CPU, CUDA]; nsys: --trace=cuda';
CREATE OR REPLACE TEMP MACRO notes_fix_cuda_activity() AS 'ProfilerActivity.CUDA; nsys --trace=cuda';
CREATE OR REPLACE TEMP MACRO notes_fix_cuda_torch() AS 'torch.profiler activities=[CPU, CUDA]; nsys --trace=cuda';
CREATE OR REPLACE TEMP MACRO notes_fix_cuda_kineto() AS 'Kineto activities=[CPU, CUDA], nsys --trace=cuda';

-- no runtime rows (headline's launch/host numbers, lib/run_metrics' step.launches)
CREATE OR REPLACE TEMP MACRO notes_no_runtime_rows() AS 'no CUDA/HIP runtime rows: ' || notes_fix_runtime();
-- no sync call (headline's sync numbers and its verdict)
CREATE OR REPLACE TEMP MACRO notes_no_sync_captured() AS
    'no sync API call captured (' || notes_fix_cuda() || '): unknown, not zero';
-- no GPU op in the steps (headline's GPU numbers and its verdict); place: 'these steps', or 'the trace' for a whole
-- trace's step
CREATE OR REPLACE TEMP MACRO notes_no_gpu_launched_in(place) AS
    'no GPU op launched in ' || place || ' (was CUDA activity captured? ' || notes_fix_cuda() || ')';
-- The sentence for a trace with no GPU activity at all, the one place it is worded (trust, headline).
CREATE OR REPLACE TEMP MACRO notes_no_gpu_activity(acts) AS
    'no GPU activity in this run (no GPU op, no CUDA/HIP runtime call, no sync record): '
    || CASE WHEN contains(acts, 'CUDA')
            THEN 'the program ran nothing on a GPU (tracekit capture recorded CUDA activity)'
            WHEN acts IS NOT NULL THEN 'a CPU-only run (tracekit capture: this torch has no CUDA support)'
            ELSE 'a CPU-only run, or CUDA activity was not captured (' || notes_fix_cuda_kineto() || ')' END;
