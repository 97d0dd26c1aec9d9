"""Build of the optional C extensions (the Kineto event-block scanner, the Chrome-trace event writer); everything
else is in pyproject.toml. Both have pure-Python fallbacks that give the same output."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("tracekit.ingest._kscan", ["tracekit/ingest/_kscan.c"], extra_compile_args=["-O2"]),
        Extension("tracekit._chrome", ["tracekit/_chrome.c"], extra_compile_args=["-O2"]),
    ]
)
