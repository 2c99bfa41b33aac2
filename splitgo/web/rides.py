"""The Rides routes of API.md: drivers (sign-up, status, location pings, open offers),
estimates, ride requests, the driver's answers and steps, cancelling and rating.

Request bodies are decoded into Structs here and turned into the rides actor's commands by
plain functions (`estimate_message`, `request_message`, `cancel_message`, ...), so the
conversion is testable without a server. Coordinates must be JSON numbers; whether they
are a place on Earth is the actor's call (its `InvalidRide` names the field, `$.pickup.lat`).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec
import structlog
from aiohttp import web

from actors.rides.messages import (
    AdvanceRide,
    AnswerOffer,
    CancelRide,
    DriverView,
    Estimate,
    EstimateRide,
    GetCurrentRide,
    GetOffers,
    GetRide,
    OfferList,
    OfferView,
    Point,
    RateRide,
    RegisterDriver,
    RequestRide,
    RideView,
    SetDriverStatus,
    UpdateLocation,
)
from splitgo.web.actors import ask
from splitgo.web.declare import Content, documented, idempotency
from splitgo.web.idempotency import key_for, required_key, with_key
from splitgo.web.keys import SERVICES
from splitgo.web.problems import json_response, to_json
from splitgo.web.rides_pings import gatherer
from splitgo.web.security import authenticate

log = structlog.get_logger("splitgo.web.rides")

routes = web.RouteTableDef()

REQUEST_ASK_TIMEOUT = 20.0  # a request asks splits and payments before it answers
REASON_MAX = 200
IDEMPOTENCY_NAMESPACE = uuid.UUID("8d3b7c1e-4f2a-4b6e-9c0d-2a7e5f1b9c34")

GroupId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Reason = Annotated[str, msgspec.Meta(max_length=REASON_MAX)]
Step = Literal["arrive", "start", "complete"]


class PointBody(msgspec.Struct, forbid_unknown_fields=True):
    """A place: JSON numbers of degrees (ints are fine; strings and booleans are not)."""

    lat: float
    lon: float


class DriverBody(msgspec.Struct, forbid_unknown_fields=True):
    vehicle: str
    plate: str


class StatusBody(msgspec.Struct, forbid_unknown_fields=True):
    status: Literal["online", "offline"]


class EstimateBody(msgspec.Struct, forbid_unknown_fields=True):
    pickup: PointBody
    dropoff: PointBody


class RideBody(msgspec.Struct, forbid_unknown_fields=True):
    pickup: PointBody
    dropoff: PointBody
    group_id: GroupId | None = None


class CancelBody(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason | None = None


# 1..5 is the actor's rule (422 `invalid_ride`); the edge only keeps the number within what
# a message can carry (an int64), so a huge one is a 422 rather than a failed encode
Stars = Annotated[
    int,
    msgspec.Meta(ge=-(2**63), le=2**63 - 1, description="1 to 5; others are 422 invalid_ride"),
]


class RatingBody(msgspec.Struct, forbid_unknown_fields=True):
    stars: Stars
    comment: str | None = None


# ── turning bodies into commands (no IO) ──────────────────────────────────────────────


def point(body: PointBody) -> Point:
    return Point(lat=body.lat, lon=body.lon)


def driver_message(body: DriverBody, *, user_id: str) -> RegisterDriver:
    return RegisterDriver(user_id=user_id, vehicle=body.vehicle, plate=body.plate)


def location_message(body: PointBody, *, user_id: str) -> UpdateLocation:
    return UpdateLocation(user_id=user_id, lat=body.lat, lon=body.lon)


def estimate_message(body: EstimateBody) -> EstimateRide:
    return EstimateRide(pickup=point(body.pickup), dropoff=point(body.dropoff))


def request_message(body: RideBody, *, user_id: str, ride_id: str) -> RequestRide:
    return RequestRide(
        ride_id=ride_id,
        user_id=user_id,
        pickup=point(body.pickup),
        dropoff=point(body.dropoff),
        group_id=body.group_id,
    )


def cancel_message(body: CancelBody, *, ride_id: str, user_id: str) -> CancelRide:
    return CancelRide(ride_id=ride_id, user_id=user_id, reason=body.reason)


def rating_message(body: RatingBody, *, ride_id: str, user_id: str) -> RateRide:
    return RateRide(ride_id=ride_id, user_id=user_id, stars=body.stars, comment=body.comment)


def ride_id_for(user_id: str, idempotency_key: str) -> str:
    """The ride's id, derived from the request's Idempotency-Key: a retry after a crash
    between placing the hold and storing the ride names the same hold again (payments
    replays it) instead of holding the money twice. The key itself is answered by the
    rides actor's idempotency keys."""
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{user_id}\n{idempotency_key}"))


