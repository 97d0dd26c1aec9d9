"""One wording for the user's errors, whether the CLI or a per-trace task reports them (tracekit.errors)."""

from __future__ import annotations

import re

import duckdb
import pytest

from tracekit.cli import one_line
from tracekit.errors import TraceError, user_message
from tracekit.executors import task_error


def _raised(e: BaseException) -> BaseException:
    try:
        raise e
    except BaseException as caught:  # noqa: BLE001
        return caught


def test_user_errors_read_the_same_in_the_cli_and_in_a_task() -> None:
    missing = FileNotFoundError(2, "No such file or directory", "runs/a.json")
    assert user_message(missing) == "runs/a.json: No such file or directory"
    assert one_line(missing) == "runs/a.json: No such file or directory"
    # the task names its trace only when the message does not already
    assert task_error(missing, "runs/a.json") == "runs/a.json: No such file or directory"
    assert task_error(missing, "b.json") == "b.json: runs/a.json: No such file or directory"
    assert task_error(TraceError("a.json", "not a trace"), "a.json") == "a.json: not a trace"
    bad_re = _raised(re.error("unterminated character set", "[a", 0))
    assert task_error(bad_re, "t.parquet") == "t.parquet: invalid regular expression '[a': unterminated character set"


def test_duckdb_error_keeps_its_first_two_lines_on_one_line() -> None:
    with pytest.raises(duckdb.Error) as info:
        duckdb.sql("select nope from (select 1 as yes)")
    lines = [ln.strip() for ln in str(info.value).splitlines() if ln.strip()]
    assert len(lines) >= 2  # DuckDB's message and its candidate/caret lines
    assert user_message(info.value) == f"{lines[0]} / {lines[1]}"
    assert task_error(info.value, "t.parquet") == f"t.parquet: {lines[0]} / {lines[1]}"


def test_a_bug_is_named_with_its_type_and_place_not_dressed_as_a_user_error() -> None:
    bug = _raised(ValueError("boom\nsecond line"))
    assert user_message(bug) is None and one_line(bug) is None
    text = task_error(bug, "t.parquet")
    assert re.fullmatch(r"t\.parquet: ValueError: boom second line \(test_errors\.py:\d+\)", text), text


def test_cli_escapes_what_the_library_keeps_raw() -> None:
    e = FileNotFoundError(2, "No such file or directory", "x\x1b[2J.json")
    assert user_message(e) == "x\x1b[2J.json: No such file or directory"
    assert one_line(e) == "x\\x1b[2J.json: No such file or directory"


def test_a_task_whose_process_died_is_named() -> None:
    from concurrent.futures.process import BrokenProcessPool

    from tracekit.executors import Outcome

    o = Outcome.lost({"key": "runs/a.json"}, "worker process died", BrokenProcessPool("gone"))
    assert (o.key, o.ok, o.value, o.error) == ("runs/a.json", False, {}, "runs/a.json: worker process died (BrokenProcessPool)")
    assert (o.wall_s, o.cpu_s, o.peak_rss_mib) == (0.0, 0.0, 0.0)
