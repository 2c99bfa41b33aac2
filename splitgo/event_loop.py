"""Which event loop a node runs on: uvloop where it is installed, else asyncio's own.

`SPLITGO_EVENT_LOOP` (`--event-loop`) says `auto` (the default: uvloop when it imports,
asyncio's loop otherwise), `asyncio` or `uvloop` (refused at start when uvloop cannot be
imported, rather than quietly running on the other loop). uvloop is a dependency on every
platform but Windows, where it does not exist; `auto` is what keeps a node starting there.

The choice is made before the loop starts (`choose`), and the loop made by its factory
through `asyncio.Runner` (`run`): no global event loop policy is installed, so nothing else
in the process (tests, the embedded database's helpers) is switched over behind its back.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from splitgo.setting_kinds import ConfigError, either

__all__ = ["LOOP_SETTINGS", "LoopChoice", "choose", "from_environment", "run", "running_loop_name"]

LoopName = Literal["asyncio", "uvloop"]
LOOP_SETTINGS = ("auto", "asyncio", "uvloop")  # what SPLITGO_EVENT_LOOP accepts
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LoopChoice:
    """The loop a process will run on and why: `factory` makes it (None: asyncio's own)."""

    name: LoopName
    setting: str  # what SPLITGO_EVENT_LOOP said: auto, asyncio or uvloop
    factory: Callable[[], asyncio.AbstractEventLoop] | None
    version: str | None  # uvloop's version when it runs
    reason: str  # why this loop, in a few words (for the start-up log line)


def choose(setting: str) -> LoopChoice:
    """The loop `setting` (auto, asyncio or uvloop) asks for, given what imports here.

    ConfigError when `uvloop` was asked for by name and cannot be imported.
    """
    if setting not in LOOP_SETTINGS:
        raise ConfigError(
            f"SPLITGO_EVENT_LOOP={setting!r}: the event loop is {either(LOOP_SETTINGS)}"
        )
    if setting == "asyncio":
        return LoopChoice("asyncio", setting, None, None, "asked for")
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError as error:
        if setting == "uvloop":
            raise ConfigError(
                "SPLITGO_EVENT_LOOP=uvloop but uvloop cannot be imported "
                f"({error}); install it (pip install uvloop) or use auto or asyncio"
            ) from None
        return LoopChoice("asyncio", setting, None, None, "uvloop is not installed")
    reason = "asked for" if setting == "uvloop" else "uvloop is installed"
    version = str(getattr(uvloop, "__version__", "")) or None
    return LoopChoice("uvloop", setting, uvloop.new_event_loop, version, reason)


def from_environment(environ: Mapping[str, str]) -> LoopChoice:
    """The choice SPLITGO_EVENT_LOOP makes, read alone (for a command without Settings, such
    as `simulate`): parsed as the setting is, in any case, auto when unset."""
    return choose(environ.get("SPLITGO_EVENT_LOOP", "auto").strip().lower())


def run(main: Coroutine[Any, Any, T], choice: LoopChoice) -> T:
    """Run `main` to completion on a new loop of the chosen kind, as `asyncio.run` does."""
    with asyncio.Runner(loop_factory=choice.factory) as runner:
        return runner.run(main)


def running_loop_name() -> LoopName:
    """The kind of the loop running now (for the log line: what runs, not what was asked)."""
    module = type(asyncio.get_running_loop()).__module__
    return "uvloop" if module.split(".", 1)[0] == "uvloop" else "asyncio"
