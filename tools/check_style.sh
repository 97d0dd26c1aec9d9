#!/usr/bin/env bash
# The style checks of .ci/run, before pytest: ruff (lint and format), mypy, and the SQL linter.
# Each prints its time: together they must stay well under a minute on a 2-core machine.
# BIN: where the tools are (default .venv/bin, what .ci/run installs from the `lint` extra).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
PY_DIRS=(tracekit capture tools)
step() {
    local name=$1 t0=$SECONDS
    shift
    "$@" || { echo "style: $name failed" >&2; return 1; }
    echo "style: $name ok ($((SECONDS - t0)) s)" >&2
}
step "ruff check" "$BIN/ruff" check -q "${PY_DIRS[@]}"
step "ruff format" "$BIN/ruff" format --check -q "${PY_DIRS[@]}"
step "mypy" "$BIN/mypy" --no-error-summary
step "sql lint" "$BIN/python" tools/lint_sql.py queries
