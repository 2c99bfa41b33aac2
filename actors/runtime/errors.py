"""Typed errors: domain errors with stable codes, and the runtime's own failures.

A handler raises a `DomainError` subclass; an `ask` re-raises the same class at the
caller, in this process or on another node, because the class is found again by its
`code`. The edges turn the `category` into an HTTP status or a bot reply.
"""

from __future__ import annotations

from typing import Any, ClassVar

import asyncpg

from transport import Message

# What kind of refusal an error is; the HTTP edge maps each to one status.
CATEGORIES = (
    "invalid",
    "unauthenticated",
    "forbidden",
    "not_found",
    "conflict",
    "rate_limited",
    "unavailable",
    "internal",
)


class DomainError(Exception):
    """A refusal a handler chose to make, with a stable machine `code`.

    Subclasses set `code` and `category` as class attributes and may take any constructor
    arguments, as long as they pass a message (and optional details) to this one.
    """

    code: ClassVar[str] = "domain_error"
    category: ClassVar[str] = "invalid"
    _registry: ClassVar[dict[str, type[DomainError]]] = {}

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.category not in CATEGORIES:
            raise TypeError(f"{cls.__qualname__}.category must be one of {CATEGORIES}")
        if "code" in cls.__dict__:
            known = DomainError._registry.get(cls.code)
            if known is not None and known.__qualname__ != cls.__qualname__:
                raise TypeError(f"error code {cls.code!r} is taken by {known.__qualname__}")
            DomainError._registry[cls.code] = cls

    @classmethod
    def for_code(cls, code: str) -> type[DomainError] | None:
        return cls._registry.get(code)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class RemoteError(DomainError):
    """A domain error whose class this process does not know; keeps the code it came with."""

    code = "remote_error"

    def __init__(
        self, message: str, *, code: str, category: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.code = code  # type: ignore[misc]
        self.category = category if category in CATEGORIES else "internal"  # type: ignore[misc]


class InvalidInput(DomainError):
    """The database refused a value as data (a NUL in a string, a number out of range):
    bad input, not a crash; retrying cannot help."""

    code = "invalid_input"
    category = "invalid"

    @classmethod
    def from_database(cls, error: Exception) -> InvalidInput:
        # the server's message names the problem, never the value
        reason = str(error).split("\n")[0][:200]
        return cls(f"A value was refused by the database: {reason}")


class DatabaseUnavailable(DomainError):
    """The database could not be reached for this request; it changed nothing. Retry."""

    code = "database_unavailable"
    category = "unavailable"


# asyncpg's own errors that mean "no usable connection", whatever the statement was
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.CannotConnectNowError,  # 57P03: starting up, shutting down, in recovery
    asyncpg.AdminShutdownError,  # 57P01: the server was stopped under the connection
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.TooManyConnectionsError,  # 53300
    asyncpg.ConnectionDoesNotExistError,  # the connection was lost mid-statement
)
RETRY_AFTER_S = 2


def database_down(error: BaseException) -> bool:
    """True when `error` says the database is unreachable, not that a statement is wrong."""
    if isinstance(error, _CONNECTION_ERRORS):
        return True
    if isinstance(error, asyncpg.InterfaceError):
        text = str(error)
        return "connection" in text and ("closed" in text or "lost" in text)
    if isinstance(error, OSError | TimeoutError):
        # a socket error is the database's only when asyncpg was connecting or talking
        return _raised_in_asyncpg(error)
    return False


def _raised_in_asyncpg(error: BaseException) -> bool:
    trace = error.__traceback__
    while trace is not None:
        if str(trace.tb_frame.f_globals.get("__name__", "")).startswith("asyncpg"):
            return True
        trace = trace.tb_next
    return False


def refusal_for(error: Exception, *, asking: bool) -> DomainError | None:
    """The refusal a handler's crash really is, or None for a crash.

    A value the database refuses is bad input whatever the message (retrying cannot
    help). An ask the database could not serve is refused at once as unavailable, rather
    than crashing the shard and leaving the asker to time out; a tell keeps the crash,
    retry and dead-letter path, so a message that must happen is never dropped.
    """
    if isinstance(error, asyncpg.DataError):
        return InvalidInput.from_database(error)
    if asking and database_down(error):
        return DatabaseUnavailable(
            "the database is unreachable for the moment; try again shortly",
            details={"retry_after": RETRY_AFTER_S},
        )
    return None


class AskTimeout(DomainError):
    """No reply came before the ask's deadline."""

    code = "ask_timeout"
    category = "unavailable"


class HandlerFailed(DomainError):
    """The handler crashed on every attempt; the message is in the dead letters."""

    code = "handler_failed"
    category = "internal"


class UnhandledMessage(DomainError):
    """The actor has no handler for this message type."""

    code = "unhandled_message"
    category = "internal"


class UnknownActor(DomainError):
    """No actor type of that name is known to this node."""

    code = "unknown_actor"
    category = "internal"


class SystemStopping(DomainError):
    """The node is shutting down and takes no new work."""

    code = "system_stopping"
    category = "unavailable"


class ReplyLater:
    """What a handler returns to answer its ask itself, later, with `ActorSystem.reply`
    (e.g. one that hands a question on and must not wait for the answer): the runtime
    sends no reply for it. The message counts as handled when the handler returns."""

    __slots__ = ()


REPLY_LATER = ReplyLater()


class Failure(Message, frozen=True, kw_only=True):
    """The reply to an ask whose handler raised: enough to raise the same error again."""

    code: str
    category: str
    message: str
    details: dict[str, Any] = {}

    @classmethod
    def of(cls, error: DomainError) -> Failure:
        return cls(
            code=error.code, category=error.category, message=error.message, details=error.details
        )

    def to_error(self) -> DomainError:
        error_type = DomainError.for_code(self.code)
        if error_type is None or error_type is RemoteError:
            return RemoteError(
                self.message, code=self.code, category=self.category, details=self.details
            )
        # Rebuild without the subclass's own __init__, whose arguments we do not have.
        error = error_type.__new__(error_type)
        DomainError.__init__(error, self.message, details=self.details)
        return error
