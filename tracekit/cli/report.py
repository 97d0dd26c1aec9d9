"""``tracekit report TRACE...``: every analysis of ``queries/`` as tables, JSON or HTML."""

from __future__ import annotations

import click

from tracekit import report as rep
from tracekit.atomic import refuse_input
from tracekit.cli._output import emit
from tracekit.cli._params import regex
from tracekit.errors import TraceError


@click.command("report")
@click.argument("traces", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print JSON: one key per analysis, plus summary and warnings.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False), help="Also write a self-contained HTML report here.")
@click.option("--step-pattern", callback=regex, help=f"Regex (full match) for step range names. Default: {rep.DEFAULTS['step_pattern']}")
@click.option("--vocab", type=int, help="Vocabulary size for lm_head method 2 (default: inferred from GEMM shapes).")
@click.option("--lm-head-regex", callback=regex, help=f"Regex (full match) for lm_head range names. Default: {rep.DEFAULTS['lm_head_regex']}")
@click.option("--lm-head-kernel-regex", callback=regex, help="Regex on kernel names for lm_head method 3.")
@click.option("--top", "top_n", type=int, help=f"Rows of the kernels table per trace (default {rep.DEFAULTS['top_n']}).")
@click.option("--gpu", help="flops: GPU name to look up in the peak table instead of the trace's (e.g. 'H100 SXM', 'MI300X').")
@click.option("--peak-tflops", type=float, help="flops: peak dense TFLOP/s to compare with, for every dtype (overrides the table).")
@click.option("--peak-tb-s", type=float, help="flops: peak memory bandwidth in TB/s (overrides the table).")
@click.option("--tokens-per-step", type=float, help="flops: tokens one step processes (e.g. the decode batch size), for GFLOPs per token.")
@click.option("--tf32", is_flag=True, default=None, help="flops: fp32 matmuls ran on TF32 tensor cores (use the tf32 peak).")
@click.option("--limit", default=25, show_default=True, help="Rows printed per table in terminal output.")
@click.option("--out", "out_dir", help="Write every output as a table instead: OUT/<output>/<trace file>.parquet, one task per trace.")
@click.option("--executor", type=click.Choice(["local", "ray", "spark"]), default="local", show_default=True,
              help="With --out: where the per-trace tasks run.")
@click.option("-j", "--jobs", default=1, show_default=True, help="With --out and --executor local: processes.")
@click.option("--ray-address", help="With --executor ray: the cluster (default: $RAY_ADDRESS, else a local one).")
@click.option("--spark-master", help="With --executor spark: the master (default: the active session, else local[2]).")
def command(traces: tuple[str, ...], as_json: bool, html_out: str | None, step_pattern: str | None,
            vocab: int | None, lm_head_regex: str | None, lm_head_kernel_regex: str | None,
            top_n: int | None, limit: int, gpu: str | None = None, peak_tflops: float | None = None,
            peak_tb_s: float | None = None, tf32: bool | None = None, tokens_per_step: float | None = None,
            out_dir: str | None = None, executor: str = "local", jobs: int = 1, ray_address: str | None = None,
            spark_master: str | None = None) -> None:
    """Phase time, steps, launch and queueing, syncs, GPU idle causes, lm_head share, top kernels and trust flags.

    TRACE: converted Parquet files or folders (raw Kineto/nsys traces are converted and cached).
    """
    for flag, v in (("--peak-tflops", peak_tflops), ("--peak-tb-s", peak_tb_s), ("--tokens-per-step", tokens_per_step)):
        if v is not None and not v > 0:
            raise TraceError(flag, f"must be a positive number, got {v}")
    refuse_input(html_out, traces)
    params = dict(step_pattern=step_pattern, vocab=vocab, lm_head_regex=lm_head_regex,
                  lm_head_kernel_regex=lm_head_kernel_regex, top_n=top_n, gpu=gpu, peak_tflops=peak_tflops,
                  peak_tb_s=peak_tb_s, tf32=tf32, tokens_per_step=tokens_per_step)
    if out_dir:
        from tracekit.cli._tables import write_tables

        write_tables(list(traces), out_dir, executor, jobs, ray_address, spark_master,
                     {k: v for k, v in params.items() if v is not None})
        return
    if executor != "local" or jobs != 1:
        raise click.UsageError("--executor and --jobs need --out (the per-trace tables are written there)")
    results = rep.run(list(traces), step_pattern=step_pattern, vocab=vocab, lm_head_regex=lm_head_regex,
                      lm_head_kernel_regex=lm_head_kernel_regex, top_n=top_n,
                      gpu=gpu, peak_tflops=peak_tflops, peak_tb_s=peak_tb_s, tf32=tf32,
                      tokens_per_step=tokens_per_step)
    emit(results, as_json=as_json, html_out=html_out, title="tracekit report: " + ", ".join(traces),
         to_json=rep.to_json, to_html=rep.to_html, show=lambda r: rep.print_report(r, limit=limit))
