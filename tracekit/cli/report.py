"""``tracekit report TRACE...``: the per-step headline (terminal), every analysis as JSON, or an HTML page."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
import duckdb

from tracekit import report as rep
from tracekit.cli._inputs import refuse_input
from tracekit.cli._output import emit
from tracekit.cli._params import query_options
from tracekit.errors import TraceError
from tracekit.rows import Rows
from tracekit.view.records import to_json


@click.command("report")
@click.argument("traces", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print JSON: one key per analysis, plus summary and warnings.")
@click.option("--html", "html_out", type=click.Path(), help="Also write a self-contained HTML report here.")
@query_options(
    "step_pattern",
    "vocab",
    "lm_head_regex",
    "lm_head_kernel_regex",
    "top_n",
    "gpu",
    "peak_tflops",
    "peak_tb_s",
    "tokens_per_step",
    "tf32",
    "rank_align",
)
@click.option("--limit", default=25, show_default=True, help="Rows printed per table in terminal output.")
@click.option(
    "--width",
    type=click.IntRange(min=20, max=4096),  # tracekit.view.terminal.MAX_WIDTH
    help="Terminal width in columns (default: the terminal's; 80 when piped).",
)
@click.option("--full", is_flag=True, help="Print every table of every analysis, not just the per-step headline.")
@click.option(
    "--section",
    "sections",
    multiple=True,
    metavar="NAME",
    help="Print these tables only: an output (steps.stats) or a file's outputs (gpu_idle). Repeatable.",
)
@click.option(
    "--out",
    "out_dir",
    help="Write every output as a table instead: OUT/<output>/<trace file>.parquet, one task per trace.",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray", "spark"]),
    default="local",
    show_default=True,
    help="With --out: where the per-trace tasks run.",
)
@click.option("-j", "--jobs", default=1, show_default=True, help="With --out and --executor local: processes.")
@click.option("--ray-address", help="With --executor ray: the cluster (default: $RAY_ADDRESS, else a local one).")
@click.option("--spark-master", help="With --executor spark: the master (default: the active session, else local[2]).")
def command(
    traces: tuple[str, ...],
    as_json: bool,
    html_out: str | None,
    step_pattern: str | None,
    vocab: int | None,
    lm_head_regex: str | None,
    lm_head_kernel_regex: str | None,
    top_n: int | None,
    limit: int,
    gpu: str | None = None,
    peak_tflops: float | None = None,
    peak_tb_s: float | None = None,
    tf32: bool | None = None,
    tokens_per_step: float | None = None,
    width: int | None = None,
    full: bool = False,
    sections: tuple[str, ...] = (),
    out_dir: str | None = None,
    executor: str = "local",
    jobs: int = 1,
    ray_address: str | None = None,
    spark_master: str | None = None,
    rank_align: str | None = None,
) -> None:
    """Where one step's time goes: per step kind the verdicts, the per-step table and the phase tree.

    Every other analysis (kernels, launch, syncs, GPU idle causes, lm_head, flops, trust) with
    --section NAME or --full; --json has every row; --html writes a page with plots and a timeline
    of the median step, plus that step exported for Perfetto (FILE.median_step*.json.gz);
    --out DIR writes every output as Parquet tables instead, one task per trace on --executor.

    TRACE: converted Parquet files or folders (raw Kineto/nsys traces are converted and cached).
    """
    for flag, v in (("--peak-tflops", peak_tflops), ("--peak-tb-s", peak_tb_s), ("--tokens-per-step", tokens_per_step)):
        if v is not None and not v > 0:
            raise TraceError(flag, f"must be a positive number, got {v}")
    refuse_input(html_out, traces)
    params: dict[str, Any] = dict(
        step_pattern=step_pattern,
        vocab=vocab,
        lm_head_regex=lm_head_regex,
        lm_head_kernel_regex=lm_head_kernel_regex,
        top_n=top_n,
        gpu=gpu,
        peak_tflops=peak_tflops,
        peak_tb_s=peak_tb_s,
        tf32=tf32,
        tokens_per_step=tokens_per_step,
        rank_align=rank_align,
    )
    if out_dir:
        from tracekit.cli._tables import write_tables  # deferred: pyarrow (tracekit.executors), only with --out

        write_tables(
            list(traces),
            out_dir,
            executor,
            jobs,
            ray_address,
            spark_master,
            {k: v for k, v in params.items() if v is not None},
        )
        return
    if executor != "local" or jobs != 1:
        raise click.UsageError("--executor and --jobs need --out (the per-trace tables are written there)")
    # the terminal, JSON and the HTML page read plain rows (no pandas import, issue 14; nor for the page's SVG
    # figures, issue 25); the page also needs the timeline's rows and its median steps exported, made side by side
    # with the analyses on the report's connection (in memory: one DuckDB thread on a small input, as the terminal's)
    median = _MedianSteps(list(traces), html_out, step_pattern) if html_out else None
    drawn = _Drawing()
    try:
        results = rep.run(
            list(traces),
            con=duckdb.connect() if median else None,
            rows=True,
            small_one_thread=True,
            workers=rep.auto_workers(),
            also=("timeline",) if median else (),
            after=(rep.After(("timeline",), median), rep.After(_Drawing.REQUIRES, drawn)) if median else (),
            **params,
        )
        page = dict(results)
        results.pop("timeline", None)  # the page's, not an analysis: not in --json nor the terminal
        if sections:  # an unknown name is a usage error (a median-step file made by then is removed below)
            from tracekit.view.sections import select  # deferred: ~0.01 s, only with --section

            try:
                select(results, sections)
            except ValueError as e:
                raise click.BadParameter(str(e), param_hint="--section") from None
        emit(
            results,
            as_json=as_json,
            html_out=html_out,
            title="tracekit report: " + ", ".join(traces),
            to_json=to_json,
            to_html=_page if median is None else _page_with(page, median, drawn),
            show=lambda r: _show(r, limit=limit, width=width, sections=tuple(sections), full=full),
            html_written=median.keep if median else None,
        )
    except BaseException:
        # the page was not written (a full disk, Ctrl-C): the median-step files made for it go too (issue 23); once
        # it is, they stay with it (a closed pipe or Ctrl-C while the terminal report prints left a dangling link)
        for f in median.written if median and not median.kept else ():
            Path(f).unlink(missing_ok=True)
        raise
    if median and median.written and not as_json:
        click.echo(f"wrote {', '.join(median.written)} (the median step: open in ui.perfetto.dev)")


class _MedianSteps:
    """The page's median-step exports: each trace's median step (its first ``timeline`` row) written with
    export-chrome next to the page, linked from it; run by ``report.run`` on a worker's cursor once the
    timeline is built (:class:`tracekit.report.After`), beside the analyses still running.

    ``written``: each file as it is written (removed again if the page is not). Every name is checked against
    the inputs before the first is written (`report r.median_step.json.gz --html r.html` replaced its input
    with its own slice, issue 23)."""

    def __init__(self, traces: list[str], html_out: str, step_pattern: str | None) -> None:
        self.traces, self.out, self.step_pattern = traces, Path(html_out), step_pattern
        self.written: list[str] = []
        self.kept = False  # the page linking them is written: they stay
        self.chrome: dict[str, str] = {}
        self.notes: list[str] = []

    def __call__(self, cur: duckdb.DuckDBPyConnection, outputs: Mapping[str, Rows]) -> None:
        from tracekit.export_chrome import Steps, export_chrome  # deferred: ~0.01 s (msgspec), only with --html

        tl = outputs.get("timeline")
        if tl is None or not len(tl):
            return
        first: dict[Any, Any] = {}  # trace -> its median step (the first timeline row of each trace)
        for t, s in zip(tl.col("trace"), tl.col("step_index")):
            first.setdefault(t, s)
        meds = list(first.items())
        out = self.out
        dests = [
            out.with_name(f"{out.stem}.median_step{'' if len(meds) == 1 else f'.{i + 1}'}.json.gz")
            for i in range(len(meds))
        ]
        for dest in dests:
            refuse_input(dest, self.traces)
        for (trace, step), dest in zip(meds, dests):
            try:
                export_chrome(
                    self.traces,
                    dest,
                    trace=str(trace),
                    steps=Steps(int(step), int(step)),
                    step_pattern=self.step_pattern,
                    con=cur,  # the report's lib/ tables, not a second build
                    arrow=False,
                    gzip_level=1,  # 0.06 -> 0.02 s on a 39k-event step (8.0 MB of JSON: 521 -> 694 kB)
                )  # one step: DuckDB's tuples, no pyarrow import (~0.15 s)
                self.chrome[str(trace)] = dest.name
                self.written.append(str(dest))
            except TraceError as e:
                self.notes.append(f"median step of {trace} not exported: {e}")

    def keep(self) -> None:
        """The page is written: its median-step files stay, whatever fails after it."""
        self.kept = True

    def page_args(self) -> dict[str, Any]:
        """What the page shows of the exports: the file per trace, and why one is missing."""
        return {"chrome": self.chrome, "chrome_notes": self.notes}


class _Drawing:
    """The page's colours and timeline figures (:class:`tracekit.view.timeline.Drawn`), drawn on a worker once
    ``headline`` and ``timeline`` are built (:class:`tracekit.report.After`), beside the analyses still running:
    Python work that would otherwise wait for the last analysis."""

    #: what :class:`~tracekit.view.timeline.Drawn` reads: ``headline.phase_tree`` and the timeline's rows
    REQUIRES = ("headline", "timeline")

    def __init__(self) -> None:
        self.drawn: Any = None

    def __call__(self, cur: duckdb.DuckDBPyConnection, outputs: Mapping[str, Rows]) -> None:
        import tracekit.view.html  # noqa: F401  (the page's modules, loaded here rather than after the analyses)
        from tracekit.view.timeline import Drawn  # deferred: only with --html

        self.drawn = Drawn.of(outputs)


def _page_with(page: Mapping[str, Rows], median: _MedianSteps, drawing: _Drawing) -> Any:
    """The page writer of ``report --html``: the report's rows, the timeline and the median-step exports."""
    return lambda r, title: _page(page, title=title, view=page, drawn=drawing.drawn, **median.page_args())


def _show(results: Mapping[str, Any], **kw: Any) -> None:
    """The terminal report (:func:`tracekit.view.terminal.print_report`)."""
    from tracekit.view.terminal import print_report  # deferred: --json does without it (~0.02 s)

    print_report(results, **kw)


def _page(results: Mapping[str, Any], title: str, **kw: Any) -> str:
    """The HTML page (:func:`tracekit.view.html.render`)."""
    from tracekit.view.html import render  # deferred: the page's figure modules load only for --html (~0.04 s)

    return render(results, title=title, **kw)
