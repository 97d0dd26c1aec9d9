"""``tracekit convert X.sqlite -o out.parquet`` as a whole process against the ADBC floor as a whole process (issue 25 item 4).

Why whole processes: a user runs the command, and waits for the interpreter's start, the imports (click, rich,
numpy, pyarrow, its compute kernels, the ADBC driver, whatever those import), the CLI's own work and the close as
much as for the conversion. ``bench_nsys.py --floor`` times both sides after their imports; this times them the
way the user meets them, and also in-process (after imports) in the same rounds, so the two can be told apart.

The floor process imports only what reading the tables needs (pyarrow and the ADBC driver manager with the
SQLite driver: not the DB-API module, which imports pandas through ``pyarrow.dataset``) and reads every event
table and StringIds with ``SELECT *`` into Arrow, one table after another, on one thread. Each round runs the
floor and then ``python -m tracekit convert`` with each checkout in ``--code`` (``PYTHONPATH`` = the checkout;
progress bar on, as a user sees it, on a pipe), each under ``/usr/bin/time`` (wall, user + system CPU, peak RSS),
then the in-process runs (``bench_nsys.CONVERT``). The load average (``/proc/loadavg``) is printed with each round:
the machine is shared, so CPU seconds are reported beside wall seconds, and ratios per round.

At the end each checkout's CLI output is compared with the first one's: ``Table.equals`` with metadata and the
same row groups.

Usage: python bench/bench_nsys_process.py [--factor 30] [--repeat 5] [--code OLD] [--code NEW] [FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_nsys import CONVERT, EVENT_TABLES, enlarge, largest  # noqa: E402

FLOOR = """
import sys, time
t0 = time.perf_counter()
import adbc_driver_manager, adbc_driver_sqlite
from adbc_driver_manager import _reader
t = time.perf_counter()
n = 0
db = adbc_driver_sqlite.connect(sys.argv[1])
conn = adbc_driver_manager.AdbcConnection(db)
def query(sql):
    st = adbc_driver_manager.AdbcStatement(conn)
    st.set_options(**{"adbc.sqlite.query.batch_rows": "100000"})
    st.set_sql_query(sql)
    h, _ = st.execute_query()
    tab = _reader.AdbcRecordBatchReader._import_from_c(h.address).read_all()
    st.close()
    return tab
present = set(query("SELECT name FROM sqlite_master WHERE type = 'table'").column(0).to_pylist())
for table in sys.argv[2].split(","):
    if table in present:
        n += query(f'SELECT * FROM "{table}"').num_rows
conn.close(); db.close()
print(time.perf_counter() - t, n)
"""
TIME_FMT = "%e %U %S %M"


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def timed(cmd: list[str], env: dict[str, str]) -> tuple[list[str], float, float, int]:
    """(the command's stdout words, wall s, CPU s (user + system), peak RSS MB) of one run under /usr/bin/time."""
    # cwd: not a checkout (``python -m`` puts the working directory first on sys.path, before PYTHONPATH)
    p = subprocess.run(["/usr/bin/time", "-f", TIME_FMT, *cmd], capture_output=True, text=True, env=env,
                       cwd=tempfile.gettempdir())
    if p.returncode:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr}")
    wall, user, sys_, rss = p.stderr.strip().splitlines()[-1].split()
    return p.stdout.split(), float(wall), float(user) + float(sys_), int(rss) // 1024


#: Bytecode as an installed package has it: compiled once (the warm-up run) into a cache of our own, so the
#: checkouts stay clean and a ``PYTHONDONTWRITEBYTECODE=1`` environment does not compile every module at every
#: start (17 tracekit modules, 0.06-0.1 s a process).
PYCACHE: dict[str, str] = {}


def child_env(code: Path | None = None) -> dict[str, str]:
    env = dict(os.environ, **PYCACHE)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for k in ("ARROW_DEFAULT_MEMORY_POOL", "OPENBLAS_NUM_THREADS"):  # what the CLI sets itself, not inherited
        env.pop(k, None)
    if code is not None:
        env["PYTHONPATH"] = str(code.resolve())
    return env


