"""Benchmarks for splitgo: actor runtime throughput, node start-up, messages through Redis.

Run them with `make bench` (or `.venv/bin/python -m tests.bench --help` from the project
root). Results are printed and also written as JSON under tests/bench/results/.
"""

from __future__ import annotations
