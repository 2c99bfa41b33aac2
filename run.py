"""python run.py — one splitgo node: every actor, the HTTP edge, the bot (if configured)."""

from __future__ import annotations

import asyncio
import sys
import warnings

from splitgo import config, logs
from splitgo.node import serve


def main(argv: list[str] | None = None) -> int:
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); it falls back fine
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "admin":
        from splitgo import admin

        logs.configure("console", "warning")
        try:
            return admin.main(args[1:])
        except config.ConfigError as error:
            print(f"run.py admin: {error}", file=sys.stderr)
            return 2
    if args and args[0] == "simulate":
        from splitgo import simulate

        logs.configure("console", "warning")
        return simulate.main(args[1:])
    try:
        settings = config.from_argv(argv)
    except config.ConfigError as error:
        print(f"run.py: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, settings.log_level)
    return asyncio.run(serve(settings))


if __name__ == "__main__":
    sys.exit(main())
