"""`python -m splitgo`: the `splitgo` command (splitgo/cli.py)."""

from __future__ import annotations

import sys

from splitgo.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m splitgo"))
