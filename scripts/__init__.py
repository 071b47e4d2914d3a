"""The developer's scripts (setup, check, demo, restore) and the benchmarks (scripts.bench).
A package so the benchmarks run from the repository root as `python -m scripts.bench.NAME`."""
