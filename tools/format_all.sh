#!/usr/bin/env bash
# Run ONCE, by whoever merges the issue-26 branches, after the merge (running it earlier would make every
# parallel branch conflict): formats every Python file with ruff, then lists what is left to do by hand.
#   1. deletes the `# BEGIN pending-format` ... `# END pending-format` block of pyproject.toml (the files
#      not yet formatted), so that `ruff format --check` in .ci/run covers every file from then on;
#   2. `ruff check --fix` (imports the merge left unsorted), `ruff format`, then `ruff check` again;
#   3. prints the SQL lines over 120 columns (tools/lint_sql.py --no-baseline): reflow them by hand, then
#      `git rm tools/sql_long_lines.txt` so that the SQL linter allows none.
# BIN: where the tools are (default .venv/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
PY_DIRS=(tracekit capture tools)
sed -i '/^# BEGIN pending-format/,/^# END pending-format/d' pyproject.toml
"$BIN/ruff" check --fix -q "${PY_DIRS[@]}" || true
"$BIN/ruff" format "${PY_DIRS[@]}"
"$BIN/ruff" check "${PY_DIRS[@]}"
echo "long strings and comments ruff format could not wrap (optional reflow; E501 is off):"
"$BIN/ruff" check --extend-select E501 --statistics --exit-zero "${PY_DIRS[@]}" | grep E501 || echo "  none"
echo "SQL lines to reflow before deleting tools/sql_long_lines.txt:"
"$BIN/python" tools/lint_sql.py --no-baseline queries || true
