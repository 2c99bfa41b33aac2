"""python run.py — the `splitgo` command from a checkout: a node by default, or a command.

    python run.py --port 8080                  one node: every actor, the HTTP edge, the bot
    python run.py admin create --email ...     create or promote an admin
    python run.py simulate --drivers 200 ...   simulated rides against a live node

Installed, the same is `splitgo ...` or `python -m splitgo ...` (splitgo/cli.py).
"""

from __future__ import annotations

import sys

from splitgo.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="run.py"))
