"""The chat actor's rules, with no IO: what a message may say, whom it mentions, whom it
notifies, when it may still change, and the rate limit's token bucket."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from actors.chat.messages import (
    EDIT_SECONDS,
    QUIET_SECONDS,
    RATE_BURST,
    RATE_PER_SECOND,
    TEXT_MAX,
    InvalidChatMessage,
)

# control and format characters other than line breaks and tabs are dropped from a text
_KEPT_CONTROLS = frozenset("\n\t")
_BLANK_LINES = re.compile(r"\n{3,}")


def message_text(raw: str, *, has_attachments: bool = False) -> str:
    """The text as stored: NFC, line breaks as `\\n`, no other control or format
    characters, trimmed, at most two blank lines in a row. Empty only with files;
    over TEXT_MAX characters refused. InvalidChatMessage naming `$.text` otherwise."""
    text = unicodedata.normalize("NFC", raw.replace("\r\n", "\n").replace("\r", "\n"))
    text = "".join(
        char
        for char in text
        if char in _KEPT_CONTROLS or unicodedata.category(char) not in ("Cc", "Cf", "Cs")
    )
    text = _BLANK_LINES.sub("\n\n", text).strip()
    if not text and not has_attachments:
        raise InvalidChatMessage("a message cannot be empty", details={"field": "$.text"})
    if len(text) > TEXT_MAX:
        raise InvalidChatMessage(
            f"a message is at most {TEXT_MAX:,} characters; this one is {len(text):,}",
            details={"field": "$.text", "limit": TEXT_MAX},
        )
    return text


def mentioned(text: str, names: Mapping[str, str], *, author_id: str) -> list[str]:
    """The people `text` mentions as `@Name` (a participant's display name, any case,
    ended by a non-word character or the end), or `@First` when only one participant's
    name starts with that first name. Longer names win (`@Ann Lee` over `@Ann`); the
    author never mentions themselves. In the order of `names`."""
    if "@" not in text:
        return []
    folded = text.casefold()
    found: set[str] = set()
    taken: list[tuple[int, int]] = []
    candidates = _candidates(names)
    for handle, user_id in sorted(candidates.items(), key=lambda item: -len(item[0])):
        start = 0
        while True:
            at = folded.find("@" + handle, start)
            if at < 0:
                break
            end = at + 1 + len(handle)
            start = end
            if end < len(folded) and (folded[end].isalnum() or folded[end] == "_"):
                continue
            if any(at < stop and end > begin for begin, stop in taken):
                continue
            taken.append((at, end))
            found.add(user_id)
    return [user_id for user_id in names if user_id in found and user_id != author_id]


def _candidates(names: Mapping[str, str]) -> dict[str, str]:
    """Handle (folded) -> user id: every full name, and first names that are unique."""
    handles: dict[str, str] = {}
    firsts: dict[str, set[str]] = {}
    for user_id, name in names.items():
        folded = " ".join(name.casefold().split())
        if not folded:
            continue
        handles.setdefault(folded, user_id)
        firsts.setdefault(folded.split(" ")[0], set()).add(user_id)
    for first, users in firsts.items():
        if len(users) == 1 and first not in handles:
            handles[first] = next(iter(users))
    return handles


def to_notify(
    participants: Iterable[str],
    *,
    author_id: str,
    mentioned: Iterable[str],
    previous_at: datetime | None,
    now: datetime,
) -> list[str]:
    """Who hears of a message beyond the open app because the conversation had been quiet
    (no message for QUIET_SECONDS, or none ever): everyone but the author and those it
    mentions (they hear of it as a mention). Nobody when the conversation is lively."""
    if previous_at is not None and (now - previous_at).total_seconds() < QUIET_SECONDS:
        return []
    skipped = {author_id, *mentioned}
    return [user_id for user_id in participants if user_id not in skipped]


def still_editable(created_at: datetime, now: datetime) -> bool:
    """Whether a message posted at `created_at` may still be edited or deleted."""
    return (now - created_at).total_seconds() <= EDIT_SECONDS


@dataclass(frozen=True, slots=True)
class Bucket:
    """A token bucket: `tokens` left at `at` (epoch seconds)."""

    tokens: float
    at: float


def take_token(
    bucket: Bucket | None,
    now: float,
    *,
    burst: int = RATE_BURST,
    per_second: float = RATE_PER_SECOND,
) -> tuple[Bucket, float]:
    """Take one token: the bucket after, and 0.0 — or, when there is none to take, the
    bucket unchanged and the seconds until there is one. A new person starts full; a
    clock that went back refills nothing."""
    if bucket is None:
        return Bucket(tokens=burst - 1.0, at=now), 0.0
    elapsed = max(0.0, now - bucket.at)
    tokens = min(float(burst), bucket.tokens + elapsed * per_second)
    if tokens < 1.0:
        return bucket, (1.0 - tokens) / per_second
    return Bucket(tokens=tokens - 1.0, at=max(now, bucket.at)), 0.0
