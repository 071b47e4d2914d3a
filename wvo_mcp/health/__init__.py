"""The health monitor's one home: its judgement, its transactions and its loop.

Three layers in one folder, so pyproject lists each module at its own: judge.py is pure
(orient and decide, no I/O), service.py is the monitor's transactions over the store, and
monitor.py is the loop every server process runs (leadership, ticks, backups, pruning).
"""
