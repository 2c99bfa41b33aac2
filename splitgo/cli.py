"""The `splitgo` command: run a node (the default), manage admins, simulate rides.

    splitgo [run] [--port 8080 ...]      one node: every actor, the HTTP edge, the bot
    splitgo admin create --email ...     create or promote an admin
    splitgo simulate --drivers 200 ...   simulated drivers and riders against a live node
    splitgo config-table                 the README's configuration table

`python -m splitgo` and `python run.py` are the same command.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable, Sequence

from splitgo import config, event_loop, logs

# name -> what it does, as `--help` lists them
COMMANDS = {
    "run": "run one node (the default when no command is given)",
    "admin": "create or promote an admin: admin create --email you@example.com",
    "simulate": "drive a live node with simulated drivers and riders",
    "config-table": "print the README's configuration table (markdown)",
}


def run_parser(prog: str) -> argparse.ArgumentParser:
    """The node's flags; its `--help` also lists the other commands."""
    listed = "\n".join(f"  {name:<14}{what}" for name, what in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog=prog,
        usage=f"{prog} [run] [flags] | {prog} {{admin,simulate,config-table}} ...",
        description="Run one splitgo node. Every flag has an environment variable (SPLITGO_*)\n"
        "and a flag wins over its variable; secrets come from the environment only.",
        epilog=f"commands:\n{listed}\n\n`{prog} COMMAND --help` tells more about one.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config.add_flags(parser)
    return parser


def run(prog: str, argv: Sequence[str]) -> int:
    """Start a node and serve until SIGTERM or SIGINT."""
    try:
        settings = config.load(os.environ, run_parser(prog).parse_args(list(argv)))
        loop = event_loop.choose(settings.event_loop)  # uvloop by name but absent: refused
    except config.ConfigError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, settings.log_level)
    from splitgo.node import serve  # the whole node: imported only to run one

    return event_loop.run(serve(settings, loop), loop)


def admin(prog: str, argv: Sequence[str]) -> int:
    """Manage admins, on the node's database, without a running node."""
    from splitgo import admin as command

    logs.configure("console", "warning")
    try:
        return command.main(argv, prog=f"{prog} admin")
    except config.ConfigError as error:
        print(f"{prog} admin: {error}", file=sys.stderr)
        return 2


def simulate(prog: str, argv: Sequence[str]) -> int:
    """Simulated drivers and riders against a live node over HTTP."""
    from splitgo import simulate as command

    logs.configure("console", "warning")
    try:
        return command.main(argv, prog=f"{prog} simulate")
    except config.ConfigError as error:  # SPLITGO_EVENT_LOOP it cannot run on
        print(f"{prog} simulate: {error}", file=sys.stderr)
        return 2


def config_table(prog: str, argv: Sequence[str]) -> int:
    """Print the configuration table README.md shows, generated from the settings."""
    parser = argparse.ArgumentParser(
        prog=f"{prog} config-table", description=COMMANDS["config-table"]
    )
    parser.parse_args(list(argv))
    print(config.render_table())
    return 0


HANDLERS: dict[str, Callable[[str, Sequence[str]], int]] = {
    "run": run,
    "admin": admin,
    "simulate": simulate,
    "config-table": config_table,
}


def main(argv: Sequence[str] | None = None, prog: str = "splitgo") -> int:
    """Run the command `argv` names (without the program name); the exit code."""
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); it falls back fine
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in HANDLERS:
        return HANDLERS[args[0]](prog, args[1:])
    return run(prog, args)
