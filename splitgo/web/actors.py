"""How the edge asks an actor: one `ask` for every route module.

A refusal (a typed `DomainError`) passes through to the `problems` middleware, which maps
its code to a problem response; a route whose actor names body fields by their bare names
passes `refusal` to say them as JSON paths. `find_user` is the one "this user, or None"
that the web and the bot share.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from actors.auth.messages import FindUserByChat, FindUserByEmail, GetUser, UserNotFound, UserView
from actors.runtime import ActorRef, ActorSystem, DomainError, Message
from splitgo.web.keys import SERVICES
from splitgo.web.problems import ProblemError

# a refusal said the edge's way, or None to let the middleware say it
Refusal = Callable[[DomainError], ProblemError | None]


def actor(request: web.Request, name: str) -> ActorRef:
    return request.app[SERVICES].system.ref(name)


async def ask(
    request: web.Request,
    name: str,
    message: Message,
    *,
    key: object = None,
    timeout: float | None = None,
    refusal: Refusal | None = None,
) -> Any:
    """The actor's reply; its refusal as `refusal` says it (when given and it does)."""
    try:
        return await actor(request, name).ask(message, key=key, timeout=timeout)
    except DomainError as error:
        problem = refusal(error) if refusal is not None else None
        if problem is None:
            raise
        raise problem from None


async def find_user(
    system: ActorSystem, message: GetUser | FindUserByEmail | FindUserByChat
) -> UserView | None:
    """The user the message names, or None when there is no such user."""
    try:
        user: UserView = await system.ref("auth").ask(message)
    except UserNotFound:
        return None
    return user
