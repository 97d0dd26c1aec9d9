"""Build of the optional C scanner for Kineto event blocks; everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("tracekit.ingest._kscan", ["tracekit/ingest/_kscan.c"], extra_compile_args=["-O2"])])
