"""The notifications actor's email channel against a real SMTP server (aiosmtpd, started
here) and a real PostgreSQL: mails arrive as text + HTML with working links, an event is
mailed once however often it arrives, failures are retried with backoff until the server
answers or the tries run out, and the folder fallback writes a readable .eml."""

from __future__ import annotations

import asyncio
import email
import os
import re
import secrets
import socket
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
import structlog
from aiosmtpd.controller import Controller

from actors.auth import messages as auth_messages
from actors.auth.messages import (
    EmailVerificationRequested,
    EmailVerified,
    InvalidToken,
    PasswordChanged,
    PasswordResetRequested,
    VerifyEmail,
)
from actors.notifications import store
from actors.notifications.actor import Notifications
from actors.notifications.channels.email import (
    EmailChannel,
    FolderEmail,
    SmtpEmail,
    SmtpSettings,
)
from actors.notifications.messages import NOTIFICATIONS, notifications_key
from actors.notifications.store import Attempt, Delivery
from actors.runtime import (
    Actor,
    ActorSystem,
    Backoff,
    Message,
    Outbox,
    PgDeadLetterStore,
    handles,
)
from splitgo.db import apply_schema
from transport import Codec, Envelope, MemoryTransport

PUBLIC_URL = "http://127.0.0.1:8080"
SENDER = "splitgo <no-reply@splitgo.test>"
# tiny delays, no jitter: the tests see the schedule they asked for
FAST = Backoff(initial=0.05, maximum=0.2, jitter=0.0)


# ── an SMTP server the test controls ───────────────────────────────────────────────────


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class MailSink:
    """aiosmtpd handler: keeps what arrives; `refuse` answers RCPT with that reply."""

    refuse: str | None = None
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.refuse is not None:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 2.0.0 Ok: queued as T3ST"


class SmtpServer:
    """A real SMTP server on 127.0.0.1:`port`, in aiosmtpd's own thread."""

    def __init__(self, port: int, sink: MailSink | None = None) -> None:
        self.port = port
        self.sink = sink or MailSink()
        self._controller = Controller(self.sink, hostname="127.0.0.1", port=port)
        self.running = False

    @property
    def received(self) -> list[Received]:
        return self.sink.received

    async def start(self) -> None:
        await asyncio.to_thread(self._controller.start)
        self.running = True

    async def stop(self) -> None:
        if self.running:
            self.running = False
            await asyncio.to_thread(self._controller.stop)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def smtp_to(port: int) -> SmtpEmail:
    return SmtpEmail(
        SmtpSettings(host="127.0.0.1", port=port, tls="none", sender=SENDER, timeout=2.0)
    )


@pytest.fixture
async def servers() -> AsyncIterator[Callable[..., SmtpServer]]:
    """Makes SMTP servers (not started); stops them after the test."""
    made: list[SmtpServer] = []

    def make(port: int | None = None, sink: MailSink | None = None) -> SmtpServer:
        server = SmtpServer(port or free_port(), sink)
        made.append(server)
        return server

    yield make
    for server in made:
        await server.stop()


@pytest.fixture
async def smtp(servers: Callable[..., SmtpServer]) -> SmtpServer:
    server = servers()
    await server.start()
    return server


# ── an auth stand-in: the auth actor is built apart; this one plays its part ───────────


class StandInRegister(Message, frozen=True):
    user_id: str
    email: str
    name: str


class StandInAuth(Actor):
    """Issues a verification token and hands the event over through the outbox, as auth
    does on sign-up, and answers auth's own `VerifyEmail` for the tokens it issued."""

    def __init__(self) -> None:
        self.tokens: dict[str, tuple[str, str]] = {}

    @handles(StandInRegister)
    async def register(self, message: StandInRegister) -> None:
        token = secrets.token_urlsafe(32)
        event = EmailVerificationRequested(
            user_id=message.user_id, email=message.email, name=message.name, token=token
        )
        async with self.transaction() as tx:
            if tx.duplicate:
                return
            await tx.tell(NOTIFICATIONS, event, key=message.user_id)
        self.tokens[token] = (message.user_id, message.email)

    @handles(VerifyEmail)
    async def verify(self, message: VerifyEmail) -> EmailVerified:
        found = self.tokens.pop(message.token, None)  # single use
        if found is None:
            raise InvalidToken("the verification link is not valid")
        return EmailVerified(user_id=found[0], email=found[1])


