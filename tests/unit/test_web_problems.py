"""How a body that does not fit is reported: a missing field is named at its own path, and a
string that does not match a pattern is told what is expected in words, never as the
regular expression (every pattern of the real app's OpenAPI document is tried)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import msgspec
import pytest

from actors.runtime import ActorSystem, MemoryDeadLetterStore
from splitgo.metrics import Metrics
from splitgo.web import Services, create_app, openapi
from splitgo.web.auth import RegisterBody
from splitgo.web.problems import ProblemError, pattern_words, validation_problem
from splitgo.web.splits.bodies import ExpenseBody, GroupBody
from transport import Codec, MemoryTransport


@pytest.fixture
async def spec() -> AsyncIterator[dict[str, Any]]:
    """The OpenAPI document of the real app."""
    codec = Codec()
    system = ActorSystem(
        MemoryTransport(node_id="problems", codec=codec),
        codec=codec,
        dead_letters=MemoryDeadLetterStore(),
    )
    await system.start()
    try:
        services = Services(system=system, node_id="problems", ops_token="t", metrics=Metrics())
        yield openapi.build_spec(create_app(services))
    finally:
        await system.stop(1.0)


def refused(raw: bytes, body_type: type[Any]) -> ProblemError:
    """The problem the edge answers for `raw` as `body_type` (what read_json does)."""
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.json.decode(raw, type=body_type)
    return validation_problem(caught.value)


def patterns_in(value: Any) -> Iterator[str]:
    """Every `pattern` of a JSON Schema anywhere in `value`."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "pattern" and isinstance(item, str):
                yield item
            else:
                yield from patterns_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from patterns_in(item)


@pytest.mark.parametrize(
    ("raw", "body_type", "field"),
    [
        (b"{}", GroupBody, "$.name"),
        (b'{"name": "Trip"}', GroupBody, "$.currency"),
        (b'{"password": "correct horse battery", "name": "N"}', RegisterBody, "$.email"),
        (
            b'{"description": "Dinner", "amount": 100, "currency": "EUR", "paid_by": "u",'
            b' "split": {"mode": "equal", "shares": [{}]}}',
            ExpenseBody,
            "$.split.shares[0].user_id",
        ),
    ],
)
def test_a_missing_field_is_named_at_its_own_path(
    raw: bytes, body_type: type[Any], field: str
) -> None:
    """A required field left out is the field named, not the object it is missing from."""
    problem = refused(raw, body_type)
    assert (problem.status, problem.code) == (422, "validation_error")
    assert [error.field for error in problem.errors] == [field]
    assert problem.detail == f"{field}: this field is required"


def test_a_currency_that_does_not_match_is_explained_in_words() -> None:
    """A lower-case currency code is refused as "a three-letter currency code such as EUR"."""
    problem = refused(b'{"name": "Trip", "currency": "eur"}', GroupBody)
    assert problem.errors[0].field == "$.currency"
    assert problem.errors[0].message == "Expected a three-letter currency code such as EUR"
    assert "regex" not in problem.detail


def test_every_pattern_of_a_body_has_words(spec: dict[str, Any]) -> None:
    """Every pattern in the schemas of the bodies the edge decodes was given words."""
    patterns = set(patterns_in(spec["components"]["schemas"]))
    assert patterns, "the document has no patterns: the walk is wrong"
    assert {pattern for pattern in patterns if pattern_words(pattern) is None} == set()


def test_no_problem_shows_a_regular_expression(spec: dict[str, Any]) -> None:
    """For every pattern anywhere in the document, a string that does not match it is refused
    with a detail and messages that hold neither the pattern nor the word regex."""
    patterns = set(patterns_in(spec))
    for pattern in patterns:
        constrained = Annotated[str, msgspec.Meta(pattern=pattern)]
        for candidate in ("", " ", "\x00", "!"):
            try:
                msgspec.convert(candidate, constrained)
            except msgspec.ValidationError as error:
                problem = validation_problem(error)
                break
        else:
            raise AssertionError(f"no candidate fails {pattern!r}")
        shown = [problem.detail, *(error.message for error in problem.errors)]
        assert not [text for text in shown if pattern in text or "regex" in text], shown
