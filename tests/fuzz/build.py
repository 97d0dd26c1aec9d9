"""Build ``_kscan`` with AddressSanitizer + UndefinedBehaviorSanitizer and gcc edge coverage, outside the tree.

Why a separate build: the shipped extension is ``-O2`` without sanitizers; a memory error in the scanner
would then be silent or a random crash. The sanitized build makes the first out-of-bounds read or signed
overflow abort with a report, and the coverage hook (``cov.c``) lets the fuzz loop keep inputs that reach
new code. Loading an ASan-built extension into an uninstrumented CPython needs the ASan runtime preloaded:
:func:`env` gives the environment for that subprocess.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "tracekit" / "ingest" / "_kscan.c"
FLAGS = ["-O1", "-g", "-fPIC", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=all"]


def compiler() -> str | None:
    """gcc (or cc) that can build with the sanitizers; None when there is none."""
    return shutil.which("gcc") or shutil.which("cc")


def build(out_dir: Path, gcov: bool = False) -> Path:
    """The sanitized ``_kscan`` shared object in ``out_dir`` (its name is the importable extension name).

    ``gcov=True``: a ``--coverage`` build without sanitizers instead, to measure the line coverage of a corpus
    (run it, then ``gcov -o OUT_DIR tracekit/ingest/_kscan.c``).
    """
    cc = compiler()
    if cc is None:
        raise RuntimeError("no C compiler")
    out_dir.mkdir(parents=True, exist_ok=True)
    inc = sysconfig.get_paths()["include"]
    so = out_dir / ("_kscan" + sysconfig.get_config_var("EXT_SUFFIX"))
    objs = [out_dir / "_kscan.o", out_dir / "cov.o"]
    run = lambda *a: subprocess.run([cc, *a], check=True, capture_output=True, text=True)  # noqa: E731
    if gcov:
        run("-O0", "-fPIC", "--coverage", f"-I{inc}", "-c", str(SRC), "-o", str(objs[0]))
        run("-shared", "--coverage", str(objs[0]), "-o", str(so))
        return so
    run(*FLAGS, "-fsanitize-coverage=trace-pc", f"-I{inc}", "-c", str(SRC), "-o", str(objs[0]))
    run("-O2", "-fPIC", "-c", str(HERE / "cov.c"), "-o", str(objs[1]))
    run("-shared", *FLAGS, *map(str, objs), "-o", str(so))
    return so


def runtime(cc: str, name: str) -> str | None:
    """Path of a sanitizer runtime library (libasan.so), or None."""
    p = subprocess.run([cc, f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    return p if p and os.path.isabs(p) and os.path.exists(p) else None


def env(so: Path) -> dict[str, str]:
    """Environment for a Python subprocess that loads the sanitized build."""
    cc = compiler()
    asan = runtime(cc, "libasan.so") if cc else None
    if asan is None:
        raise RuntimeError("libasan.so not found")
    e = dict(os.environ)
    # libstdc++ too: ASan's __cxa_throw interceptor needs the real one resolvable before DuckDB (C++) loads,
    # else its first exception aborts with "CHECK failed: real___cxa_throw"
    cxx = (runtime(cc, "libstdc++.so") or runtime(cc, "libstdc++.so.6")) if cc else None
    if cxx is None:
        raise RuntimeError("libstdc++ not found (ASan would abort at DuckDB's first C++ exception)")
    e["LD_PRELOAD"] = " ".join(x for x in (asan, cxx) if x)
    # leaks: CPython and the libraries it loads keep allocations to exit; alloc/dealloc mismatch: the
    # uninstrumented C++ libraries (DuckDB, Arrow) trip it without a bug of ours
    e["ASAN_OPTIONS"] = "detect_leaks=0:alloc_dealloc_mismatch=0:abort_on_error=1:symbolize=1"
    e["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    e["TRACEKIT_KSCAN_SO"] = str(so)
    return e


if __name__ == "__main__":
    print(build(Path(sys.argv[1]), gcov="--gcov" in sys.argv[2:]))
