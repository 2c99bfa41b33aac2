"""Settings for the whole suite: how many examples a Hypothesis property test tries.

A property test that names no `max_examples` takes it from the profile: "ci" (the default,
what `make check` and `make test` run) tries 100 examples, Hypothesis's own default;
`HYPOTHESIS_PROFILE=thorough` tries 1,000, for a deeper search after changing the
arithmetic the properties guard. Tests that name a smaller count (an example costs a
database round trip or a node) keep it in both.
"""

from __future__ import annotations

import os

import structlog
from hypothesis import settings

settings.register_profile("ci", max_examples=100)
settings.register_profile("thorough", max_examples=1_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def plain_tracebacks() -> None:
    """Log exceptions as plain tracebacks in tests: structlog's default console renderer
    draws them with rich, each frame's locals included, some seconds of CPU for a deep
    aiohttp or aiogram stack (a node configures its own logging: splitgo/logs.py)."""
    processors = [
        structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
        if isinstance(processor, structlog.dev.ConsoleRenderer)
        else processor
        for processor in structlog.get_config()["processors"]
    ]
    structlog.configure(processors=processors)


plain_tracebacks()
