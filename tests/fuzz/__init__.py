"""Hypothesis fuzzing of the public API (issue #9): every call either succeeds with finite,
correctly shaped output or raises a ValueError/TypeError that names the argument.

Profiles (tests/fuzz/conftest.py): ``ci`` by default; ``QLTS_FUZZ_PROFILE=long`` for the
>= 2,000-examples-per-entry-point run recorded in benchmarks/results/reliability.md.
"""
