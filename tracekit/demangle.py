"""C++ kernel names made readable: the toolchain's demangler, called through ctypes.

Why not a hand-written demangler: the Itanium C++ ABI mangling (``_ZN5aiter24add_rmsnorm_quant_kernel...``) has
substitutions, template arguments and literals that only a complete implementation gets right. Every Linux
machine that runs Python has one: ``__cxa_demangle`` in the C++ runtime (libstdc++, or libc++abi on macOS),
the function the ``cxxfilt`` package calls. Calling it here needs no new dependency and no download. A runtime
older than the name's mangling (libstdc++ of GCC 12 does not know ``DF16b``, C++23's ``std::bfloat16_t``, which
ROCm's aiter kernels use) fails on it: such a name is then given to binutils' ``c++filt`` when it is on the PATH.
Where neither can read a name it is returned as it is (:func:`available` says whether any demangler loaded).

Only names that look mangled (``_Z...``) are passed to it; everything else (nvcc's already demangled names in
Kineto and nsys traces, ``ncclDevKernel_...``, ``Cijk_...``) comes back unchanged. A suffix the runtime does not
know (AMD code objects: ``.kd``; clones: ``.cold``) is tried without it.

The analysis itself stays in SQL: queries/kernels.sql calls the DuckDB scalar function ``_demangle(name)``
registered by :func:`register` and shortens the result with SQL macros.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import re
import shutil
import subprocess
from typing import Any

_SUFFIX = re.compile(r"^(_Z.*?)(\.[A-Za-z_][\w.]*)$")


@functools.cache
def _runtime() -> tuple[Any, Any] | None:
    """(``__cxa_demangle``, ``free``) from the first C++ runtime that loads, else None."""
    names = [ctypes.util.find_library(n) for n in ("stdc++", "c++abi", "c++")]
    names += ["libstdc++.so.6", "libc++abi.dylib", "libc++.1.dylib"]
    for n in names:
        if not n:
            continue
        try:
            lib = ctypes.CDLL(n)
            fn = lib.__cxa_demangle
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_void_p  # a malloc'd buffer we must free
        fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_int)]
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        free = libc.free
        free.argtypes = [ctypes.c_void_p]
        return fn, free
    return None


def available() -> bool:
    """True when a C++ runtime's demangler could be loaded or ``c++filt`` is on the PATH."""
    return _runtime() is not None or _cxxfilt() is not None


@functools.cache
def _cxxfilt() -> str | None:
    return shutil.which("c++filt")


def _call_cxxfilt(name: str) -> str | None:
    exe = _cxxfilt()
    if exe is None:
        return None
    try:
        r = subprocess.run([exe], input=name + "\n", capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    out = r.stdout.strip()
    return out if r.returncode == 0 and out and out != name else None


def _call(name: str) -> str | None:
    rt = _runtime()
    if rt is None:
        return None
    fn, free = rt
    status = ctypes.c_int(0)
    ptr = fn(name.encode("utf-8", "surrogateescape"), None, None, ctypes.byref(status))
    if not ptr or status.value != 0:
        return None
    try:
        return ctypes.string_at(ptr).decode("utf-8", "replace")
    finally:
        free(ptr)


@functools.lru_cache(maxsize=65536)
def demangle(name: str | None) -> str | None:
    """The demangled ``name``; ``name`` itself when it is not mangled or cannot be demangled here."""
    if not name or not name.startswith("_Z"):
        return name
    m = _SUFFIX.match(name)
    for n in (name, m.group(1)) if m else (name,):
        for fn in (_call, _call_cxxfilt):
            out = fn(n)
            if out is not None:
                return out
    return name


def register(con: Any, temp: bool = True) -> None:
    """Create the temp table ``_demangled(name, demangled)`` on a DuckDB connection: one row per distinct
    mangled (``_Z...``) kernel name of its ``kernels`` view, demangled here. A table, not a Python UDF: a
    DuckDB Python function loads numpy, which ``tracekit report`` otherwise never imports (tests/test_startup.py),
    and a trace holds few distinct names. Rebuilt on every call (the connection's traces may change).
    ``temp=False``: a table of the connection's database, which its cursors see too (tracekit.report's
    analyses side by side)."""
    names = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT name FROM kernels WHERE kind = 'kernel' AND starts_with(name, '_Z') ORDER BY name"
        ).fetchall()
    ]
    con.execute(f"CREATE OR REPLACE {'TEMP ' if temp else ''}TABLE _demangled (name VARCHAR, demangled VARCHAR)")
    if names:
        con.executemany("INSERT INTO _demangled VALUES (?, ?)", [(n, demangle(n)) for n in names])
