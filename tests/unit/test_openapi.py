"""The OpenAPI document: every route of the real app is in it, it is valid OpenAPI 3.1 with
valid JSON Schemas, and what the handlers send fits what it says.

OpenAPI 3.1 is checked against the official 3.1 schema (the copy schemathesis ships, since
openapi-spec-validator is not a dependency), every schema against the JSON Schema 2020-12
meta-schema, and every `$ref` is resolved.
"""

from __future__ import annotations

import html
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import jsonschema_rs
import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

from actors.auth.messages import UserView
from actors.notifications.messages import NotificationPage, NotificationView, Preferences
from actors.payments.messages import StatementEntry, StatementPage, TransferView
from actors.rides.messages import DriverView, Estimate, Point, RideView, TimelineEntry
from actors.runtime import ActorSystem, DeadLetter, MemoryDeadLetterStore
from actors.runtime.bounds import ID_MAX
from actors.splits.messages import ExpenseView, GroupView, Invite, Member, Payer, Share
from splitgo.metrics import Metrics
from splitgo.pages.keys import is_page
from splitgo.web import Services, auth, create_app, notifications, openapi, openapi_operations, ops
from splitgo.web import rides as rides_web
from splitgo.web.problems import to_json
from transport import Codec, MemoryTransport

Client = TestClient[web.Request, web.Application]

TOKEN = "unit-ops-token"
NOW = "2026-01-02T03:04:05Z"


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    codec = Codec()
    built = ActorSystem(
        MemoryTransport(node_id="openapi", codec=codec),
        codec=codec,
        dead_letters=MemoryDeadLetterStore(),
    )
    await built.start()
    yield built
    await built.stop(1.0)


def telegram_webhook() -> web.RouteTableDef:
    """What the bot adds in webhook mode (its handler lives in splitgo.bot)."""
    table = web.RouteTableDef()

    @table.post("/telegram/webhook")
    async def telegram_webhook(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    return table


@pytest.fixture
def app(system: ActorSystem) -> web.Application:
    """The real app with everything switched on: metrics and the bot's webhook."""
    services = Services(system=system, node_id="openapi", ops_token=TOKEN, metrics=Metrics())
    return create_app(services, extra=[telegram_webhook()])


@pytest.fixture
def spec(app: web.Application) -> dict[str, Any]:
    built = openapi.build_spec(app)
    # as served: through JSON
    decoded: dict[str, Any] = json.loads(json.dumps(built))
    return decoded


@pytest.fixture
async def client(app: web.Application) -> AsyncIterator[Client]:
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


# ── every route, and only routes ──────────────────────────────────────────────────────


def test_every_route_of_the_app_is_documented(app: web.Application, spec: dict[str, Any]) -> None:
    """The document lists exactly the app's routes, including every route API.md names."""
    assert openapi.undocumented(app) == []
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None and not is_page(route.handler)
    }
    documented = {(method, path) for path, methods in spec["paths"].items() for method in methods}
    assert served == documented
    # the routes API.md names, as a floor
    for method, path in [
        ("post", "/api/v1/auth/register"),
        ("get", "/api/v1/me"),
        ("post", "/api/v1/transfers"),
        ("post", "/api/v1/groups/{id}/expenses"),
        ("post", "/api/v1/rides/{id}/cancel"),
        ("put", "/api/v1/notifications/preferences"),
        ("get", "/ops/dead-letters"),
        ("get", "/metrics"),
        ("post", "/telegram/webhook"),
        ("get", "/api/openapi.json"),
        ("get", "/api/docs"),
    ]:
        assert (method, path) in documented


def test_a_route_without_a_description_is_reported(system: ActorSystem) -> None:
    """A route added without a description is reported as undocumented and left out of the paths."""
    app = create_app(Services(system=system, node_id="x", ops_token=TOKEN))
    table = web.RouteTableDef()

    @table.get("/api/v1/forgotten/{id}")
    async def forgotten(request: web.Request) -> web.Response:
        return web.Response()

    app.add_routes(table)
    assert openapi.undocumented(app) == ["GET /api/v1/forgotten/{id}"]
    assert "/api/v1/forgotten/{id}" not in openapi.build_spec(app)["paths"]


def test_operation_ids_are_unique(spec: dict[str, Any]) -> None:
    """No two operations share an operationId."""
    ids = [op["operationId"] for methods in spec["paths"].values() for op in methods.values()]
    assert len(ids) == len(set(ids))


