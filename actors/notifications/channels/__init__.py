"""Delivery channels: the ports through which notifications leave the system.

Each channel is a small port with one `send` that returns the provider's answer (stored
with the attempt, for an admin to read) or raises a `DeliveryFailed` carrying it. The
actor decides when to retry; a channel makes exactly one try per call. Email lives in
`channels.email`; Telegram, in-app and SMS channels follow the same shape.
"""

from __future__ import annotations

# Provider answers are stored per attempt and logged; a bound keeps one odd reply (an HTML
# error page from an HTTP provider, a long SMTP banner) from bloating either.
MAX_ANSWER_CHARS = 2000


def clip_answer(answer: str) -> str:
    """The answer as stored and logged: one line, at most MAX_ANSWER_CHARS characters."""
    flat = " ".join(answer.split())
    return flat if len(flat) <= MAX_ANSWER_CHARS else flat[: MAX_ANSWER_CHARS - 1] + "…"


class DeliveryFailed(Exception):
    """One try at a channel failed; `answer` is what the provider said (or the local error).

    `permanent` means trying again cannot help (the provider refused the recipient for
    good): the actor marks the delivery failed at once instead of retrying.
    `retry_after` is the provider's own wait in seconds (Telegram's 429): the next try
    waits at least that long.
    """

    code = "delivery_failed"

    def __init__(
        self, answer: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        self.answer = clip_answer(answer) or "no answer"
        self.permanent = permanent
        self.retry_after = retry_after
        super().__init__(self.answer)
