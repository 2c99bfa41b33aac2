"""A node without a Telegram token never imports aiogram: its pydantic types cost about 2.5 s
of start-up, paid only by a node that runs the bot or the Telegram channel."""

from __future__ import annotations

import subprocess
import sys

from tests.support.node import PROJECT_ROOT


def test_the_node_and_its_composition_import_without_aiogram() -> None:
    """Importing the node, its composition and the notifications actor loads no aiogram."""
    probe = (
        "import sys, splitgo.node, splitgo.composition, actors.notifications.actor; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'aiogram'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "[]"