# ── steps and answers (typed errors become problems in the middleware) ────────────────


def ride_id(request: web.Request) -> str:
    return request.match_info["id"]


async def advance(request: web.Request, step: Step) -> web.Response:
    claims = authenticate(request)
    message = AdvanceRide(
        ride_id=ride_id(request),
        user_id=claims.sub,
        step=step,
        idempotency=key_for(request, caller=claims.sub),
    )
    view: RideView = await ask(request, "rides", message)
    log.info("ride_advanced", ride_id=view.id, step=step, status=view.status)
    return json_response(to_json(view))


async def answer(request: web.Request, *, accept: bool) -> web.Response:
    claims = authenticate(request)
    message = AnswerOffer(
        ride_id=ride_id(request),
        user_id=claims.sub,
        accept=accept,
        idempotency=key_for(request, caller=claims.sub),
    )
    view: RideView = await ask(request, "rides", message)
    return json_response(to_json(view))


# ── drivers ───────────────────────────────────────────────────────────────────────────


@routes.post("/api/v1/drivers")
@documented(
    summary="Become a driver",
    description="The caller gains the `driver` role; already one: 409 `already_a_driver`.",
    tags=["rides"],
    headers=[idempotency(required=False)],
    body=DriverBody,
    responses={201: DriverView},
    errors=[409],
)
async def register_driver(request: web.Request, body: DriverBody) -> web.Response:
    claims = authenticate(request)
    message = with_key(driver_message(body, user_id=claims.sub), request, body, caller=claims.sub)
    driver: DriverView = await ask(request, "rides", message)
    log.info("driver_registered", user_id=claims.sub)
    return json_response(to_json(driver), status=201)


@routes.post("/api/v1/drivers/me/status")
@documented(
    summary="Go online or offline",
    tags=["rides"],
    body=StatusBody,
    responses={200: DriverView},
    errors=[403, 409],
)
async def driver_status(request: web.Request, body: StatusBody) -> web.Response:
    claims = authenticate(request)
    driver: DriverView = await ask(
        request, "rides", SetDriverStatus(user_id=claims.sub, status=body.status)
    )
    return json_response(to_json(driver))


@routes.post("/api/v1/drivers/me/location")
@documented(
    summary="Where the driver is",
    tags=["rides"],
    body=PointBody,
    responses={204: None},
    errors=[403],
)
async def driver_location(request: web.Request, body: PointBody) -> web.Response:
    claims = authenticate(request)
    message = location_message(body, user_id=claims.sub)  # the bounds are checked here
    # gathered with the node's other pings of the same region into one message
    await gatherer(request.app[SERVICES].system).ping(message.user_id, message.lat, message.lon)
    return web.Response(status=204)


class OfferPage(msgspec.Struct, kw_only=True):
    """The driver's open offers as every list answers (`items`, `next_cursor` null: at most
    one at a time). `offers` repeats `items` for clients of before; it goes in a later
    release."""

    items: list[OfferView]
    next_cursor: str | None = None
    offers: Annotated[list[OfferView], msgspec.Meta(description="deprecated: the same as `items`")]


@routes.get("/api/v1/drivers/me/offers")
@documented(
    summary="The driver's open offers",
    tags=["rides"],
    responses={200: OfferPage},
    errors=[403],
)
async def driver_offers(request: web.Request) -> web.Response:
    claims = authenticate(request)
    offers: OfferList = await ask(request, "rides", GetOffers(user_id=claims.sub))
    return json_response(to_json(OfferPage(items=offers.offers, offers=offers.offers)))


# ── rides ─────────────────────────────────────────────────────────────────────────────


@routes.post("/api/v1/rides/estimate")
@documented(
    summary="What a ride would cost",
    tags=["rides"],
    body=EstimateBody,
    responses={200: Estimate},
)
async def estimate(request: web.Request, body: EstimateBody) -> web.Response:
    authenticate(request)
    quote: Estimate = await ask(request, "rides", estimate_message(body))
    return json_response(to_json(quote))


@routes.post("/api/v1/rides")
@documented(
    summary="Request a ride",
    description="A hold is placed on the wallet for the estimate (422 `insufficient_funds` "
    "when it can't be), then the ride is offered to the nearest drivers in turn. A ride "
    "already under way: 409 `ride_in_progress`.",
    tags=["rides"],
    body=RideBody,
    headers=[idempotency(required=True)],
    responses={
        201: Content(RideView, headers={"Location": ("the ride", True)}, description="Created")
    },
    errors=[404, 409],
)
async def request_ride(request: web.Request, body: RideBody) -> web.Response:
    claims = authenticate(request)
    message = request_message(
        body, user_id=claims.sub, ride_id=ride_id_for(claims.sub, required_key(request))
    )
    message = with_key(message, request, body, caller=claims.sub)
    view: RideView = await ask(request, "rides", message, timeout=REQUEST_ASK_TIMEOUT)
    log.info("ride_requested", ride_id=view.id, status=view.status)
    response = json_response(to_json(view), status=201)
    response.headers["Location"] = f"/api/v1/rides/{view.id}"
    return response


