"""A real SMTP server for tests (aiosmtpd), collecting every mail it receives."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.node import free_port


@dataclass
class Inbox:
    """The aiosmtpd handler: keeps each delivered mail, parsed."""

    mails: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.mails.append(parsed)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [mail for mail in self.mails if address in str(mail["To"])]


class SmtpServer:
    """aiosmtpd on 127.0.0.1 and a free port, in its own thread."""

    def __init__(self) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


def body_text(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def link_in(mail: EmailMessage, path: str) -> str:
    """The first link in the mail's text whose path is `path` (e.g. /verify-email)."""
    match = re.search(rf"https?://\S+{re.escape(path)}\?token=[A-Za-z0-9_\-]+", body_text(mail))
    if match is None:
        raise AssertionError(f"no {path} link in:\n{body_text(mail)}")
    return match.group(0)