# ── the system ─────────────────────────────────────────────────────────────────────────

MakeSystem = Callable[..., Awaitable[ActorSystem]]


@pytest.fixture
async def db(pool: asyncpg.Pool) -> asyncpg.Pool:
    await apply_schema(pool)
    return pool


@pytest.fixture
async def make_system(db: asyncpg.Pool) -> AsyncIterator[MakeSystem]:
    systems: list[ActorSystem] = []

    async def make(
        channel: EmailChannel,
        *,
        backoff: Backoff = FAST,
        max_attempts: int = 6,
        with_auth: bool = False,
    ) -> ActorSystem:
        codec = Codec()
        system = ActorSystem(
            # the codec check: every message and timer crosses the codec, as on Redis
            MemoryTransport(node_id=f"node-{len(systems)}", codec=codec),
            codec=codec,
            dead_letters=PgDeadLetterStore(db),
            outbox=Outbox(db, interval=0.05),
        )
        await system.start()
        systems.append(system)
        system.spawn(
            Notifications,
            NOTIFICATIONS,
            factory=lambda: Notifications(
                db, channel, public_url=PUBLIC_URL, backoff=backoff, max_attempts=max_attempts
            ),
            shards=2,
            key=notifications_key,
        )
        if with_auth:
            codec.register_module(auth_messages)  # its replies, as the node registers them
            system.spawn(StandInAuth, "auth")
        return system

    yield make
    for system in systems:
        await system.stop(1.0)


