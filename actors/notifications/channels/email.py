"""The email channel: a port (`EmailChannel`) and two adapters.

- `SmtpEmail` sends through an SMTP server with aiosmtplib (SPLITGO_SMTP_* settings).
- `FolderEmail` writes each mail as an `.eml` file in a folder: the embedded default, so
  a new user with no mail server can still open their verification link.

Both build the same multipart/alternative message (plain text first, HTML second) and make
one try per `send`; retries are the actor's business. A failure raises
`EmailDeliveryFailed` with the provider's answer. Nothing here logs a mail's content: the
bodies carry single-use tokens inside their links.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Literal, Protocol

import aiosmtplib
import structlog

from actors.notifications.channels import DeliveryFailed

log = structlog.get_logger("actors.notifications.email")

TlsMode = Literal["none", "starttls", "tls"]
TLS_MODES: tuple[TlsMode, ...] = ("none", "starttls", "tls")
# The usual port of each mode: submission with STARTTLS, implicit TLS, plain relay.
DEFAULT_PORTS: dict[TlsMode, int] = {"starttls": 587, "tls": 465, "none": 25}
DEFAULT_SENDER = "splitgo <no-reply@localhost>"

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class EmailDeliveryFailed(DeliveryFailed):
    """The mail was not handed over; `answer` is the server's reply or the local error."""

    code = "email_delivery_failed"


@dataclass(frozen=True, slots=True)
class Mail:
    """One rendered mail to one address (templates.py makes them)."""

    to: str
    subject: str
    text: str
    html: str
    to_name: str | None = None
    # which template made it: for logs and file names (never the content)
    kind: str = "mail"


class EmailChannel(Protocol):
    """The port: deliver one mail, once; return the provider's answer."""

    async def send(self, mail: Mail) -> str:
        """Raises EmailDeliveryFailed when the mail was not accepted."""
        ...


def _one_line(value: str) -> str:
    # a CR or LF in a header value would let it forge headers; the email package refuses
    # them, so collapse every control character first
    return " ".join(_CONTROL.sub(" ", value).split())


def sender_address(sender: str) -> str:
    """The bare address of a From value such as `splitgo <no-reply@example.com>`."""
    return parseaddr(sender)[1]


def build_message(mail: Mail, sender: str, *, readable: bool = False) -> EmailMessage:
    """The MIME message: multipart/alternative with the text part first, then the HTML.

    `readable` writes both parts as 8-bit text rather than quoted-printable, so a mail
    saved to disk shows its link intact in any text editor (for SMTP the default encoding
    is safer: not every server takes 8-bit data). Raises EmailDeliveryFailed (permanent)
    for an address that cannot be written into a header.
    """
    message = EmailMessage()
    try:
        message["From"] = _one_line(sender)
        name = _one_line(mail.to_name or "")
        if name:
            message["To"] = Address(display_name=name, addr_spec=mail.to)
        else:
            message["To"] = mail.to
    except (ValueError, IndexError, TypeError) as error:
        raise EmailDeliveryFailed(
            f"the address cannot be used: {type(error).__name__}", permanent=True
        ) from None
    message["Subject"] = _one_line(mail.subject)
    message["Date"] = formatdate(usegmt=True)
    domain = sender_address(sender).rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(domain=domain)
    # RFC 3834: an automatic message; well-behaved autoresponders do not answer it
    message["Auto-Submitted"] = "auto-generated"
    cte = "8bit" if readable else None
    message.set_content(mail.text, subtype="plain", cte=cte)
    message.add_alternative(mail.html, subtype="html", cte=cte)
    return message


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """How to reach the SMTP server (SPLITGO_SMTP_HOST, _PORT, _TLS, _USER, _PASSWORD,
    _SENDER). `port` None picks the usual port of the TLS mode (587, 465 or 25)."""

    host: str
    port: int | None = None
    tls: TlsMode = "starttls"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = DEFAULT_SENDER
    timeout: float = 30.0  # seconds per SMTP step (connect, each command)

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("SPLITGO_SMTP_HOST: the SMTP host is empty")
        if self.tls not in TLS_MODES:
            raise ValueError(f"SPLITGO_SMTP_TLS={self.tls!r}: use none, starttls or tls")
        if self.port is not None and not 0 < self.port <= 65535:
            raise ValueError(f"SPLITGO_SMTP_PORT={self.port!r}: not a TCP port")
        if bool(self.user) != bool(self.password):
            raise ValueError("SPLITGO_SMTP_USER and SPLITGO_SMTP_PASSWORD go together")
        if "@" not in sender_address(self.sender):
            raise ValueError(f"SPLITGO_SMTP_SENDER={self.sender!r}: no email address in it")
        if self.timeout <= 0:
            raise ValueError("the SMTP timeout must be positive")

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else DEFAULT_PORTS[self.tls]


