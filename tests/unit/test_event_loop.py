"""SPLITGO_EVENT_LOOP: how it parses, which loop each value picks (auto falls back to
asyncio's own when uvloop cannot be imported), and that `splitgo run` serves on that loop."""

from __future__ import annotations

import argparse
import asyncio
import sys

import pytest

from splitgo import cli, event_loop, logs, node
from splitgo.config import ConfigError, Settings, add_flags, load
from splitgo.event_loop import LoopChoice, choose, running_loop_name


def without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    """`import uvloop` fails from here on, as on a machine where it is not installed."""
    monkeypatch.setitem(sys.modules, "uvloop", None)


def test_the_default_is_auto() -> None:
    """Unset, the setting is auto."""
    assert load({}).event_loop == "auto"


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [("auto", "auto"), ("asyncio", "asyncio"), ("uvloop", "uvloop"), (" UVLoop ", "uvloop")],
)
def test_each_choice_parses_in_any_case(raw: str, parsed: str) -> None:
    """auto, asyncio and uvloop are accepted in any case, around spaces, kept lower case."""
    assert load({"SPLITGO_EVENT_LOOP": raw}).event_loop == parsed


@pytest.mark.parametrize("raw", ["", "tokio", "uv-loop", "asyncio,uvloop"])
def test_another_value_is_refused_naming_the_variable(raw: str) -> None:
    """Anything else is a ConfigError naming the variable and listing the choices."""
    with pytest.raises(ConfigError, match=r"SPLITGO_EVENT_LOOP=.*auto, asyncio or uvloop"):
        load({"SPLITGO_EVENT_LOOP": raw})


def test_the_flag_wins_over_the_variable() -> None:
    """`--event-loop asyncio` overrides SPLITGO_EVENT_LOOP=uvloop; a bad flag is named."""
    parser = argparse.ArgumentParser()
    add_flags(parser)
    flags = parser.parse_args(["--event-loop", "asyncio"])
    assert load({"SPLITGO_EVENT_LOOP": "uvloop"}, flags).event_loop == "asyncio"
    with pytest.raises(ConfigError, match="--event-loop"):
        load({}, parser.parse_args(["--event-loop", "trio"]))


def test_auto_picks_uvloop_when_it_imports() -> None:
    """With uvloop installed, auto runs on it and says why, with its version."""
    uvloop = pytest.importorskip("uvloop")
    choice = choose("auto")
    assert (choice.name, choice.setting, choice.reason) == ("uvloop", "auto", "uvloop is installed")
    assert choice.factory is uvloop.new_event_loop
    assert choice.version == uvloop.__version__


def test_auto_falls_back_to_asyncio_when_uvloop_cannot_be_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without uvloop, auto runs on asyncio's own loop and says uvloop is not installed."""
    without_uvloop(monkeypatch)
    choice = choose("auto")
    assert choice == LoopChoice("asyncio", "auto", None, None, "uvloop is not installed")


def test_uvloop_by_name_without_it_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Asked for by name and absent, uvloop is a ConfigError telling how to install it."""
    without_uvloop(monkeypatch)
    with pytest.raises(ConfigError, match=r"uvloop cannot be imported.*pip install uvloop"):
        choose("uvloop")


def test_asyncio_by_name_never_imports_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    """asyncio asked for is asyncio's loop whether or not uvloop is installed."""
    assert choose("asyncio").name == "asyncio"
    without_uvloop(monkeypatch)
    assert choose("asyncio") == LoopChoice("asyncio", "asyncio", None, None, "asked for")


def test_choose_refuses_an_unknown_setting() -> None:
    """A value the setting would not have parsed is refused here too."""
    with pytest.raises(ConfigError, match="SPLITGO_EVENT_LOOP='trio'"):
        choose("trio")


async def _loop_name() -> str:
    return running_loop_name()


@pytest.mark.parametrize("setting", ["asyncio", "uvloop"])
def test_run_runs_on_the_chosen_loop(setting: str) -> None:
    """The coroutine runs on a loop of the chosen kind, and its result comes back."""
    if setting == "uvloop":
        pytest.importorskip("uvloop")
    assert event_loop.run(_loop_name(), choose(setting)) == setting


def test_splitgo_run_serves_on_the_chosen_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """`splitgo run --event-loop uvloop` hands serve the choice and runs it on uvloop."""
    pytest.importorskip("uvloop")
    seen: list[tuple[str, str, LoopChoice | None]] = []

    async def fake_serve(settings: Settings, chosen: LoopChoice | None = None) -> int:
        seen.append((running_loop_name(), settings.event_loop, chosen))
        return 0

    monkeypatch.setattr(node, "serve", fake_serve)
    monkeypatch.setattr(logs, "configure", lambda *args: None)
    monkeypatch.delenv("SPLITGO_EVENT_LOOP", raising=False)
    assert cli.main(["run", "--event-loop", "uvloop"]) == 0
    assert [(name, setting, chosen and chosen.name) for name, setting, chosen in seen] == [
        ("uvloop", "uvloop", "uvloop")
    ]


def test_splitgo_run_refuses_uvloop_it_cannot_import(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without uvloop, `SPLITGO_EVENT_LOOP=uvloop` exits 2 before anything starts."""
    without_uvloop(monkeypatch)
    monkeypatch.setenv("SPLITGO_EVENT_LOOP", "uvloop")
    assert cli.main([], prog="run.py") == 2
    assert capsys.readouterr().err.startswith("run.py: SPLITGO_EVENT_LOOP=uvloop but uvloop")


def test_running_loop_name_outside_a_loop_is_an_error() -> None:
    """Asked with no loop running, it raises as asyncio.get_running_loop does."""
    with pytest.raises(RuntimeError):
        running_loop_name()
    assert asyncio.run(_loop_name()) == "asyncio"


@pytest.mark.parametrize(
    ("environ", "setting"), [({}, "auto"), ({"SPLITGO_EVENT_LOOP": " AsyncIO "}, "asyncio")]
)
def test_from_environment_reads_the_variable_as_the_setting_does(
    environ: dict[str, str], setting: str
) -> None:
    """Unset is auto; the value is taken in any case, around spaces."""
    assert event_loop.from_environment(environ).setting == setting


def test_simulate_refuses_uvloop_it_cannot_import(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`splitgo simulate` with SPLITGO_EVENT_LOOP=uvloop and no uvloop exits 2, naming it,
    before it sends anything."""
    without_uvloop(monkeypatch)
    monkeypatch.setattr(logs, "configure", lambda *args: None)
    monkeypatch.setenv("SPLITGO_EVENT_LOOP", "uvloop")
    assert cli.main(["simulate", "--url", "http://127.0.0.1:9"]) == 2
    assert capsys.readouterr().err.startswith("splitgo simulate: SPLITGO_EVENT_LOOP=uvloop")
