"""Double taps: the same command sent twice from one chat within a few seconds is one
request, so it carries one idempotency key.

Telegram gives every send its own message id, so a double-tapped send (or a client that
resends after a flaky connection) arrives as two messages with the same text. The first
one's key is reused for an identical text from that chat within `window` seconds; the
owning actor then replays the first answer instead of creating a second thing. A longer
pause is a new request (two coffees bought a minute apart are two expenses). Kept in
memory: the bot runs on one node, and a restart forgets a few seconds of taps at most.
"""

from __future__ import annotations

from collections import OrderedDict

WINDOW_SECONDS = 10.0
REMEMBERED_MAX = 10_000  # sends remembered at once; the oldest go first


class DoubleTaps:
    """The key of each chat's recent sends, by their text."""

    def __init__(self, window: float = WINDOW_SECONDS, size: int = REMEMBERED_MAX) -> None:
        self._window = window
        self._size = size
        self._recent: OrderedDict[tuple[int, str], tuple[str, float]] = OrderedDict()

    def __len__(self) -> int:
        """How many sends are remembered."""
        return len(self._recent)

    def key(self, chat_id: int, text: str, message_id: int, at: float) -> str:
        """The idempotency key of this send: an identical send's from the last `window`
        seconds, else its own (`<chat>:<message id>`)."""
        seen = self._recent.get((chat_id, text))
        if seen is not None and 0 <= at - seen[1] <= self._window:
            return seen[0]
        own = f"{chat_id}:{message_id}"
        self._recent[(chat_id, text)] = (own, at)
        self._recent.move_to_end((chat_id, text))
        while len(self._recent) > self._size:
            self._recent.popitem(last=False)
        return own
