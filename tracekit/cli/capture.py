"""``tracekit capture [options] -- cmd args...``: profile a command and all its Python children."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tracekit.capture import CaptureOptions, capture, capture_sglang_url, summary


@click.command("capture", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option(
    "-o",
    "--out",
    type=click.Path(),
    help="Capture folder, new or empty (default: a new tracekit-runs/<UTC timestamp>/).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace a previous capture in --out (its raw/, parquet/, capture.json) instead of refusing.",
)
@click.option(
    "--backend",
    type=click.Choice(["torch", "nsys"]),
    default="torch",
    show_default=True,
    help="torch: torch.profiler in every Python process; nsys: Nsight Systems around the command.",
)
@click.option("--delay", type=float, help="Open the window S seconds after the capture starts.")
@click.option("--duration", type=float, help="Close the window S seconds after it opens.")
@click.option(
    "--steps",
    type=int,
    help="Close each process's window after N steps: tracekit.phase('step') ranges or the program's torch.profiler step() calls.",
)
@click.option(
    "--wait-signal", is_flag=True, help="Start idle; send SIGUSR2 to tracekit (or a process) to open/close the window."
)
@click.option("--with-stack", is_flag=True, help="Record Python stacks (large traces).")
@click.option("--with-flops", is_flag=True, help="Estimate FLOPs of matmuls/convolutions.")
@click.option(
    "--sglang/--no-sglang",
    default=True,
    show_default=True,
    help="Ranges around SGLang's sampler, lm_head, EAGLE draft/verify/extend and graph replays (plugin on sglang >= 0.5.12, import-time patch before).",
)
@click.option(
    "--sglang-url",
    metavar="URL",
    help="Profile an already running SGLang server via /start_profile (with --steps or --duration); no CMD.",
)
@click.option(
    "--sglang-timeout",
    type=click.FloatRange(min=1, max=86400),
    default=600.0,
    show_default=True,
    help="With --sglang-url: seconds each request to the server, and the wait for its traces, may take.",
)
@click.option(
    "--grace",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds to wait for profiled processes that outlive the command.",
)
@click.argument("cmd", nargs=-1, type=click.UNPROCESSED)
def command(
    out: str | None,
    force: bool,
    backend: str,
    delay: float | None,
    duration: float | None,
    steps: int | None,
    wait_signal: bool,
    with_stack: bool,
    with_flops: bool,
    sglang: bool,
    sglang_url: str | None,
    grace: float,
    cmd: tuple[str, ...],
    sglang_timeout: float = 600.0,
) -> None:
    """Run CMD with a profiler in each of its Python processes, then convert all traces to one Parquet dataset.

    The exit code is CMD's (127 when it does not exist). Raw traces go to
    OUT/raw/<pid>.json, Parquet to OUT/parquet/<pid>-<name>.parquet. Secret-looking
    arguments (--api-key V, --hf_token=V, HF_TOKEN=V, https://user:pass@host) are
    redacted in capture.json, OUT/raw/<pid>.proc.json and the summary.
    """
    opts = CaptureOptions(
        out=Path(out) if out else None,
        backend=backend,
        delay=delay,
        duration=duration,
        steps=steps,
        with_stack=with_stack,
        with_flops=with_flops,
        wait_signal=wait_signal,
        grace=grace,
        sglang=sglang,
        force=force,
    )
    if sglang_url:
        if cmd:
            raise click.UsageError("--sglang-url profiles a running server: give no command")
        res = capture_sglang_url(sglang_url, opts, timeout=sglang_timeout)
    elif not cmd:
        raise click.UsageError("missing command: tracekit capture [options] -- cmd args...")
    else:
        res = capture(list(cmd), opts)
    if res.message and not res.processes:
        click.echo(f"tracekit: error: {res.message}", err=True)
        sys.exit(res.returncode)
    for line in summary(res):
        click.echo(line, err=line.startswith("tracekit: error"))
    rc = res.returncode
    if rc == 0 and res.conversion_failed:
        rc = 1
    sys.exit(rc)
