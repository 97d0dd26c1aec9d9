"""Arrow <-> numpy conversions for the ingest hot paths, without importing pandas.

Why: ``pa.array``, ``pa.scalar`` and ``Array.to_numpy`` probe their input with pandas
(``is_array_like``) and so import it: 0.2 s and ~35 MB of a conversion that never uses
pandas. These build or read the Arrow buffers directly instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa


def str_array(values: Any) -> pa.Array:
    """``pa.array(values, pa.string())`` for a list of str/None, without importing pandas.

    ``pa.array`` probes its input with pandas' ``is_array_like`` (lists and numpy arrays alike), which imports
    pandas: 0.2 s and ~35 MB of a conversion that never uses it. The buffers are built here instead.
    """
    enc = [None if v is None else v.encode() for v in values]
    n = len(enc)
    offs = np.zeros(n + 1, np.int64)
    np.cumsum([len(b) if b is not None else 0 for b in enc], out=offs[1:])
    valid = np.fromiter((b is not None for b in enc), bool, n)
    bitmap = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    typ = pa.string() if offs[-1] < 2**31 else pa.large_string()
    arr = pa.Array.from_buffers(
        typ,
        n,
        [
            bitmap,
            pa.py_buffer(offs.astype(np.int32) if typ == pa.string() else offs),
            pa.py_buffer(b"".join(b for b in enc if b is not None)),
        ],
    )
    return arr if typ == pa.string() else arr.cast(pa.string())


_NP_TYPES = {
    np.dtype(np.int8): pa.int8(),
    np.dtype(np.int32): pa.int32(),
    np.dtype(np.int64): pa.int64(),
    np.dtype(np.float64): pa.float64(),
}


def num_array(values: np.ndarray, mask: np.ndarray | None = None, type: pa.DataType | None = None) -> pa.Array:
    """``pa.array(values, type, mask=mask)`` for a 1-D numeric numpy array, zero-copy, without pandas.

    ``pa.array`` of a numpy array also asks pandas whether it is a Series (importing pandas; see
    :func:`str_array`). ``mask`` True = NULL, as in ``pa.array``.
    """
    if values.dtype == np.bool_:
        typ, data = pa.bool_(), pa.py_buffer(np.packbits(values, bitorder="little"))
    else:
        if type is not None and _NP_TYPES.get(values.dtype) != type:
            values = values.astype(type.to_pandas_dtype())
        values = np.ascontiguousarray(values)
        typ, data = _NP_TYPES[values.dtype], pa.py_buffer(values)
    bitmap, nulls = None, 0
    if mask is not None and mask.any():
        bitmap, nulls = pa.py_buffer(np.packbits(~mask, bitorder="little")), int(mask.sum())
    return pa.Array.from_buffers(typ, len(values), [bitmap, data], null_count=nulls)


def np_values(a: pa.Array) -> np.ndarray:
    """Read-only numpy view of an integer/float Arrow array's values (NULL slots: whatever the buffer holds).

    Not for booleans (bit-packed).

    ``Array.to_numpy`` imports pandas even for a zero-copy view (see :func:`str_array`).
    """
    dt = np.dtype(a.type.to_pandas_dtype())
    if len(a) == 0:
        return np.zeros(0, dt)
    return np.frombuffer(a.buffers()[1], dtype=dt, count=len(a), offset=a.offset * dt.itemsize)


def bits(buf: pa.Buffer, offset: int, n: int) -> np.ndarray:
    """An Arrow bit buffer (validity, or boolean values) as n uint8 0/1 values from bit ``offset``: the one
    unpacking of Arrow's little-endian bitmaps here (``to_numpy`` on booleans imports pandas)."""
    return np.unpackbits(np.frombuffer(buf, np.uint8), count=offset + n, bitorder="little")[offset:]


def np_filled(a: pa.Array, fill: int, dtype: Any = None) -> np.ndarray:
    """numpy copy of an integer Arrow array with NULL -> ``fill`` (``a.fill_null(fill).to_numpy()``, no pandas)."""
    v = np_values(a)
    v = v.astype(dtype or v.dtype, copy=True)
    if a.null_count:
        v[bits(a.buffers()[0], a.offset, len(a)) == 0] = fill
    return v
