"""How the Splits routes ask the splits actor, and read the group from the path.

A refusal that names a body field (`details["field"]`) is answered as a problem naming
that field as a JSON path into the body, the way the edge names every field error.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from actors.runtime import DomainError, Message
from splitgo.web.actors import ask
from splitgo.web.problems import FieldError, ProblemError, from_domain_error

# path and query parameters: named as they are, not as paths into the body
BARE_FIELDS = frozenset({"group_id", "expense_id", "settlement_id", "cursor", "limit"})


def json_path_problem(error: DomainError) -> ProblemError | None:
    """The actor's error with its `details["field"]` made a JSON path into the body (path
    and query parameters keep their bare names)."""
    field = error.details.get("field")
    if not isinstance(field, str) or not field or field.startswith("$") or field in BARE_FIELDS:
        return None
    problem = from_domain_error(error)
    path = "$." + field.replace(".percent_bp", ".percent")
    problem.errors = [FieldError(field=path, message=error.message)]
    return problem


async def ask_splits(
    request: web.Request, message: Message, *, timeout: float | None = None
) -> Any:
    """Ask the splits actor; a refusal naming a body field names it as a JSON path."""
    return await ask(request, "splits", message, timeout=timeout, refusal=json_path_problem)


def group_id(request: web.Request) -> str:
    return request.match_info["id"]
