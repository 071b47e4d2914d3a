"""wvo-mcp's benchmarks, one module each, run from the repository root:

    .venv/bin/python -m scripts.bench.core --quick

What they share is in lib.py; BENCHMARKS.md says how each figure is reproduced."""
