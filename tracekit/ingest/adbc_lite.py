"""The few pieces of the ADBC SQLite DB-API that the nsys reader uses, built on the driver manager's own objects.

Why not ``adbc_driver_sqlite.dbapi``: ``adbc_driver_manager.dbapi`` imports ``pyarrow.dataset`` at its top, which
imports pandas, a large share of a short ``tracekit convert`` process, for features
the reader never calls (binding parameters, DataFrames, ingest). What it does call is kept with the same
behaviour: :func:`connect` (autocommit on: the ADBC default, which the DB-API's ``autocommit=True`` keeps),
``conn.cursor()`` as a context manager, ``cur.adbc_statement.set_options``, ``cur.execute`` (prepare, then run:
every statement gives a result stream, PRAGMAs too) and ``cur.fetch_arrow_table``, whose driver errors are
:data:`Error` as the DB-API raises them (``_reader.AdbcRecordBatchReader`` translates them; a value whose type
changed after the driver chose its column's type is one), and a Ctrl-C cancels the running call
(``_blocking_call``).
"""

from __future__ import annotations

from typing import Any

import adbc_driver_manager
import adbc_driver_sqlite
from adbc_driver_manager import _lib, _reader

Error = _lib.Error


class Cursor:
    """One ADBC statement and its last result (closed with the cursor)."""

    def __init__(self, conn: adbc_driver_manager.AdbcConnection) -> None:
        self.adbc_statement = adbc_driver_manager.AdbcStatement(conn)
        self._reader: Any = None

    def execute(self, sql: str) -> None:
        """Run ``sql``; its rows wait for :meth:`fetch_arrow_table` (or are dropped with the cursor)."""
        stmt = self.adbc_statement
        self._drop_result()
        stmt.set_sql_query(sql)
        try:
            _lib._blocking_call(stmt.prepare, (), {}, stmt.cancel)
        except _lib.NotSupportedError:  # as the DB-API does: not every driver prepares
            pass
        handle, _ = _lib._blocking_call(stmt.execute_query, (), {}, stmt.cancel)
        self._reader = _reader.AdbcRecordBatchReader._import_from_c(handle.address)

    def fetch_arrow_table(self) -> Any:
        """Every row of the last result, as one ``pyarrow.Table``."""
        if self._reader is None:
            raise _lib.ProgrammingError(
                "fetch_arrow_table() before execute()", status_code=_lib.AdbcStatusCode.INVALID_STATE
            )
        return _lib._blocking_call(self._reader.read_all, (), {}, self.adbc_statement.cancel)

    def _drop_result(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def close(self) -> None:
        self._drop_result()
        self.adbc_statement.close()

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Connection:
    """An ADBC SQLite connection with its own database handle, as ``adbc_driver_sqlite.dbapi.connect`` makes one."""

    def __init__(self, uri: str) -> None:
        self._db = adbc_driver_sqlite.connect(uri)
        try:
            self._conn = adbc_driver_manager.AdbcConnection(self._db)
        except BaseException:
            self._db.close()
            raise

    def cursor(self) -> Cursor:
        return Cursor(self._conn)

    def close(self) -> None:
        self._conn.close()
        self._db.close()


def connect(uri: str, autocommit: bool = True) -> Connection:
    """A connection to ``uri`` (a ``file:`` URI with its flags, as the DB-API takes it); autocommit only."""
    if not autocommit:
        raise ValueError("adbc_lite connections are autocommit only (the nsys reader needs no transaction)")
    return Connection(uri)
