"""The options of `splitgo simulate` and their command line."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Options:
    """What a run does: fleet sizes, length, target node, pacing."""

    drivers: int
    riders: int
    minutes: float
    url: str
    seed: int | None
    concurrency: int
    drain: float
    poll: float


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


def parse(argv: Sequence[str], prog: str = "splitgo simulate") -> Options:
    parser = argparse.ArgumentParser(
        prog=prog, description="Drive a live splitgo node with simulated rides."
    )
    parser.add_argument("--drivers", type=positive_int, default=200)
    parser.add_argument("--riders", type=positive_int, default=50)
    parser.add_argument("--minutes", type=positive_float, default=2.0, help="fractions work")
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="the node's base URL")
    parser.add_argument("--seed", type=int, default=None, help="random seed of the choices")
    parser.add_argument("--concurrency", type=positive_int, default=4, help="sign-ups at once")
    parser.add_argument("--drain", type=float, default=10.0, help="seconds for rides to end")
    parser.add_argument("--poll", type=positive_float, default=0.5, help="seconds between polls")
    args = parser.parse_args(list(argv))
    return Options(
        drivers=args.drivers,
        riders=args.riders,
        minutes=args.minutes,
        url=args.url.rstrip("/"),
        seed=args.seed,
        concurrency=args.concurrency,
        drain=max(args.drain, 0.0),
        poll=args.poll,
    )
