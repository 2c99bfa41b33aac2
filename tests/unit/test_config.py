"""Settings from the environment and flags: defaults, precedence, clear errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from splitgo.config import OPTIONS, ConfigError, add_flags, load


def flags(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_flags(parser)
    return parser.parse_args(list(argv))


def test_defaults_are_the_embedded_in_memory_node() -> None:
    """With nothing set, a node uses the memory transport and the embedded database."""
    settings = load({})
    assert settings.transport == "memory"
    assert settings.embedded_database
    assert settings.actors is None
    assert settings.data_dir == Path(".data")


def test_flags_override_the_environment() -> None:
    """A flag wins over the same setting in the environment."""
    settings = load({"SPLITGO_PORT": "9000", "SPLITGO_ACTORS": "a,b"}, flags("--port", "9100"))
    assert settings.port == 9100
    assert settings.actors == ("a", "b")


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("SPLITGO_PORT", "eighty", "SPLITGO_PORT"),
        ("SPLITGO_PORT", "70000", "SPLITGO_PORT"),
        ("SPLITGO_TRANSPORT", "carrier-pigeon", "memory or redis"),
        ("SPLITGO_SHUTDOWN_TIMEOUT", "-1", "SPLITGO_SHUTDOWN_TIMEOUT"),
        ("SPLITGO_LOG_FORMAT", "xml", "auto, json or console"),
        ("SPLITGO_CODEC_CHECK", "maybe", "SPLITGO_CODEC_CHECK"),
    ],
)
def test_bad_values_name_the_setting(variable: str, value: str, named: str) -> None:
    """A value we cannot use is refused with a message naming the variable or its choices."""
    with pytest.raises(ConfigError, match=named):
        load({variable: value})


def test_all_means_every_actor() -> None:
    """`--actors all` (or empty) hosts every actor type."""
    assert load({}, flags("--actors", "all")).actors is None
    assert load({"SPLITGO_ACTORS": " "}).actors is None


def test_every_option_is_documented_in_the_readme() -> None:
    """The README's configuration table lists every environment variable the code reads."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    missing = [env for env, *_ in OPTIONS if env not in readme]
    assert missing == []
