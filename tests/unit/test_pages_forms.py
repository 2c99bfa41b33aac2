"""Forms on the pages take the JSON route's path: a form becomes the route's own body
struct and is refused with the route's own problem, which comes back at the input it names
in words, what was typed kept (never a password); the form's hidden key reaches the actor
as the route's Idempotency-Key header would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from actors.auth.messages import InvalidCredentials, TooManyAttempts, WeakPassword
from splitgo.pages.forms import Form, humane, input_of, unflatten
from splitgo.pages.money import parse_money
from splitgo.web.auth import RegisterBody, ResetBody
from splitgo.web.idempotency import key_for
from splitgo.web.problems import FieldError, ProblemError, validation_problem

TYPED = {"name": "Ada", "email": "ada@example.com", "password": "correct horse battery 42"}


def posted(**values: str) -> Form:
    """A form as read from a POST: every input with what was typed."""
    return Form(values={name: [value] for name, value in values.items()})


def json_problem(body: dict[str, Any], body_type: type[Any]) -> ProblemError:
    """What the JSON route answers for `body` (what read_json does with it)."""
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.json.decode(msgspec.json.encode(body), type=body_type)
    return validation_problem(caught.value)


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("$.email", "email"),
        ("$.split.shares[2].amount", "split.shares.2.amount"),
        ("$.items[0]", "items.0"),
        ("amount", "amount"),
        ("$", None),
        ("Idempotency-Key", None),
    ],
)
def test_a_problem_field_names_its_input(path: str, name: str | None) -> None:
    """A JSON path is the input's dotted name; the body as a whole or a header is no input."""
    assert input_of(path) == name


def test_dotted_inputs_become_the_nested_body() -> None:
    """Dotted names nest; numeric parts are list positions in their order."""
    flat = {"a": "1", "split.mode": "exact", "split.shares.1.amount": "5", "split.shares.0.x": "u"}
    assert unflatten(flat) == {
        "a": "1",
        "split": {"mode": "exact", "shares": [{"x": "u"}, {"amount": "5"}]},
    }


@pytest.mark.parametrize(
    "change",
    [{"email": "not-an-email"}, {"name": "n" * 101}, {"password": "short"}, {"name": ""}],
)
def test_a_form_is_refused_with_the_json_routes_problem(change: dict[str, str]) -> None:
    """A form and the JSON route refuse the same input with the same problem (status, code,
    field, words); a blank input counts as left out, as a missing JSON member does."""
    form = posted(**{**TYPED, **change})
    with pytest.raises(ProblemError) as caught:
        form.parse(RegisterBody)
    body = {name: value for name, value in {**TYPED, **change}.items() if value}
    expected = json_problem(body, RegisterBody)
    assert (caught.value.status, caught.value.code) == (expected.status, expected.code)
    assert caught.value.errors == expected.errors


def test_a_valid_form_is_the_routes_body() -> None:
    """A valid form is the body struct the JSON route would have decoded; extra inputs
    (where to go next) stay out of it."""
    form = posted(**TYPED, next="/home")
    assert form.parse(RegisterBody) == RegisterBody(**TYPED)


def test_a_refusal_stands_at_its_input_in_words_with_the_typed_values_kept() -> None:
    """The problem's `$.email` shows at the email input as what to do; the other inputs
    keep their values and a password is never given back."""
    form = posted(**{**TYPED, "email": "nope"})
    with pytest.raises(ProblemError) as caught:
        form.parse(RegisterBody)
    form.refuse(caught.value)
    assert form.status == 422
    assert form.errors == {"email": "Enter an email address such as ada@example.com."}
    assert form.summary == []
    assert (form.value("email"), form.value("name")) == ("nope", "Ada")
    assert form.value("password") == ""
    assert form.all("password") == []


def test_an_actors_refusal_naming_a_field_stands_at_its_input() -> None:
    """A DomainError with `details["field"]` (auth's weak password) is shown at that input."""
    form = posted(**TYPED)
    form.refuse(
        WeakPassword("This password is too easy to guess.", details={"field": "$.password"})
    )
    assert form.errors == {"password": "This password is too easy to guess."}
    assert form.status == 422


