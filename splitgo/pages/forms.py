"""Forms: one path from a posted form to the actor, and its refusal back to the field.

A form's inputs are named by the JSON paths of the route's body: `email` for `$.email`,
`split.shares.2.amount` for `$.split.shares[2].amount`. `read_form` reads a POST (its CSRF
token checked first: a 403 otherwise) into a `Form`; `Form.parse` turns it into the JSON
route's own body struct through the same conversion and limits, so the form and the JSON
route refuse the same input with the same problem; `Form.idempotency` hands the form's
hidden key to the actor as the route's `Idempotency-Key` header would (the same scope and
fingerprint as splitgo/web/idempotency.key_for, which reads only the header); `Form.refuse`
puts a refusal — the edge's ProblemError or an actor's DomainError — next to its input in
words, keeping what was typed (passwords aside). What belongs to no input is said at the
top of the form. A page handler:

    form = await read_form(request)
    try:
        body = form.parse(RegisterBody)
        await ask(request, "auth", Register(..., idempotency=form.idempotency(request, body)))
    except REFUSALS as error:
        form.refuse(error)
        return await render(request, "sign_up.html", {"form": form}, status=form.status)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from actors.runtime import DomainError, IdempotencyKey
from actors.runtime.idempotency import KEY_MAX, fingerprint_of
from splitgo.pages import csrf
from splitgo.web.idempotency import SECRET_FIELDS
from splitgo.web.problems import FieldError, ProblemError, from_domain_error, validation_problem

T = TypeVar("T")
REFUSALS = (ProblemError, DomainError)
KEY_FIELD = "idempotency_key"  # the hidden input holding a fresh key per rendered form
META_FIELDS = frozenset({csrf.FIELD, KEY_FIELD})
# what is typed here never comes back in a page
SECRET_INPUTS = frozenset({"password", "new_password", "current_password"})
Converter = Callable[[str], Any]  # raises ValueError("what to do") for a value it refuses

_INDEX = re.compile(r"\[(\d+)\]")
_PATH = re.compile(r"^\$((\.[A-Za-z_][A-Za-z0-9_]*)|(\[\d+\]))+$")


def input_of(path: str) -> str | None:
    """The input named by a problem's field: `$.a.b[2].c` is `a.b.2.c`, a bare name is
    itself; None for the body as a whole (`$`) or a header."""
    if _PATH.match(path):
        return _INDEX.sub(r".\1", path[2:] if path.startswith("$.") else path[1:]).lstrip(".")
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", path):
        return path
    return None


def unflatten(values: Mapping[str, Any]) -> dict[str, Any]:
    """Inputs named by dotted paths as the nested body: `{"a.0.b": 1}` is `{"a": [{"b": 1}]}`
    (numeric parts are list positions, kept in their order)."""
    tree: dict[str, Any] = {}
    for name, value in values.items():
        node = tree
        *path, last = name.split(".")
        for part in path:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"input {name!r} is inside a value")
        node[last] = value
    return {key: _lists(value) for key, value in tree.items()}


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {key: _lists(value) for key, value in node.items()}
    if items and all(key.isdigit() for key in items):
        return [items[key] for key in sorted(items, key=int)]
    return items


_WORDS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"^this field is required$"), lambda m: "Fill this in."),
    (
        re.compile(r"^Expected `str` of length >= (\d+)$"),
        lambda m: "Fill this in." if m[1] == "1" else f"Use at least {m[1]} characters.",
    ),
    (
        re.compile(r"^Expected `str` of length <= (\d+)$"),
        lambda m: f"Use at most {m[1]} characters.",
    ),
    (re.compile(r"^Expected `int` >= (-?\d+)$"), lambda m: f"Enter {m[1]} or more."),
    (re.compile(r"^Expected `int` <= (-?\d+)$"), lambda m: f"Enter {m[1]} or less."),
    (re.compile(r"^Expected `int`.*$"), lambda m: "Enter a whole number."),
    (re.compile(r"^Expected `array` of length >= (\d+)$"), lambda m: f"Choose at least {m[1]}."),
    (re.compile(r"^Expected `array` of length <= (\d+)$"), lambda m: f"Choose at most {m[1]}."),
    (re.compile(r"^Expected (an? .+)$"), lambda m: f"Enter {m[1]}."),
]


def humane(message: str) -> str:
    """A refusal said as what to do ("Use at least 10 characters."), not as a type."""
    text = message.strip()
    for pattern, words in _WORDS:
        found = pattern.match(text)
        if found:
            return words(found)
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def as_problem(error: ProblemError | DomainError) -> ProblemError:
    """The problem the JSON route would answer for this refusal."""
    return error if isinstance(error, ProblemError) else from_domain_error(error)


@dataclass
class Form:
    """What a person typed into one form, and what was refused, input by input."""

    values: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)
    key: str | None = None  # the idempotency key the form was posted with
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def blank(cls, **values: str) -> Form:
        """A form to show first, with some inputs filled in."""
        return cls(values={name: [value] for name, value in values.items()})

    def value(self, name: str) -> str:
        """What was typed into `name` ("" for none, and always for a password)."""
        if name in SECRET_INPUTS:
            return ""
        typed = self.values.get(name)
        return typed[0] if typed else ""

    def all(self, name: str) -> list[str]:
        """Every value of `name` (checkboxes of one name, a multiple select)."""
        return [] if name in SECRET_INPUTS else list(self.values.get(name, []))

    def error(self, name: str) -> str | None:
        return self.errors.get(name)

    @property
    def refused(self) -> bool:
        return bool(self.errors or self.summary)

    def data(
        self,
        names: Iterable[str] | None = None,
        *,
        lists: Iterable[str] = (),
        converters: Mapping[str, Converter] | None = None,
    ) -> dict[str, Any]:
        """The body as the JSON route reads it: blank inputs left out, the inputs in
        `lists` as lists, each value through its converter (a refusal names its input)."""
        wanted = set(names) if names is not None else None
        as_list = set(lists)
        flat: dict[str, Any] = {}
        refused: list[FieldError] = []
        for name, typed in self.values.items():
            if wanted is not None and name.split(".")[0] not in wanted:
                continue
            kept = [value for value in typed if value.strip()]
            if not kept and name not in as_list:
                continue
            convert = (converters or {}).get(name)
            try:
                values = [convert(value) for value in kept] if convert else kept
            except ValueError as error:
                refused.append(FieldError(field=f"$.{name}", message=str(error)))
                continue
            flat[name] = values if name in as_list else values[0]
        if refused:
            raise ProblemError(422, "validation_error", refused[0].message, errors=refused)
        return unflatten(flat)

    def parse(
        self,
        body_type: type[T],
        *,
        lists: Iterable[str] = (),
        converters: Mapping[str, Converter] | None = None,
    ) -> T:
        """The JSON route's body struct made of this form, or the route's 422 problem."""
        names = getattr(body_type, "__struct_fields__", None)
        data = self.data(names, lists=lists, converters=converters)
        try:
            return msgspec.convert(data, body_type, strict=False)
        except msgspec.ValidationError as error:
            raise validation_problem(error) from None

    def refuse(
        self,
        error: ProblemError | DomainError,
        *,
        inputs: Mapping[str, str | None] | None = None,
    ) -> None:
        """Show a refusal at its inputs. `inputs` maps a problem's field to the input that
        shows it, or to None to say it at the top (a hidden input's problem)."""
        problem = as_problem(error)
        self.status = problem.status
        self.headers.update(
            {k: v for k, v in problem.headers.items() if k.lower() == "retry-after"}
        )
        named = dict(inputs or {})
        for found in problem.errors:
            name = named[found.field] if found.field in named else input_of(found.field)
            message = humane(found.message)
            if name is not None and (name in self.values or name in named.values()):
                self.errors.setdefault(name, message)
            elif message not in self.summary:
                self.summary.append(message)
        if not problem.errors:
            self.summary.append(humane(problem.detail))

    def idempotency(
        self, request: web.Request, body: object, *, caller: str | None = None
    ) -> IdempotencyKey | None:
        """The form's key as the owning actor records it: what `key_for` makes of an
        `Idempotency-Key` header with this key on this route (scoped to `caller`, or the
        route alone; fingerprinted over the path's ids and `body`, secrets left out)."""
        if not self.key:
            return None
        if len(self.key) > KEY_MAX or not self.key.isprintable():
            damaged = "This form is damaged. Reload the page and try again."
            raise ProblemError(400, "invalid_idempotency_key", damaged)
        route = request.match_info.route.resource
        template = route.canonical if route is not None else request.path
        scope = f"{caller or 'anyone'} {request.method} {template}"
        plain = msgspec.to_builtins(body)
        if isinstance(plain, dict):
            plain = {name: value for name, value in plain.items() if name not in SECRET_FIELDS}
        print_ = fingerprint_of(dict(request.match_info), plain)
        return IdempotencyKey(scope=scope[:400], key=self.key, fingerprint=print_)


async def read_form(request: web.Request) -> Form:
    """The posted form, once its CSRF token is checked (csrf.CsrfRefused otherwise)."""
    posted = await request.post()
    token = posted.get(csrf.FIELD)
    csrf.check(request, token if isinstance(token, str) else None)
    values: dict[str, list[str]] = {}
    for name in posted:
        if name not in META_FIELDS and name not in values:
            values[name] = [v for v in posted.getall(name) if isinstance(v, str)]
    key = posted.get(KEY_FIELD)
    return Form(values=values, key=key.strip() if isinstance(key, str) and key.strip() else None)
