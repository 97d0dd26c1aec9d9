"""A non-editable install works: the wheel ships ``queries/`` and ``capture/``.

What ``pip install tracekit`` / ``pip install .`` does is build a wheel and
install it, so this builds the wheel from a copy of the sources, installs it
into a fresh venv (``--no-deps --no-index``: nothing is downloaded), and runs
``report``, ``sql``, ``capture`` of a small annotated
program and ``graphmap`` from a folder outside the repository.

The dependencies (duckdb, pyarrow, torch...) come from this test's own
environment through a ``.pth`` file listing its site-packages: ``.pth`` lines
only extend ``sys.path``, the ``.pth`` files inside that folder are not run,
so an editable tracekit there (its import finder) stays out; the test checks
that ``tracekit`` is imported from the new venv.

Expected values: the sample trace ``samples/traces/spec_decode_k4`` holds 4
steps and 25 ``lm_head`` ranges (4 x (4 + 1) in steps + 5 warm-up, see
samples/traces/README.md); the capture program below runs 3 steps of one
``draft`` each; the graphmap pair is the hand-worked one of tests/test_graphmap.py
(8 of 11 replayed ops matched).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.test_graphmap import FORWARD, eager_step, replay_events, write

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "traces" / "spec_decode_k4" / "parquet"
#: What the wheel is built from: everything else in the repository is not shipped.
SOURCES = ("pyproject.toml", "setup.py", "README.md", "tracekit", "queries", "capture")

PROG = """
import sys, torch
from tracekit import phase
for _ in range(3):
    with phase("step"):
        with phase("draft"):
            torch.ones(8) @ torch.ones(8)
print("tracekit from", __import__("tracekit").__file__)
"""


def _digest(paths: list[Path]) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in paths}


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with tracekit installed from a wheel built here; returns the venv folder."""
    pytest.importorskip("setuptools", reason="building the wheel offline (--no-build-isolation) needs setuptools in this venv")
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler: the wheel builds tracekit/ingest/_kscan.c")
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    for name in SOURCES:
        p = REPO / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyc"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(p, src / name)
    dist = base / "dist"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "--no-index",
                        "-q", "-w", str(dist)], capture_output=True, text=True, cwd=base)
    assert r.returncode == 0, r.stderr[-3000:]
    (whl,) = dist.glob("tracekit-*.whl")
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(whl)],
                       capture_output=True, text=True, cwd=base)
    assert r.returncode == 0, r.stderr[-3000:]
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz_test_deps.pth").write_text("\n".join(sorted(ours)) + "\n")
    return env_dir


def _run(env_dir: Path, cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TRACEKIT_CAPTURE")}
    return subprocess.run([str(env_dir / "bin" / "tracekit"), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def test_wheel_ships_queries_and_capture_and_every_verb_runs(wheel_venv: Path, tmp_path: Path) -> None:
    py = wheel_venv / "bin" / "python"
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run([str(py), "-c", "import tracekit, tracekit.resources as r; print(tracekit.__file__); "
                            "print(r.queries_dir()); print(r.capture_dir())"], capture_output=True, text=True, cwd=work)
    assert where.returncode == 0, where.stderr
    pkg, qdir, cdir = (Path(x) for x in where.stdout.split())
    root = wheel_venv.resolve()
    assert pkg.resolve().is_relative_to(root), f"tracekit imported from {pkg}, not from the wheel"
    assert qdir == pkg.parent / "_queries" and cdir == pkg.parent / "_capture"
    assert sorted(p.relative_to(qdir).as_posix() for p in qdir.rglob("*.sql")) == sorted(
        p.relative_to(REPO / "queries").as_posix() for p in (REPO / "queries").rglob("*.sql"))  # lib/ ships too
    assert {p.name for p in cdir.iterdir() if p.suffix == ".py"} == {p.name for p in (REPO / "capture").glob("*.py")}
    assert (cdir / "tracekit_sglang-0.1.dist-info" / "entry_points.txt").is_file()
    ext = subprocess.run([str(py), "-c", "import tracekit.ingest._kscan, tracekit._chrome"], capture_output=True, text=True,
                         cwd=work)
    assert ext.returncode == 0, ext.stderr  # both C extensions are built into the wheel (setup.py)

    # report (every analysis: reads lib/*.sql and each queries/*.sql from the install)
    sample_files = sorted(SAMPLE.glob("*.parquet"))
    before = _digest(sample_files)
    r = _run(wheel_venv, work, "report", str(SAMPLE), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["summary"]["summary"][0]["steps"] == 4
    top_lm_head = [x for x in doc["phase_time"]["phase_time"] if x["phase_path"] == "lm_head"]
    assert [x["range_instances"] for x in top_lm_head] == [5]
    # the terminal and HTML report (tracekit.view and queries/timeline.sql ship too)
    r = _run(wheel_venv, work, "report", str(SAMPLE), "--html", str(work / "r.html"))
    assert r.returncode == 0, r.stderr
    assert (work / "r.html").is_file() and (work / "r.median_step.json.gz").is_file()

    # sql
    r = _run(wheel_venv, work, "sql", str(SAMPLE), "--format", "csv",  # SQL as the last argument (README's form)
             "SELECT phase, count(*) AS n FROM ranges WHERE phase IN ('lm_head', 'step') GROUP BY 1 ORDER BY 1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["phase,n", "lm_head,25", "step,4"]
    assert _digest(sample_files) == before and sorted(SAMPLE.iterdir()) == sample_files  # inputs untouched, no cache files

    # capture: the bootstrap from tracekit/_capture, a program importing tracekit from the wheel
    pytest.importorskip("torch")
    prog = work / "prog.py"
    prog.write_text(PROG)
    out = work / "run"
    r = _run(wheel_venv, work, "capture", "--out", str(out), "--", str(py), str(prog), "--api_key", "S3CRET")
    assert r.returncode == 0, r.stderr
    assert f"tracekit from {pkg}" in r.stdout
    assert "S3CRET" not in r.stdout + r.stderr
    (proc,) = (out / "raw").glob("*.proc.json")
    assert json.loads(proc.read_text())["argv"] == [str(prog), "--api_key", "<redacted>"]
    r = _run(wheel_venv, work, "sql", str(out / "parquet"), "--format", "csv",
             "SELECT phase_path, count(*) AS n FROM ranges GROUP BY 1 ORDER BY 1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["phase_path,n", "step,3", "step/draft,3"]

    # graphmap (queries/graph_map.sql from the install)
    ref = write(work / "ref.json", eager_step("ProfilerStep#1", 1000, FORWARD, 1))
    rep = write(work / "replay.json", replay_events())
    r = _run(wheel_venv, work, "graphmap", str(rep), "--reference", str(ref), "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)["summary"][0]
    assert (s["graph_launches"], s["replayed"], s["matched"], s["unmatched"]) == (3, 11, 8, 3)


def test_editable_layout_resolves_repository_folders() -> None:
    """In the checkout (editable install, or tests run from the source tree) the root folders are used."""
    from tracekit import resources

    assert resources.queries_dir() == REPO / "queries"
    assert resources.capture_dir() == REPO / "capture"
