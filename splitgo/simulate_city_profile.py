"""A node of `splitgo simulate --city --profile`: `run.py`'s node under cProfile, timed
by CPU (`time.process_time`), not by the wall: on a machine shared with other work a wall
clock charges a function for the time the process waited for a core.

    python -m splitgo.simulate_city_profile OUT.prof --port ... --data-dir ...

The profile is written to OUT.prof when the node exits (SIGTERM stops it cleanly).
"""

from __future__ import annotations

import cProfile
import sys
import time

from splitgo.cli import main


def profiled(out: str, argv: list[str]) -> int:
    """Run the node with `argv` under a CPU-time profiler; write its profile to `out`."""
    profiler = cProfile.Profile(time.process_time)
    code = 1
    try:
        code = profiler.runcall(main, argv, prog="run.py")
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    finally:
        profiler.dump_stats(out)
    return code


if __name__ == "__main__":
    sys.exit(profiled(sys.argv[1], sys.argv[2:]))