async def eventually(check: Callable[[], Awaitable[bool] | bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            outcome = check()
            if not isinstance(outcome, bool):
                outcome = await outcome
            if outcome:
                return
            await asyncio.sleep(0.01)


async def only_delivery(db: asyncpg.Pool) -> Delivery:
    [delivery] = await store.list_deliveries(db)
    return delivery


async def delivery_status(db: asyncpg.Pool) -> str | None:
    deliveries = await store.list_deliveries(db)
    return deliveries[0].status if deliveries else None


async def tries(db: asyncpg.Pool) -> list[Attempt]:
    deliveries = await store.list_deliveries(db)
    return await store.attempts(db, deliveries[0].id) if deliveries else []


def verification(token: str = "tok-verify-1") -> EmailVerificationRequested:
    return EmailVerificationRequested(
        user_id="user-1", email="ada@example.com", name="Ada <Lovelace>", token=token
    )


def body(message: EmailMessage, kind: str) -> str:
    part = message.get_body((kind,))
    assert part is not None, f"no text/{kind} part"
    content: str = part.get_content()
    return content


def link_in(text: str) -> str:
    [link] = re.findall(r"https?://\S+token=\S+", text)
    return str(link)


# ── the tests ──────────────────────────────────────────────────────────────────────────


async def test_a_verification_mail_arrives_with_text_html_and_the_link(
    smtp: SmtpServer, make_system: MakeSystem, db: asyncpg.Pool
) -> None:
    """Told the event, the actor mails it: multipart/alternative, the link in both parts,
    one delivery row marked sent with the server's answer, and no token in any log."""
    event = verification(token="tok-Zq_9-abc")
    with structlog.testing.capture_logs() as logs:
        system = await make_system(smtp_to(smtp.port))
        await system.ref(NOTIFICATIONS).tell(event)
        await eventually(lambda: len(smtp.received) == 1)
        await eventually(lambda: _is(delivery_status(db), "sent"))
        # the actor logs after the row says sent: wait for the line as well
        await eventually(lambda: any(entry["event"] == "notification_sent" for entry in logs))

    [mail] = smtp.received
    assert mail.mail_from == "no-reply@splitgo.test"
    assert mail.rcpt_tos == ["ada@example.com"]
    message = mail.message
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Subject"] == "Confirm your email address for splitgo"
    assert message["To"] == '"Ada <Lovelace>" <ada@example.com>'
    link = f"{PUBLIC_URL}/verify-email?token=tok-Zq_9-abc"
    assert link_in(body(message, "plain")) == link
    html = body(message, "html")
    assert f'href="{link}"' in html
    assert "Ada &lt;Lovelace&gt;" in html

    delivery = await only_delivery(db)
    assert (delivery.channel, delivery.recipient, delivery.user_id) == (
        "email",
        "ada@example.com",
        "user-1",
    )
    assert (delivery.event_type, delivery.attempts) == ("EmailVerificationRequested", 1)
    assert delivery.sent_at is not None
    [attempt] = await store.attempts(db, delivery.id)
    assert attempt.status == "sent"
    assert "Ok: queued as T3ST" in attempt.provider_answer
    assert delivery.last_answer == attempt.provider_answer
    # the token lived in the row only while the mail was pending
    assert await db.fetchval("SELECT payload FROM notification_deliveries") is None
    assert "tok-Zq_9-abc" not in repr(logs)


async def test_the_link_in_the_mail_verifies_the_address(
    smtp: SmtpServer, make_system: MakeSystem
) -> None:
    """Sign-up through the outbox (as auth hands events over): the link's token, sent back
    with auth's VerifyEmail, verifies the address, once."""
    system = await make_system(smtp_to(smtp.port), with_auth=True)
    await system.ref("auth").tell(
        StandInRegister(user_id="user-7", email="grace@example.com", name="Grace")
    )
    await eventually(lambda: len(smtp.received) == 1)

    link = link_in(body(smtp.received[0].message, "plain"))
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_URL
    assert parts.path == "/verify-email"
    [token] = parse_qs(parts.query)["token"]
    verified = await system.ref("auth").ask(VerifyEmail(token=token))
    assert verified == EmailVerified(user_id="user-7", email="grace@example.com")
    with pytest.raises(InvalidToken):
        await system.ref("auth").ask(VerifyEmail(token=token))


async def test_each_auth_event_arrives_as_its_own_mail(
    smtp: SmtpServer, make_system: MakeSystem, db: asyncpg.Pool
) -> None:
    """A reset request and a password change each arrive as their own mail, with the reset link and
    no token respectively, and both deliveries are recorded as sent."""
    system = await make_system(smtp_to(smtp.port))
    ref = system.ref(NOTIFICATIONS)
    await ref.tell(
        PasswordResetRequested(user_id="u2", email="b@example.com", name="B", token="tok-reset")
    )
    await ref.tell(PasswordChanged(user_id="u3", email="c@example.com"))
    await eventually(lambda: len(smtp.received) == 2)

    by_rcpt = {mail.rcpt_tos[0]: mail.message for mail in smtp.received}
    reset = by_rcpt["b@example.com"]
    assert reset["Subject"] == "Reset your splitgo password"
    assert link_in(body(reset, "plain")) == f"{PUBLIC_URL}/reset-password?token=tok-reset"
    changed = by_rcpt["c@example.com"]
    assert changed["Subject"] == "Your splitgo password was changed"
    assert "token" not in body(changed, "plain")
    await eventually(
        lambda: _true_async(
            store.list_deliveries(db), lambda ds: {d.status for d in ds} == {"sent"}
        )
    )


async def test_the_same_event_delivered_twice_is_mailed_once(
    smtp: SmtpServer, make_system: MakeSystem, db: asyncpg.Pool
) -> None:
    """A redelivery keeps its envelope id: the inbox and the delivery key make it a no-op."""
    system = await make_system(smtp_to(smtp.port))
    event = verification()
    shard = system.ref(NOTIFICATIONS)._route.shard_for(event)
    envelope = Envelope(
        id="event-42", target=NOTIFICATIONS, shard=shard, kind="tell", body=event, trace_id="t42"
    )
    await system.transport.send(envelope)
    await eventually(lambda: len(smtp.received) == 1)
    await system.transport.send(envelope)
    await system.transport.send(envelope)
    await asyncio.sleep(0.3)

    assert len(smtp.received) == 1
    delivery = await only_delivery(db)
    assert delivery.event_id == "event-42"
    assert delivery.attempts == 1
    inbox = "SELECT count(*) FROM runtime_inbox WHERE actor = $1"
    assert await db.fetchval(inbox, NOTIFICATIONS) == 1
    assert await db.fetchval("SELECT count(*) FROM runtime_dead_letters") == 0


async def test_smtp_down_is_retried_with_backoff_until_the_server_answers(
    servers: Callable[..., SmtpServer], make_system: MakeSystem, db: asyncpg.Pool
) -> None:
    """Nothing listens at first: each try fails and the next waits longer; once the
    server is up the mail goes out, and every try is on record with its answer."""
    server = servers()  # its port is chosen, nothing listens on it yet
    system = await make_system(smtp_to(server.port), max_attempts=50)
    await system.ref(NOTIFICATIONS).tell(verification())
    await eventually(lambda: _len_at_least(tries(db), 3))
    await server.start()
    await eventually(lambda: len(server.received) == 1)
    await eventually(lambda: _is(delivery_status(db), "sent"))

    delivery = await only_delivery(db)
    attempts = await store.attempts(db, delivery.id)
    assert len(attempts) == delivery.attempts >= 4
    assert [a.attempt for a in attempts] == list(range(1, len(attempts) + 1))
    assert {a.status for a in attempts[:-1]} == {"failed"}
    assert attempts[-1].status == "sent"
    assert all("SMTPConnectError" in a.provider_answer for a in attempts[:-1])
    # each wait is at least the backoff's delay, and the delays grow (0.05, 0.1, 0.2)
    for n in (1, 2):
        gap = (attempts[n].started_at - attempts[n - 1].started_at).total_seconds()
        assert gap >= FAST.base(n) - 0.005, (n, gap)
    assert len(server.received) == 1


async def test_past_the_limit_the_delivery_is_marked_failed_with_its_tries(
    make_system: MakeSystem, db: asyncpg.Pool
) -> None:
    """Three tries, all refused: failed for good, every try recorded, the token dropped;
    a redelivery of the event in the middle adds no try."""
    system = await make_system(smtp_to(free_port()), max_attempts=3)
    event = verification()
    envelope = Envelope(
        id="event-9",
        target=NOTIFICATIONS,
        shard=system.ref(NOTIFICATIONS)._route.shard_for(event),
        kind="tell",
        body=event,
    )
    await system.transport.send(envelope)
    await eventually(lambda: _len_at_least(tries(db), 1))
    await system.transport.send(envelope)
    await eventually(lambda: _is(delivery_status(db), "failed"))
    await asyncio.sleep(0.4)  # past any further backoff: nothing more happens

    delivery = await only_delivery(db)
    assert delivery.attempts == 3
    assert delivery.failed_at is not None
    assert delivery.sent_at is None
    assert delivery.next_attempt_at is None
    attempts = await store.attempts(db, delivery.id)
    assert [(a.attempt, a.status) for a in attempts] == [
        (1, "failed"),
        (2, "failed"),
        (3, "failed"),
    ]
    assert all(a.provider_answer.startswith("SMTPConnectError") for a in attempts)
    assert delivery.last_answer == attempts[-1].provider_answer
    assert await db.fetchval("SELECT payload FROM notification_deliveries") is None
    assert await store.list_deliveries(db, status="failed") == [delivery]
    # a failed delivery is the actor's own dead letter; the message itself was handled
    assert await db.fetchval("SELECT count(*) FROM runtime_dead_letters") == 0


async def test_a_refused_recipient_is_not_retried(
    servers: Callable[..., SmtpServer], make_system: MakeSystem, db: asyncpg.Pool
) -> None:
    """A recipient the server permanently refuses fails after one try that records the server's
    answer, with no mail delivered."""
    server = servers(sink=MailSink(refuse="550 5.1.1 <ada@example.com>: no such user"))
    await server.start()
    system = await make_system(smtp_to(server.port), max_attempts=6)
    await system.ref(NOTIFICATIONS).tell(verification())
    await eventually(lambda: _is(delivery_status(db), "failed"))

    [attempt] = await tries(db)
    assert attempt.provider_answer == "550 5.1.1 <ada@example.com>: no such user"
    assert server.received == []


async def test_a_pending_retry_survives_a_restart(
    servers: Callable[..., SmtpServer], make_system: MakeSystem, db: asyncpg.Pool
) -> None:
    """In-memory timers die with the node; the next node's actor re-arms the retry from
    the database and delivers, with no extra try."""
    server = servers()
    slow = Backoff(initial=0.5, maximum=0.5, jitter=0.0)
    first = await make_system(smtp_to(server.port), backoff=slow)
    await first.ref(NOTIFICATIONS).tell(verification())
    await eventually(lambda: _len_at_least(tries(db), 1))
    await first.stop(1.0)  # its timer for try 2 is cancelled
    await server.start()

    await make_system(smtp_to(server.port), backoff=slow)
    await eventually(lambda: len(server.received) == 1)
    await eventually(lambda: _is(delivery_status(db), "sent"))
    assert [(a.attempt, a.status) for a in await tries(db)] == [(1, "failed"), (2, "sent")]


async def test_folder_email_writes_a_readable_eml_and_logs_its_path(
    tmp_path: Path, make_system: MakeSystem, db: asyncpg.Pool
) -> None:
    """The embedded default: no SMTP, the mail lands in a private folder as an .eml whose
    link shows intact in the raw file; the log names the file, never the token."""
    folder = tmp_path / "mail"
    event = PasswordResetRequested(
        user_id="u5", email="e@example.com", name="Émile", token="tok-folder/+="
    )
    with structlog.testing.capture_logs() as logs:
        system = await make_system(FolderEmail(folder, sender=SENDER))
        await system.ref(NOTIFICATIONS).tell(event)
        await eventually(lambda: _is(delivery_status(db), "sent"))

    [path] = list(folder.iterdir())
    assert path.suffix == ".eml"
    assert "password_reset" in path.name
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    raw = path.read_bytes()
    link = f"{PUBLIC_URL}/reset-password?token=tok-folder%2F%2B%3D"
    assert link.encode() in raw  # readable as it is, in any text editor
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message.get_content_type() == "multipart/alternative"
    assert link_in(body(message, "plain")) == link
    assert f'href="{link}"' in body(message, "html")
    assert message["To"] == "Émile <e@example.com>"

    [attempt] = await tries(db)
    assert attempt.provider_answer == f"written to {path}"
    written = [entry for entry in logs if entry["event"] == "email_written_to_file"]
    assert [entry["path"] for entry in written] == [str(path)]
    assert "tok-folder" not in repr(logs)


async def test_an_unwritable_folder_is_a_failed_try(
    tmp_path: Path, make_system: MakeSystem, db: asyncpg.Pool
) -> None:
    """When the mail folder cannot be created each try fails with the OS error recorded, until the
    delivery is marked failed."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    system = await make_system(FolderEmail(blocker / "mail"), max_attempts=2)
    await system.ref(NOTIFICATIONS).tell(verification())
    await eventually(lambda: _is(delivery_status(db), "failed"))
    attempts = await tries(db)
    assert [a.status for a in attempts] == ["failed", "failed"]
    assert attempts[0].provider_answer.startswith(("FileExistsError", "NotADirectoryError"))


# ── small async predicates ─────────────────────────────────────────────────────────────


async def _is(value: Awaitable[object], expected: object) -> bool:
    return await value == expected


async def _len_at_least(value: Awaitable[list[Any]], n: int) -> bool:
    return len(await value) >= n


async def _true_async(value: Awaitable[Any], check: Callable[[Any], bool]) -> bool:
    return check(await value)