@routes.get("/api/v1/rides/current")
@documented(
    summary="The caller's ride under way",
    tags=["rides"],
    responses={200: RideView},
    errors=[404],
)
async def current_ride(request: web.Request) -> web.Response:
    claims = authenticate(request)
    view: RideView = await ask(request, "rides", GetCurrentRide(user_id=claims.sub))
    return json_response(to_json(view))


@routes.get("/api/v1/rides/{id}")
@documented(
    summary="A ride: status, driver, fare, timeline",
    tags=["rides"],
    responses={200: RideView},
    errors=[403],
)
async def get_ride(request: web.Request) -> web.Response:
    claims = authenticate(request)
    view: RideView = await ask(
        request, "rides", GetRide(ride_id=ride_id(request), user_id=claims.sub)
    )
    return json_response(to_json(view))


@routes.post("/api/v1/rides/{id}/accept")
@documented(
    summary="Accept an offer (driver)",
    description="An expired offer: 409 `offer_expired`.",
    tags=["rides"],
    headers=[idempotency(required=False)],
    responses={200: RideView},
    errors=[403, 409],
)
async def accept(request: web.Request) -> web.Response:
    return await answer(request, accept=True)


@routes.post("/api/v1/rides/{id}/decline")
@documented(
    summary="Decline an offer (driver)",
    tags=["rides"],
    headers=[idempotency(required=False)],
    responses={200: RideView},
    errors=[403, 409],
)
async def decline(request: web.Request) -> web.Response:
    return await answer(request, accept=False)


@routes.post("/api/v1/rides/{id}/arrive")
@documented(
    summary="At the pickup (driver)",
    description="An out-of-order step: 409 `invalid_transition`.",
    tags=["rides"],
    headers=[idempotency(required=False)],
    responses={200: RideView},
    errors=[403, 409],
)
async def arrive(request: web.Request) -> web.Response:
    return await advance(request, "arrive")


@routes.post("/api/v1/rides/{id}/start")
@documented(
    summary="The rider is on board (driver)",
    description="An out-of-order step: 409 `invalid_transition`.",
    tags=["rides"],
    headers=[idempotency(required=False)],
    responses={200: RideView},
    errors=[403, 409],
)
async def start(request: web.Request) -> web.Response:
    return await advance(request, "start")


@routes.post("/api/v1/rides/{id}/complete")
@documented(
    summary="At the drop-off (driver)",
    description="The final fare is captured from the hold. An out-of-order step: 409 "
    "`invalid_transition`.",
    tags=["rides"],
    headers=[idempotency(required=False)],
    responses={200: RideView},
    errors=[403, 409],
)
async def complete(request: web.Request) -> web.Response:
    return await advance(request, "complete")


@routes.post("/api/v1/rides/{id}/cancel")
@documented(
    summary="Cancel a ride (rider or driver)",
    description="The hold is released (a cancellation fee after the driver arrived). The "
    "body may be left out.",
    tags=["rides"],
    headers=[idempotency(required=False)],
    body=CancelBody,
    body_required=False,
    responses={200: RideView},
    errors=[403, 409],
)
async def cancel(request: web.Request, body: CancelBody) -> web.Response:
    claims = authenticate(request)
    message = cancel_message(body, ride_id=ride_id(request), user_id=claims.sub)
    message = with_key(message, request, body, caller=claims.sub)
    view: RideView = await ask(request, "rides", message)
    log.info("ride_cancelled", ride_id=view.id, by=claims.sub)
    return json_response(to_json(view))


@routes.post("/api/v1/rides/{id}/rating")
@documented(
    summary="Rate a ride, once per side",
    tags=["rides"],
    headers=[idempotency(required=False)],
    body=RatingBody,
    responses={201: RideView},
    errors=[403, 409],
)
async def rate(request: web.Request, body: RatingBody) -> web.Response:
    claims = authenticate(request)
    message = rating_message(body, ride_id=ride_id(request), user_id=claims.sub)
    message = with_key(message, request, body, caller=claims.sub)
    view: RideView = await ask(request, "rides", message)
    return json_response(to_json(view), status=201)
