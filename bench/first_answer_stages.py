"""Where a cold ``tracekit report RAW --json`` spends its time, stage by stage, in one fresh process.

Why: issue 25's target for the small trace (3x HTA) is a budget for the whole process; this shows what each
stage takes before the first query (DuckDB's and tracekit's imports, the conversion with numpy's and pyarrow's),
then the analyses and the JSON. The raw trace is copied to a temp folder first, so no conversion cache answers.

    python bench/first_answer_stages.py TRACE.json.gz
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time

t0 = time.perf_counter()
import duckdb  # noqa: E402,F401  (timed: the import is a stage)

t1 = time.perf_counter()
from tracekit import report  # noqa: E402
from tracekit.store import ensure_parquet  # noqa: E402
from tracekit.view.records import to_json  # noqa: E402

t2 = time.perf_counter()


def main() -> None:
    src = sys.argv[1]
    with tempfile.TemporaryDirectory() as d:
        dst = os.path.join(d, os.path.basename(src))
        shutil.copy(src, dst)
        t3 = time.perf_counter()
        p = ensure_parquet(dst)
        t4 = time.perf_counter()
        res = report.run([str(p)], rows=True)
        t5 = time.perf_counter()
        to_json(res)
        t6 = time.perf_counter()
    print(f"duckdb import {t1 - t0:.3f} s, tracekit import {t2 - t1:.3f} s, conversion {t4 - t3:.3f} s "
          f"(numpy and pyarrow imports included), analyses {t5 - t4:.3f} s, JSON {t6 - t5:.3f} s")


if __name__ == "__main__":
    main()