def test_a_refusal_of_no_field_is_said_at_the_top_with_its_status_and_wait() -> None:
    """Wrong credentials belong to no input (401, said above the form); a lockout keeps its
    Retry-After for the page."""
    form = posted(email="ada@example.com", password="x")
    form.refuse(InvalidCredentials("The email or password is wrong."))
    assert (form.status, form.summary, form.errors) == (
        401,
        ["The email or password is wrong."],
        {},
    )
    locked = posted(email="ada@example.com", password="x")
    locked.refuse(TooManyAttempts("Try again in 300 seconds.", details={"retry_after": 300}))
    assert locked.status == 429
    assert locked.headers == {"Retry-After": "300"}


def test_a_hidden_inputs_refusal_goes_to_the_top() -> None:
    """`inputs` sends a field to another input, or (None) to the top: a reset link's token
    is not something to correct by hand."""
    form = posted(token="t" * 600, password="correct horse battery 42")
    with pytest.raises(ProblemError) as caught:
        form.parse(ResetBody)
    form.refuse(caught.value, inputs={"$.token": None})
    assert form.errors == {}
    assert form.summary == ["Use at most 512 characters."]


def test_a_field_the_form_does_not_show_is_said_at_the_top() -> None:
    """A problem naming a field the form has no input for is not lost: it is at the top."""
    form = posted(email="ada@example.com")
    form.refuse(ProblemError(422, "x", "bad", errors=[FieldError("$.group_id", "No such group")]))
    assert form.summary == ["No such group."]


def test_converters_turn_typed_text_into_the_body_and_name_what_they_refuse() -> None:
    """A converter reads an input (an amount as typed); what it refuses is a 422 at the input."""
    form = posted(amount="12,50", note="lunch")
    assert form.data(converters={"amount": lambda text: parse_money(text, "EUR")}) == {
        "amount": 1250,
        "note": "lunch",
    }
    bad = posted(amount="twelve")
    with pytest.raises(ProblemError) as caught:
        bad.data(converters={"amount": lambda text: parse_money(text, "EUR")})
    bad.refuse(caught.value)
    assert bad.errors == {"amount": "Enter an amount such as 12.50."}


def test_lists_keep_every_value_of_an_input() -> None:
    """Inputs listed in `lists` (checkboxes of one name) come as lists, empty ones too."""
    form = Form(values={"members": ["u1", "u2"], "none": []})
    assert form.data(lists=["members", "none"]) == {"members": ["u1", "u2"], "none": []}


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ("this field is required", "Fill this in."),
        ("Expected `str` of length >= 1", "Fill this in."),
        ("Expected `str` of length >= 10", "Use at least 10 characters."),
        ("Expected `int` >= 1", "Enter 1 or more."),
        ("Expected `int`, got `str`", "Enter a whole number."),
        ("Expected `array` of length <= 5", "Choose at most 5."),
        (
            "Expected a three-letter currency code such as EUR",
            "Enter a three-letter currency code such as EUR.",
        ),
        ("shares add up to 85,00 €", "Shares add up to 85,00 €."),
    ],
)
def test_refusals_are_said_as_what_to_do(message: str, words: str) -> None:
    """msgspec's type talk becomes what to do; an actor's sentence stays, capitalised."""
    assert humane(message) == words


@pytest.fixture
async def keys_client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """A route that makes the form's key and the header's key for the same request."""
    routes = web.RouteTableDef()

    @routes.post("/groups/{id}/things")
    async def compare(request: web.Request) -> web.Response:
        body = RegisterBody(**TYPED)
        form = Form(key=request.headers["Idempotency-Key"])
        mine = form.idempotency(request, body, caller="user-1")
        theirs = key_for(request, body, caller="user-1")
        return web.json_response({"same": mine == theirs, "scope": mine.scope if mine else None})

    app = web.Application()
    app.add_routes(routes)
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_the_forms_key_is_the_routes_idempotency_key(
    keys_client: TestClient[web.Request, web.Application],
) -> None:
    """The form's hidden key reaches the actor exactly as an Idempotency-Key header would:
    the same scope (caller and route template) and fingerprint (no password in it)."""
    response = await keys_client.post("/groups/g1/things", headers={"Idempotency-Key": "k-1"})
    answer = await response.json()
    assert answer == {"same": True, "scope": "user-1 POST /groups/{id}/things"}
    assert Form().idempotency(None, None) is None  # type: ignore[arg-type]
