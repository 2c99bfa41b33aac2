"""Settings from the environment and flags: defaults, precedence, clear errors."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from splitgo.config import (
    OPTIONS,
    ConfigError,
    Setting,
    Settings,
    add_flags,
    definitions,
    load,
    render_table,
)
from splitgo.setting_kinds import Text


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


def readme_configuration_table() -> str:
    """The markdown table in README.md's "## Configuration" section."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("|"))


def test_the_readme_table_is_the_generated_one() -> None:
    """README.md's configuration table is exactly the one rendered from the settings."""
    expected = render_table()
    assert readme_configuration_table() == expected, (
        "README.md's Configuration table is out of date; replace it with this "
        "(also printed by `python -m splitgo config-table`):\n\n" + expected
    )


def test_every_field_is_one_declared_setting() -> None:
    """Every Settings field carries its Setting; variables and flags are each used once."""
    declared = definitions()
    assert [d.field for d in declared] == [f.name for f in dataclasses.fields(Settings)]
    envs = [d.setting.env for d in declared]
    flags_used = [d.setting.flag for d in declared if d.setting.flag]
    assert len(set(envs)) == len(envs)
    assert len(set(flags_used)) == len(flags_used)
    assert all(env.startswith("SPLITGO_") for env in envs)


def test_a_secret_cannot_be_declared_with_a_flag() -> None:
    """Declaring a secret setting with a flag fails at once: secrets never become flags."""
    with pytest.raises(ValueError, match="secret"):
        Setting("SPLITGO_X_TOKEN", "a token", Text(), flag="--x-token", secret=True)


def test_secrets_stay_out_of_the_repr() -> None:
    """Printing Settings does not show a secret's value."""
    settings = load({"SPLITGO_SMTP_PASSWORD": "hunter2-but-longer", "SPLITGO_SMTP_USER": "mia"})
    assert settings.smtp_password == "hunter2-but-longer"
    assert "hunter2" not in repr(settings)
    assert "mia" in repr(settings)


def test_bounds_and_choices_come_from_the_declaration() -> None:
    """Bounds and choices checked by loading are the ones the table and --help show."""
    assert load({"SPLITGO_PORT": "0"}).port == 0
    assert load({"SPLITGO_DB_POOL_SIZE": "65535"}).db_pool_size == 65535
    with pytest.raises(ConfigError, match="SPLITGO_DB_POOL_SIZE"):
        load({"SPLITGO_DB_POOL_SIZE": "0"})
    assert load({"SPLITGO_LOG_LEVEL": "WARNING"}).log_level == "warning"
    with pytest.raises(ConfigError, match="the SMTP TLS mode is none, starttls or tls"):
        load({"SPLITGO_SMTP_TLS": "ssl"})
    with pytest.raises(ConfigError, match="--port"):
        load({}, flags("--port", "65536"))
    table = render_table()
    assert "(`none`, `starttls` or `tls`)" in table
    assert "| `SPLITGO_PORT` | `--port` | `8080` |" in table
    parser = argparse.ArgumentParser()
    add_flags(parser)
    assert "memory or redis; default memory" in " ".join(parser.format_help().split())


def test_empty_values_mean_unset_or_generated() -> None:
    """An empty optional value is None, an empty node id is generated, empty lists are ()."""
    settings = load(
        {
            "SPLITGO_SMTP_HOST": " ",
            "SPLITGO_NODE_ID": "",
            "SPLITGO_PLUGINS": " , ",
            "SPLITGO_JWT_KEYS": "",
        }
    )
    assert settings.smtp_host is None
    assert settings.jwt_keys is None
    assert settings.node_id
    assert settings.plugins == ()
