"""tradenode's benchmark suite: every figure against a floor measured in the same run.

Run everything with ``python -m benchmarks`` from the repository root (see
``python -m benchmarks --help``); results go to ``benchmarks/results/``.
Benchmarks are not tests: CI does not run them and no test asserts a time.
"""
