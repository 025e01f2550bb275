"""Benchmarks (scenario scripts such as ``bench/passthrough.py``, run as files).

A regular package so that ``bench.harness`` is found ahead of any same-named
namespace portion on ``sys.path``.
"""