# ── valid OpenAPI 3.1, valid JSON Schema ──────────────────────────────────────────────


def test_the_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    """The document declares OpenAPI 3.1 and validates against the official 3.1 schema."""
    assert spec["openapi"].startswith("3.1.")
    errors = [
        f"{list(e.instance_path)}: {e.message}" for e in OPENAPI_31_VALIDATOR.iter_errors(spec)
    ]
    assert errors == []


def schemas_in(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema object of the document, with where it is."""
    for name, schema in spec["components"]["schemas"].items():
        yield f"components.schemas.{name}", schema
    for name, header in spec["components"]["headers"].items():
        yield f"components.headers.{name}", header["schema"]
    replies = dict(spec["components"]["responses"])
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            where = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                yield f"{where} {parameter['in']} {parameter['name']}", parameter["schema"]
            for media, content in operation.get("requestBody", {}).get("content", {}).items():
                yield f"{where} body {media}", content["schema"]
            for status, reply in operation["responses"].items():
                replies[f"{where} {status}"] = reply
    for where, reply in replies.items():
        for media, content in reply.get("content", {}).items():
            yield f"{where} {media}", content["schema"]
        for name, header in reply.get("headers", {}).items():
            if "schema" in header:
                yield f"{where} header {name}", header["schema"]


def validator(spec: dict[str, Any], schema: dict[str, Any]) -> jsonschema_rs.Validator:
    """A validator for one schema of the document, its `$ref`s resolved in the document."""
    root = {"components": spec["components"], **schema}
    return jsonschema_rs.Draft202012Validator(root, validate_formats=True)


def test_every_schema_is_valid_json_schema_and_its_refs_resolve(spec: dict[str, Any]) -> None:
    """Each of the more than 200 schemas is valid JSON Schema 2020-12 and its $refs resolve."""
    seen = 0
    for where, schema in schemas_in(spec):
        try:
            jsonschema_rs.meta.validate(schema)
            validator(spec, schema)
        except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError) as error:
            pytest.fail(f"{where}: {error}")
        seen += 1
    assert seen > 200


def pointers(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("$ref"), str):
            yield value["$ref"]
        for inner in value.values():
            yield from pointers(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from pointers(inner)


def test_every_ref_points_into_the_document(spec: dict[str, Any]) -> None:
    """Every $ref is a local pointer that resolves to a node of the document."""
    for ref in set(pointers(spec)):
        assert ref.startswith("#/"), ref
        node: Any = spec
        for part in ref[2:].split("/"):
            assert part in node, f"{ref} does not resolve"
            node = node[part]


def test_replies_carry_no_message_tags(spec: dict[str, Any]) -> None:
    """The edge sends views without their msgspec tag; the document says the same."""
    assert "msg_type" not in json.dumps(spec)


# ── what each operation promises ──────────────────────────────────────────────────────


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_no_content_statuses_document_no_body(spec: dict[str, Any]) -> None:
    """204 and 304 replies document no content (HTTP sends none), and the balances read
    documents its 304 answer to If-None-Match."""
    for label, operation in operations(spec):
        for status in ("204", "304"):
            reply = operation["responses"].get(status)
            assert reply is None or "content" not in reply, (label, status)
    balances = spec["paths"]["/api/v1/groups/{id}/balances"]["get"]["responses"]
    assert "304" in balances


def test_errors_are_problem_documents(spec: dict[str, Any]) -> None:
    """Every shared error response is application/problem+json with the required Problem fields, and
    the 429 response declares Retry-After."""
    problem = spec["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    assert set(problem["properties"]) >= {"type", "title", "status", "detail", "code", "errors"}
    for name, reply in spec["components"]["responses"].items():
        assert list(reply["content"]) == ["application/problem+json"], name
    retry = spec["components"]["responses"]["Problem429"]["headers"]
    assert "Retry-After" in retry


def test_each_operation_lists_the_errors_it_can_answer(spec: dict[str, Any]) -> None:
    """Each operation lists a success status and the errors its body, security and path parameters
    can cause, and every response declares X-Request-Id."""
    for label, operation in operations(spec):
        statuses = set(operation["responses"])
        assert any(status.startswith("2") or status in ("101", "302", "303") for status in statuses)
        if "requestBody" in operation:
            assert {"400", "413", "415", "422"} <= statuses, label
        if operation["security"] == [{"bearerAuth": []}]:
            assert "401" in statuses, label
        if operation["security"] == [{"opsToken": []}]:
            assert {"401", "403"} <= statuses, label
        if any(p["in"] == "path" for p in operation.get("parameters", [])):
            assert "404" in statuses, label
        for reply in operation["responses"].values():
            assert reply.get("$ref") or "X-Request-Id" in reply["headers"], label
    assert "429" in dict(operations(spec))["POST /api/v1/auth/login"]["responses"]


def test_money_moving_posts_take_an_idempotency_key(spec: dict[str, Any]) -> None:
    """Transfers, top-ups, settlements and ride requests require an Idempotency-Key header;
    the other creating POSTs and the ride steps accept one."""
    ops_by_label = dict(operations(spec))
    for label, required in [
        ("POST /api/v1/transfers", True),
        ("POST /api/v1/wallet/top-ups", True),
        ("POST /api/v1/groups/{id}/settlements", True),
        ("POST /api/v1/rides", True),
        ("POST /api/v1/auth/register", False),
        ("POST /api/v1/groups", False),
        ("POST /api/v1/groups/{id}/members", False),
        ("POST /api/v1/groups/{id}/expenses", False),
        ("POST /api/v1/groups/{id}/expenses/{eid}/comments", False),
        ("POST /api/v1/drivers", False),
        ("POST /api/v1/rides/{id}/complete", False),
        ("POST /api/v1/rides/{id}/rating", False),
    ]:
        headers = {p["name"]: p for p in ops_by_label[label]["parameters"] if p["in"] == "header"}
        assert headers["Idempotency-Key"]["required"] is required, label


def test_security_schemes(spec: dict[str, Any]) -> None:
    """bearerAuth is an HTTP bearer JWT scheme and opsToken a bearer scheme, guarding /me and the
    ops routes respectively, while login needs neither."""
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schemes["bearerAuth"]["description"],
    }
    assert schemes["opsToken"]["scheme"] == "bearer"
    by_label = dict(operations(spec))
    assert by_label["GET /api/v1/me"]["security"] == [{"bearerAuth": []}]
    assert by_label["GET /ops/actors"]["security"] == [{"opsToken": []}]
    assert by_label["POST /api/v1/auth/login"]["security"] == []


def test_lists_page_with_limit_and_cursor(spec: dict[str, Any]) -> None:
    """The statement list takes a limit from 1 to 200, default 50, and a string cursor."""
    statement = dict(operations(spec))["GET /api/v1/transfers"]
    query = {p["name"]: p for p in statement["parameters"] if p["in"] == "query"}
    assert query["limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 200,
        "default": 50,
    }
    assert query["cursor"]["schema"] == {"type": "string"}


def test_path_parameters_keep_their_route_patterns(spec: dict[str, Any]) -> None:
    """A path parameter with a regex in its route gets that pattern, anchored, in its schema, and
    one with the default pattern gets none."""
    assert openapi_operations.path_patterns(r"/x/(?P<id>[^{}/]+)/(?P<d>pay|decline)") == {
        "id": "[^{}/]+",
        "d": "pay|decline",
    }
    decision = dict(operations(spec))["POST /sandbox/checkout/{id}/{decision}"]
    params = {p["name"]: p for p in decision["parameters"]}
    assert params["decision"]["schema"]["pattern"] == "^(?:pay|decline)$"
    assert "pattern" not in params["id"]["schema"]


# ── the document says what the handlers send ──────────────────────────────────────────


def reply_schema(spec: dict[str, Any], label: str, status: str = "200") -> dict[str, Any]:
    reply = dict(operations(spec))[label]["responses"][status]
    schema: dict[str, Any] = reply["content"]["application/json"]["schema"]
    return schema


def fits(spec: dict[str, Any], label: str, sent: Any, status: str = "200") -> None:
    as_json = json.loads(msgspec.json.encode(sent))
    errors = [
        e.message for e in validator(spec, reply_schema(spec, label, status)).iter_errors(as_json)
    ]
    assert errors == [], f"{label} {status}: {errors}"


USER = UserView(
    id="u1",
    email="a@example.com",
    name="A",
    email_verified=False,
    roles=["user"],
    telegram_linked=False,
    created_at=NOW,
)
POINT = Point(lat=52.5, lon=13.4)
ESTIMATE = Estimate(amount=1250, currency="EUR", distance_m=3000, duration_s=600, surge=1.0)


def test_user_replies_fit(spec: dict[str, Any]) -> None:
    """User replies match their documented schemas, and a reply that does not match is caught."""
    fits(spec, "POST /api/v1/auth/register", auth.user_body(USER), "201")
    fits(spec, "PATCH /api/v1/me", auth.user_body(USER))
    fits(spec, "GET /api/v1/me", to_json(USER))
    with pytest.raises(AssertionError):  # and a reply unlike the document is caught
        fits(spec, "GET /api/v1/me", {**to_json(USER), "roles": "admin"})


def test_payments_replies_fit(spec: dict[str, Any]) -> None:
    """A transfer reply and a statement page match their documented schemas."""
    transfer = TransferView(
        id="t1",
        status="completed",
        from_user_id="u1",
        to_user_id="u2",
        amount=100,
        currency="EUR",
        kind="p2p",
        created_at=NOW,
    )
    fits(spec, "POST /api/v1/transfers", to_json(transfer), "201")
    page = StatementPage(
        items=[
            StatementEntry(
                transfer_id="t1",
                amount=-100,
                currency="EUR",
                kind="p2p",
                counterparty_user_id="u2",
                created_at=NOW,
            )
        ],
        next_cursor="7",
    )
    fits(spec, "GET /api/v1/transfers", to_json(page))


def test_splits_replies_fit(spec: dict[str, Any]) -> None:
    """A group reply and an expense reply match their documented schemas."""
    group = GroupView(
        id="g1",
        name="Trip",
        currency="EUR",
        created_by="u1",
        created_at=NOW,
        members=[Member(user_id="u1", joined_at=NOW)],
        invited=[Invite(email="b@example.com", invited_by="u1", invited_at=NOW)],
    )
    fits(spec, "POST /api/v1/groups", to_json(group), "201")
    expense = ExpenseView(
        id="e1",
        group_id="g1",
        description="Dinner",
        amount=900,
        currency="EUR",
        date="2026-01-02",
        category="general",
        paid_by=[Payer(user_id="u1", amount=900)],
        split_mode="equal",
        shares=[Share(user_id="u1", amount=900)],
        created_by="u1",
        created_at=NOW,
        updated_at=NOW,
        version=1,
    )
    fits(spec, "GET /api/v1/groups/{id}/expenses/{eid}", to_json(expense))


def test_rides_replies_fit(spec: dict[str, Any]) -> None:
    """A ride reply matches its documented schema for both reading and requesting a ride."""
    ride = RideView(
        id="r1",
        status="driver_assigned",
        rider_id="u1",
        pickup=POINT,
        dropoff=Point(lat=52.51, lon=13.41),
        estimate=ESTIMATE,
        timeline=[TimelineEntry(status="requested", at=NOW)],
        driver=DriverView(user_id="d1", vehicle="Golf", plate="B-1", status="online"),
    )
    fits(spec, "GET /api/v1/rides/{id}", to_json(ride))
    fits(spec, "POST /api/v1/rides", to_json(ride), "201")


def test_notifications_replies_fit(spec: dict[str, Any]) -> None:
    """A notification page and a preferences reply match their documented schemas."""
    page = NotificationPage(
        items=[
            NotificationView(
                id="n1",
                category="money",
                kind="TransferCompleted",
                title="Money in",
                body="1 EUR",
                data={"amount": 100},
                created_at=NOW,
                read=False,
            )
        ],
        next_cursor=None,
        unread=1,
    )
    fits(spec, "GET /api/v1/notifications", to_json(page))
    chosen = Preferences(
        categories={"money": {"email": True, "sms": False}}, locked=["PasswordChanged"]
    )
    fits(spec, "GET /api/v1/notifications/preferences", notifications._preferences_json(chosen))


def test_dead_letter_views_fit(spec: dict[str, Any]) -> None:
    """A dead-letter view matches its documented schema, which requires replayable, and neither
    carries the raw envelope."""
    letter = DeadLetter(
        id="d1",
        actor="splits",
        shard=0,
        message_type="AddExpense",
        message_id="m1",
        trace_id="t1",
        attempts=3,
        error="ValueError: no",
        body=msgspec.Raw(b'{"group_id": "g1"}'),
        envelope=b"\x00",
        created_at=datetime(2026, 1, 2, tzinfo=UTC),
    )
    fits(spec, "GET /ops/dead-letters/{id}", ops.dead_letter_view(letter))
    view = ops.dead_letter_view(letter)
    assert "envelope" not in view
    schema = spec["components"]["schemas"]["DeadLetterView"]
    assert "envelope" not in schema["properties"]
    assert "replayable" in schema["required"]


# ── served ────────────────────────────────────────────────────────────────────────────


async def test_the_document_is_served(client: Client, spec: dict[str, Any]) -> None:
    """GET /api/openapi.json serves the built document as JSON, byte-for-byte the same each time."""
    response = await client.get("/api/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == spec
    again = await client.get("/api/openapi.json")
    assert await again.read() == await response.read()


async def test_the_docs_page_renders_it_for_people(client: Client, spec: dict[str, Any]) -> None:
    """GET /api/docs is rendered on the server from the document: every operation with its method
    and path, bodies and replies, every schema, our own stylesheet, and no script at all."""
    response = await client.get("/api/docs")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    assert "<script" not in page
    assert 'href="/api/openapi.json"' in page
    for path, methods in spec["paths"].items():
        for method in methods:
            shown = f'method-{method}">{method.upper()}</span> <code class="path">'
            assert f"{shown}{html.escape(path)}</code>" in page, (method, path)
    for name in spec["components"]["schemas"]:
        assert f'id="schema-{name}"' in page
    expense = page.split('id="op-add_expense"')[1].split("</section>")[0]
    assert '<a href="#schema-ExpenseBody">' in expense
    assert "<code>paid_by</code>" in expense  # the body's fields, in place
    stylesheet = page.split('<link rel="stylesheet" href="')[1].split('"')[0]
    assert stylesheet.startswith("/api/docs.css?v=")
    css = await client.get(stylesheet)
    assert css.status == 200
    assert css.content_type == "text/css"
    assert "immutable" in css.headers["Cache-Control"]
    stale = await client.get("/api/docs.css?v=old")
    assert stale.headers["Cache-Control"] == "no-cache"


# ── what the contract run found at the edge ───────────────────────────────────────────


async def test_reviving_an_unknown_actor_is_a_404_not_a_500(client: Client) -> None:
    """Restarting an actor that does not exist is a 404 unknown_actor, not a server error."""
    response = await client.post(
        "/ops/actors/nobody/restart", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status == 404
    assert (await response.json())["code"] == "unknown_actor"


async def test_an_api_id_longer_than_any_id_is_a_404(client: Client) -> None:
    """An expense id of 201 characters names nothing: 404 naming the parameter, not the
    422 of the message's bounds that the operation does not document."""
    response = await client.get(f"/api/v1/groups/g1/expenses/{'e' * (ID_MAX + 1)}")
    assert response.status == 404
    problem = await response.json()
    assert problem["code"] == "not_found"
    assert f"eid of {ID_MAX + 1} characters" in problem["detail"]


def test_api_path_parameters_document_the_longest_id(spec: dict[str, Any]) -> None:
    """Every path parameter of an API operation says ids are at most ID_MAX characters."""
    for label, operation in operations(spec):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path" and label.split(" ")[1].startswith("/api/"):
                assert parameter["schema"]["maxLength"] == ID_MAX, label


async def test_a_limit_of_unicode_digits_is_a_422(client: Client) -> None:
    """`"¹".isdigit()` is True, but int("¹") raises."""
    response = await client.get(
        "/ops/dead-letters", params={"limit": "¹"}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status == 422


async def test_a_dead_letter_filter_that_names_no_actor_is_a_422(client: Client) -> None:
    """An actor filter with a NUL byte is a 422 naming the actor field, and a NUL dead-letter id is
    a 404."""
    auth_header = {"Authorization": f"Bearer {TOKEN}"}
    response = await client.get("/ops/dead-letters", params={"actor": "\x00"}, headers=auth_header)
    assert response.status == 422
    assert (await response.json())["errors"][0]["field"] == "actor"
    response = await client.get("/ops/dead-letters/%00", headers=auth_header)
    assert response.status == 404


def test_email_and_stars_are_refused_at_the_edge() -> None:
    """Decoding refuses an email with a NUL byte and a hugely negative star rating, naming the
    field."""
    with pytest.raises(msgspec.ValidationError, match=r"\$\.email"):
        msgspec.json.decode(b'{"email": "a\\u0000@b.co", "password": "x"}', type=auth.LoginBody)
    with pytest.raises(msgspec.ValidationError, match=r"\$\.stars"):
        msgspec.json.decode(b'{"stars": -159569182211774070390784}', type=rides_web.RatingBody)
