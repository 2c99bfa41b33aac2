"""The `splitgo` command: `run` by default, `admin`, `simulate` and `config-table` listed in
`--help`, and an admin's password never taken from the command line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pytest

from actors.auth.messages import InvalidField, MakeAdmin, UserView
from splitgo import admin, cli
from splitgo.config import render_table
from tests.support.node import PROJECT_ROOT

COMMANDS = ("run", "admin", "simulate", "config-table")


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    """`splitgo --help` shows the node's flags and names every command."""
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert "--port" in shown
    for command in COMMANDS:
        assert f"\n  {command} " in shown


@pytest.mark.parametrize("entry", [["run.py"], ["-m", "splitgo"]])
def test_run_py_and_python_m_splitgo_list_the_commands(entry: list[str]) -> None:
    """`python run.py --help` and `python -m splitgo --help` name admin and simulate, and
    offer no flag for a secret."""
    done = subprocess.run(
        [sys.executable, *entry, "--help"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "admin" in done.stdout
    assert "simulate" in done.stdout
    assert "password" not in done.stdout.replace("SPLITGO_ADMIN_PASSWORD", "")


def test_run_is_the_default_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flags without a command run a node, as `splitgo run` with the same flags does."""
    calls: list[tuple[str, Sequence[str]]] = []

    def fake_run(prog: str, argv: Sequence[str]) -> int:
        calls.append((prog, list(argv)))
        return 0

    monkeypatch.setattr(cli, "run", fake_run)
    monkeypatch.setitem(cli.HANDLERS, "run", fake_run)
    assert cli.main(["--port", "9000"]) == 0
    assert cli.main(["run", "--port", "9000"]) == 0
    assert cli.main([], prog="run.py") == 0
    assert calls == [
        ("splitgo", ["--port", "9000"]),
        ("splitgo", ["--port", "9000"]),
        ("run.py", []),
    ]


def test_a_bad_flag_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    """A flag value we cannot use stops before anything starts, exit code 2, flag named."""
    assert cli.main(["--port", "not-a-port"], prog="run.py") == 2
    error = capsys.readouterr().err
    assert error.startswith("run.py: --port=")


def test_config_table_prints_the_generated_table(capsys: pytest.CaptureFixture[str]) -> None:
    """`splitgo config-table` prints the README's table, ready to paste."""
    assert cli.main(["config-table"]) == 0
    assert capsys.readouterr().out == render_table() + "\n"


def test_admin_create_takes_no_password_flag(capsys: pytest.CaptureFixture[str]) -> None:
    """`admin create --password` is refused: a command line is visible to every user."""
    with pytest.raises(SystemExit) as exited:
        admin.parse(["create", "--email", "a@example.com", "--password", "secret-secret"])
    assert exited.value.code == 2
    assert "--password" in capsys.readouterr().err


def test_the_admin_password_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """SPLITGO_ADMIN_PASSWORD is read with the other settings."""
    monkeypatch.setenv("SPLITGO_ADMIN_PASSWORD", "correct horse battery staple")
    args, settings = admin.parse(["create", "--email", "a@example.com", "--name", "Ann"])
    assert (args.email, args.name) == ("a@example.com", "Ann")
    assert settings.admin_password == "correct horse battery staple"


class FakeAuth:
    """The auth actor's MakeAdmin, for accounts in `existing` only (else a password)."""

    def __init__(self, existing: set[str]) -> None:
        self.existing = existing
        self.asked: list[MakeAdmin] = []

    async def ask(self, message: MakeAdmin, timeout: float) -> UserView:
        self.asked.append(message)
        if message.email not in self.existing and message.password is None:
            raise InvalidField("no account", details={"field": "$.password"})
        return UserView(
            id="u1",
            email=message.email,
            name=message.name or "x",
            email_verified=False,
            roles=["user", "admin"],
            telegram_linked=False,
            created_at="2024-01-01T00:00:00Z",
        )


def refuse_to_ask(email: str) -> str:
    raise AssertionError("asked for a password it did not need")


async def test_promoting_an_existing_user_needs_no_password() -> None:
    """An existing account is promoted without a password, and none is asked for."""
    auth = FakeAuth({"a@example.com"})
    fake: Any = auth
    user = await admin.make_admin(fake, "a@example.com", None, None, refuse_to_ask)
    assert user.roles == ["user", "admin"]
    assert [m.password for m in auth.asked] == [None]


async def test_a_new_admin_gets_the_password_asked_for() -> None:
    """With no account and no SPLITGO_ADMIN_PASSWORD, the password is asked, then used."""
    auth = FakeAuth(set())
    fake: Any = auth
    await admin.make_admin(fake, "new@example.com", "New", None, lambda email: "typed pass 42")
    assert [m.password for m in auth.asked] == [None, "typed pass 42"]


async def test_a_given_password_is_used_at_once() -> None:
    """SPLITGO_ADMIN_PASSWORD creates the admin in one ask; nothing is asked."""
    auth = FakeAuth(set())
    fake: Any = auth
    await admin.make_admin(fake, "new@example.com", None, "env pass 42", refuse_to_ask)
    assert [m.password for m in auth.asked] == ["env pass 42"]


def test_without_a_terminal_the_missing_password_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No terminal to ask on: the error says to set SPLITGO_ADMIN_PASSWORD."""
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    with pytest.raises(admin.NoPassword, match="SPLITGO_ADMIN_PASSWORD"):
        admin.ask_password("new@example.com")