class SmtpEmail:
    """Sends each mail over its own SMTP connection (aiosmtplib).

    One connection per mail keeps it simple and survives server restarts; transactional
    mail (sign-up, reset) is far too rare for connection reuse to matter.
    """

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._from = sender_address(settings.sender)

    async def send(self, mail: Mail) -> str:
        s = self.settings
        message = build_message(mail, s.sender)
        try:
            # aiosmtplib's timeout bounds each step; this bounds the whole conversation
            async with asyncio.timeout(s.timeout * 4):
                errors, response = await aiosmtplib.send(
                    message,
                    sender=self._from,
                    recipients=[mail.to],
                    hostname=s.host,
                    port=s.effective_port,
                    username=s.user or None,
                    password=s.password or None,
                    use_tls=s.tls == "tls",
                    # False, not None: None would upgrade whenever the server offers it
                    start_tls=s.tls == "starttls",
                    timeout=s.timeout,
                )
        except aiosmtplib.SMTPRecipientsRefused as error:
            answers = [f"{r.code} {r.message}" for r in error.recipients]
            # 5xx for the recipient: the address does not exist or is refused for good
            permanent = bool(error.recipients) and all(
                500 <= r.code < 600 for r in error.recipients
            )
            raise EmailDeliveryFailed("; ".join(answers), permanent=permanent) from None
        except aiosmtplib.SMTPResponseException as error:
            raise EmailDeliveryFailed(f"{error.code} {error.message}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            # connection refused, DNS, TLS handshake, timeouts: all worth another try
            raise EmailDeliveryFailed(f"{type(error).__name__}: {error}") from None
        if errors:  # one recipient only, so any refusal is ours
            answers = [f"{r.code} {r.message}" for r in errors.values()]
            raise EmailDeliveryFailed("; ".join(answers))
        return str(response)


class FolderEmail:
    """Writes each mail as an `.eml` file into `folder` and logs the file's path.

    For the embedded default with no SMTP server: the user opens the file (any mail
    program, or a text editor: the parts are plain 8-bit text) and clicks the link. The
    folder and files are private to the owner (0700 / 0600): the links are credentials.
    """

    def __init__(self, folder: Path, *, sender: str = DEFAULT_SENDER) -> None:
        self.folder = folder
        self.sender = sender

    async def send(self, mail: Mail) -> str:
        message = build_message(mail, self.sender, readable=True)
        data = message.as_bytes()
        try:
            path = await asyncio.to_thread(self._write, mail.kind, data)
        except OSError as error:
            raise EmailDeliveryFailed(f"{type(error).__name__}: {error}") from None
        # the path is safe to log; the token is inside the file only
        log.info("email_written_to_file", kind=mail.kind, path=str(path))
        return f"written to {path}"

    def _write(self, kind: str, data: bytes) -> Path:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        safe_kind = re.sub(r"[^a-z0-9_-]+", "-", kind.lower()) or "mail"
        path = self.folder / f"{stamp}-{safe_kind}-{secrets.token_hex(4)}.eml"
        partial = path.with_suffix(".eml.partial")
        # written whole, then renamed: a reader never sees half a mail
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
            os.replace(partial, path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return path.resolve()