def same(a: Path, b: Path) -> bool:
    import pyarrow.parquet as pq

    ta, tb = pq.read_table(a), pq.read_table(b)
    ga = [pq.ParquetFile(a).metadata.row_group(i).num_rows for i in range(pq.ParquetFile(a).num_row_groups)]
    gb = [pq.ParquetFile(b).metadata.row_group(i).num_rows for i in range(pq.ParquetFile(b).num_row_groups)]
    return ta.equals(tb, check_metadata=True) and ga == gb


def rounds(path: Path, repeat: int, code: list[Path], tmp: Path) -> None:
    """Alternate the floor process and each checkout's CLI and in-process conversion, ``repeat`` rounds."""
    tables = ",".join(EVENT_TABLES + ("StringIds",))
    proc: dict[Path, list[tuple[float, float]]] = {c: [] for c in code}  # (wall ratio, CPU ratio) per round
    inproc: dict[Path, list[float]] = {c: [] for c in code}
    timed([sys.executable, "-c", FLOOR, str(path), tables], child_env())  # warm-up, not counted: bytecode
    for c in code:  # compiled (site-packages too: the cache prefix holds all of it), the file in the page cache
        timed([sys.executable, "-m", "tracekit", "convert", str(path), "-o", str(tmp / "warm.parquet")], child_env(c))
        timed([sys.executable, "-c", CONVERT, str(path), str(tmp / "warm.parquet"), str(c.resolve())], child_env())
    for i in range(repeat):
        before = load()
        f, fw, fc, frss = timed([sys.executable, "-c", FLOOR, str(path), tables], child_env())
        fin = float(f[0])
        line = [f"round {i + 1} (load {before}): floor process {fw:.2f} s / {fc:.2f} CPU-s / {frss} MB "
                f"(read {fin:.3f} s, {int(f[1]):,} rows)"]
        for c in code:
            out = tmp / f"{c.resolve().name}.parquet"
            _, cw, cc, crss = timed([sys.executable, "-m", "tracekit", "convert", str(path), "-o", str(out)], child_env(c))
            proc[c].append((cw / fw, cc / fc))
            line.append(f"  {c.resolve().name}: CLI process {cw:.2f} s ({cw / fw:.2f}x) / {cc:.2f} CPU-s ({cc / fc:.2f}x) "
                        f"/ {crss} MB")
        for c in code:
            g, _, _, _ = timed([sys.executable, "-c", CONVERT, str(path), str(tmp / "inproc.parquet"), str(c.resolve())],
                            child_env())
            inproc[c].append(float(g[0]) / fin)
            line.append(f"  {c.resolve().name}: in-process {float(g[0]):.3f} s ({float(g[0]) / fin:.2f}x read)")
        print("\n".join(line) + f"\n  load after {load()}", flush=True)
    for c in code:
        w = [r[0] for r in proc[c]]
        u = [r[1] for r in proc[c]]
        print(f"{c}: CLI/floor process wall median {statistics.median(w):.2f}x (min {min(w):.2f}, max {max(w):.2f}); "
              f"CPU median {statistics.median(u):.2f}x (min {min(u):.2f}, max {max(u):.2f}); "
              f"in-process median {statistics.median(inproc[c]):.2f}x")
    first = tmp / f"{code[0].resolve().name}.parquet"
    for c in code[1:]:
        print(f"{c}: CLI output same as {code[0]}'s: {same(first, tmp / f'{c.resolve().name}.parquet')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", type=Path)
    ap.add_argument("--factor", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--code", type=Path, action="append", help="a checkout whose CLI to time (repeatable); default: this one")
    a = ap.parse_args()
    src = a.file or largest()
    with tempfile.TemporaryDirectory(prefix="tk-bench-") as t:
        tmp = Path(t)
        PYCACHE["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        big = tmp / f"{src.stem}.x{a.factor}.sqlite"
        enlarge(src, big, a.factor)
        print(f"{src.name} x{a.factor} (synthetic), {big.stat().st_size / 1e6:.1f} MB; {sys.executable}; {os.cpu_count()} CPUs")
        rounds(big, a.repeat, a.code or [ROOT], tmp)


if __name__ == "__main__":
    main()
