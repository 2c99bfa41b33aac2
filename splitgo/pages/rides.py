"""Rides, for riders and drivers.

The rider's `/rides` has one form: pickup and drop-off as typed degrees (with JavaScript,
"Use my location" fills the pickup from the browser), an optional group to split the fare
with, and two buttons — Estimate (the JSON route's `EstimateRide`) and Request ride (its
`RequestRide`, keyed by the form's idempotency key exactly as the route keys it by the
`Idempotency-Key` header). `/rides/{id}` follows one ride: a small map drawn here as SVG
(no tiles), the status in words, the driver with car and plate, the fare, the timeline, and
one action at a time (Cancel, then Rate). Past rides are the rides of the rider's wallet
statement (every request holds the fare first).

The driver's `/driver` registers a vehicle (`RegisterDriver`), switches online and offline
(`SetDriverStatus`), takes location pings (`UpdateLocation`: typed, or from the browser's
Geolocation through static/rides.js, which posts the same form with the page's CSRF token),
shows open offers with their deadline (`GetOffers`) to accept or decline (`AnswerOffer`),
the ride in hand with one button for its next step (`AdvanceRide`), and earnings from the
driver's statement (the fares captured for them: today's, and in the statement's latest
600 lines).

The rides actor tells no page whether a driver is online without changing it, so the
driver's page remembers the status this browser last set (or a ride showed) in a cookie,
and offers both buttons when it does not know.

`/rides/{id}/live` and `/driver/live` are the pages' changing regions as fragments, which
static/rides.js fetches every few seconds and swaps in when they changed.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web

from actors.payments.messages import (
    GetStatement,
    GetWallet,
    StatementEntry,
    StatementPage,
    WalletView,
)
from actors.rides.messages import (
    ACTIVE,
    AdvanceRide,
    AlreadyADriver,
    AnswerOffer,
    DriverView,
    Estimate,
    GetCurrentRide,
    GetOffers,
    GetRide,
    NotADriver,
    OfferList,
    RideNotFound,
    RideView,
    SetDriverStatus,
)
from actors.runtime import DomainError
from actors.splits.messages import ListGroups
from splitgo.pages import cookies
from splitgo.pages.forms import REFUSALS, Converter, Form, as_problem, humane, read_form
from splitgo.pages.guards import signed_in, spend
from splitgo.pages.render import named, redirect, render, render_with_form
from splitgo.pages.sessions import Viewer
from splitgo.web.actors import ask
from splitgo.web.problems import ProblemError
from splitgo.web.rides import (
    REQUEST_ASK_TIMEOUT,
    CancelBody,
    DriverBody,
    EstimateBody,
    PointBody,
    RatingBody,
    RideBody,
    StatusBody,
    cancel_message,
    driver_message,
    estimate_message,
    location_message,
    rating_message,
    request_message,
    ride_id_for,
)
from splitgo.web.splits.asking import ask_splits

routes = web.RouteTableDef()

RIDES = "/rides"
DRIVER = "/driver"
DRIVING_COOKIE = "splitgo_driving"  # the status this browser last set: online or offline
DRIVING_SECONDS = 30 * 24 * 3600
PAST_RIDES = 10  # rides listed under "Past rides"
STATEMENT_PAGES = 3  # pages of 200 statement lines read for past rides and earnings
CITY_SPEED_MPS = 25_000 / 3600  # the actors' city speed, for "3 min away"
STEPS = {
    "driver_assigned": ("arrive", "Arrived at pickup", "Telling the rider…"),
    "driver_arrived": ("start", "Start ride", "Starting…"),
    "in_progress": ("complete", "Complete ride", "Completing…"),
}
FINAL = ("completed", "cancelled", "no_driver")
TIMELINE_WORDS = {
    "requested": "Requested",
    "offered": "Offered to a driver",
    "declined": "A driver passed; asking the next one",
    "offer_expired": "A driver did not answer; asking the next one",
    "driver_assigned": "Driver on the way",
    "driver_arrived": "Driver at the pickup",
    "in_progress": "Ride started",
    "completed": "Arrived",
    "cancelled": "Cancelled",
    "no_driver": "No driver found",
}

cookies.FLASHES.update(
    {
        "ride_requested": "Ride requested. We are looking for a driver near you.",
        "ride_cancelled": "Your ride is cancelled.",
        "ride_rated": "Thank you for rating the ride.",
        "driver_registered": "You are registered as a driver. Go online to get offers.",
        "driver_online": "You are online: offers near you show up here.",
        "driver_offline": "You are offline: no offers come until you go online.",
        "location_sent": "Your location is updated.",
        "offer_accepted": "Offer accepted. Head to the pickup.",
        "offer_declined": "Offer declined.",
        "ride_arrive": "The rider knows you are at the pickup.",
        "ride_start": "Ride started. Drive safely.",
        "ride_complete": "Ride completed. The fare is on its way to your wallet.",
    }
)


# ── words and the map (no IO) ─────────────────────────────────────────────────────────


def distance_words(metres: float) -> str:
    """850 m, 3.2 km, 42 km."""
    if metres < 1000:
        return f"{max(0, round(metres / 10) * 10)} m"
    kilometres = metres / 1000
    return f"{kilometres:.1f} km" if kilometres < 10 else f"{round(kilometres)} km"


def duration_words(seconds: float) -> str:
    """Under a minute, 8 min, 1 h 5 min."""
    minutes = math.ceil(seconds / 60)
    if seconds < 60:
        return "under a minute"
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min" if minutes % 60 else f"{minutes // 60} h"


def surge_words(surge: float) -> str:
    """No surge, or the multiplier in words."""
    if surge <= 1.0:
        return "No surge"
    times = f"{surge:.2f}".rstrip("0").rstrip(".")
    return f"Busy: {times} times the usual price"


def metres_between(a: dict[str, float], b: dict[str, float]) -> float:
    """Great-circle metres between two `{lat, lon}` points."""
    lat1, lat2 = math.radians(a["lat"]), math.radians(b["lat"])
    dlat = lat2 - lat1
    dlon = math.radians(b["lon"] - a["lon"])
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * 6_371_000 * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True, slots=True)
class Spot:
    """A place drawn on the map: where, and what it is."""

    x: float
    y: float
    kind: str  # pickup, dropoff or driver
    label: str


@dataclass(frozen=True, slots=True)
class TripMap:
    """The trip drawn to fit a box: its places in the box's units, and the words for it."""

    width: int
    height: int
    spots: tuple[Spot, ...]
    description: str

    def spot(self, kind: str) -> Spot | None:
        return next((spot for spot in self.spots if spot.kind == kind), None)


MAP_WIDTH, MAP_HEIGHT, MAP_PADDING = 320, 180, 28
MIN_SPAN_M = 300.0  # a map never shows less than this across: one place alone is a dot


def trip_map(
    pickup: dict[str, float],
    dropoff: dict[str, float],
    driver: dict[str, float] | None = None,
) -> TripMap:
    """Pickup, drop-off and the driver (when known) scaled to fit the map's box, north up
    (an equirectangular projection about the places' middle: fine for a city)."""
    places = [(pickup, "pickup", "Pickup"), (dropoff, "dropoff", "Drop-off")]
    if driver is not None:
        places.append((driver, "driver", "Driver"))
    mid_lat = math.radians(sum(p["lat"] for p, _, _ in places) / len(places))
    # metres east and north of the first place
    east = [(p["lon"] - pickup["lon"]) * 111_320 * math.cos(mid_lat) for p, _, _ in places]
    north = [(p["lat"] - pickup["lat"]) * 110_574 for p, _, _ in places]
    span_x = max(max(east) - min(east), MIN_SPAN_M)
    span_y = max(max(north) - min(north), MIN_SPAN_M)
    inner_w, inner_h = MAP_WIDTH - 2 * MAP_PADDING, MAP_HEIGHT - 2 * MAP_PADDING
    scale = min(inner_w / span_x, inner_h / span_y)
    mid_east = (max(east) + min(east)) / 2
    mid_north = (max(north) + min(north)) / 2
    spots = tuple(
        Spot(
            x=round(MAP_WIDTH / 2 + (e - mid_east) * scale, 1),
            y=round(MAP_HEIGHT / 2 - (n - mid_north) * scale, 1),
            kind=kind,
            label=label,
        )
        for e, n, (_, kind, label) in zip(east, north, places, strict=True)
    )
    words = f"Pickup and drop-off are {distance_words(metres_between(pickup, dropoff))} apart"
    if driver is not None:
        words += f"; the driver is {distance_words(metres_between(driver, pickup))} from the pickup"
    return TripMap(MAP_WIDTH, MAP_HEIGHT, spots, words + ".")


def status_line(ride: dict[str, Any], *, as_driver: bool = False) -> str:
    """Where the ride is, in one sentence for the rider (or its driver)."""
    status = ride["status"]
    driver = ride.get("driver") or {}
    name = driver.get("name") or "Your driver"
    car = f"{driver.get('vehicle', '')}, {driver.get('plate', '')}".strip(", ")
    rider = ride.get("rider_name") or "the rider"
    if status == "requested":
        return "Waiting for you to answer." if as_driver else "Looking for a driver near you…"
    if status == "driver_assigned":
        if as_driver:
            return f"Head to the pickup: {rider} is waiting."
        position = ride.get("driver_position")
        if position:
            seconds = metres_between(position, ride["pickup"]) / CITY_SPEED_MPS
            return f"{name} is {duration_words(seconds)} away — {car}"
        return f"{name} is on the way — {car}"
    if status == "driver_arrived":
        if as_driver:
            return f"You are at the pickup. Start when {rider} is on board."
        return f"{name} is waiting at the pickup — {car}"
    if status == "in_progress":
        if as_driver:
            return f"On the way to the drop-off with {rider}."
        return f"On the way to your drop-off with {name}."
    if status == "completed":
        return "Ride completed." if as_driver else "You arrived. Thanks for riding."
    if status == "cancelled":
        reason = ride.get("cancel_reason")
        return "This ride was cancelled" + (f": {reason}" if reason else ".")
    return "No driver was free nearby. Nothing was charged."


def timeline_of(ride: dict[str, Any]) -> list[dict[str, str]]:
    """The timeline in words (notes only where they are words, never a person's id)."""
    shown = []
    for entry in ride.get("timeline", []):
        words = TIMELINE_WORDS.get(entry["status"], entry["status"].replace("_", " ").capitalize())
        if entry["status"] == "cancelled" and entry.get("note"):
            words += f" {entry['note']}"
        shown.append({"words": words, "at": entry["at"]})
    return shown


def version_of(ride: dict[str, Any] | None, offers: list[dict[str, Any]] | None = None) -> str:
    """What changes the live region: the status, its steps, the driver's spot, ratings."""
    if ride is None:
        return "none|" + ",".join(offer["ride_id"] for offer in offers or [])
    position = ride.get("driver_position") or {}
    return "|".join(
        str(part)
        for part in (
            ride["id"],
            ride["status"],
            len(ride.get("timeline", [])),
            round(position.get("lat", 0.0), 5),
            round(position.get("lon", 0.0), 5),
            ride.get("rider_rating"),
            ride.get("driver_rating"),
        )
    )


def ride_context(ride: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
    """What the ride's templates show: the ride, the status line, map, timeline, roles."""
    as_driver = (ride.get("driver") or {}).get("user_id") == viewer.user_id
    position = ride.get("driver_position") if ride["status"] in ACTIVE else None
    return {
        "ride": ride,
        "as_driver": as_driver,
        "line": status_line(ride, as_driver=as_driver),
        "map": trip_map(ride["pickup"], ride["dropoff"], position),
        "timeline": timeline_of(ride),
        "step": STEPS.get(ride["status"]),
        "final": ride["status"] in FINAL,
        "version": version_of(ride),
        "estimate_words": estimate_words(ride["estimate"]),
        "travelled": travelled_words(ride),
    }


def travelled_words(ride: dict[str, Any]) -> dict[str, str] | None:
    """The distance and time the trip took, once completed."""
    if ride.get("distance_m") is None or ride.get("duration_s") is None:
        return None
    return {
        "distance": distance_words(ride["distance_m"]),
        "duration": duration_words(ride["duration_s"]),
    }


def estimate_words(estimate: dict[str, Any]) -> dict[str, str]:
    return {
        "distance": distance_words(estimate["distance_m"]),
        "duration": duration_words(estimate["duration_s"]),
        "surge": surge_words(float(estimate["surge"])),
    }


def degrees(text: str) -> float:
    """Typed degrees as a number (a decimal comma is fine); ValueError says what to type."""
    try:
        value = float(text.strip().replace(",", ".").replace("\u2212", "-"))
    except ValueError:
        raise ValueError("Enter degrees as a number, such as 52.5200.") from None
    if not math.isfinite(value):
        raise ValueError("Enter degrees as a number, such as 52.5200.")
    return value


def point_converters(*prefixes: str) -> dict[str, Converter]:
    return {f"{prefix}.{part}": degrees for prefix in prefixes for part in ("lat", "lon")}


TRIP_CONVERTERS = point_converters("pickup", "dropoff")
LOCATION_CONVERTERS: dict[str, Converter] = {"lat": degrees, "lon": degrees}
# a problem about a whole place is shown at its latitude
TRIP_INPUTS: dict[str, str | None] = {
    "$.pickup": "pickup.lat",
    "$.dropoff": "dropoff.lat",
    "$.ride_id": None,
}


# ── asking the actors ─────────────────────────────────────────────────────────────────


async def current_ride(request: web.Request, viewer: Viewer) -> dict[str, Any] | None:
    """The viewer's ride under way (as rider or driver), with names; None when none."""
    try:
        view: RideView = await ask(request, "rides", GetCurrentRide(user_id=viewer.user_id))
    except RideNotFound:
        return None
    ride: dict[str, Any] = await named(request, view)
    return ride


async def statement_lines(request: web.Request, viewer: Viewer) -> list[StatementEntry]:
    """The viewer's latest statement lines, newest first (a few pages at most)."""
    lines: list[StatementEntry] = []
    cursor = None
    for _ in range(STATEMENT_PAGES):
        page: StatementPage = await ask(
            request, "payments", GetStatement(user_id=viewer.user_id, limit=200, cursor=cursor)
        )
        lines.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    return lines


def ride_ids(lines: list[StatementEntry], kind: str, *, incoming: bool) -> list[str]:
    """The rides of these statement lines of `kind` (each once, newest first)."""
    found: list[str] = []
    for line in lines:
        about = line.about
        if about is None or about.kind != "ride" or line.kind != kind:
            continue
        if (line.amount > 0) != incoming or about.id in found:
            continue
        found.append(about.id)
    return found


async def rides_of(request: web.Request, viewer: Viewer, ids: list[str]) -> list[dict[str, Any]]:
    """These rides as the viewer may see them (those that cannot be read are left out)."""

    async def one(ride_id: str) -> dict[str, Any] | None:
        try:
            view: RideView = await ask(
                request, "rides", GetRide(ride_id=ride_id, user_id=viewer.user_id)
            )
        except DomainError:
            return None
        ride: dict[str, Any] = await named(request, view)
        return ride

    found = await asyncio.gather(*(one(ride_id) for ride_id in ids))
    return [ride for ride in found if ride is not None]


def earnings_of(lines: list[StatementEntry], today: str) -> list[dict[str, Any]]:
    """Fares captured for the driver, per currency: today (UTC) and in all the lines."""
    sums: dict[str, dict[str, Any]] = {}
    for line in lines:
        if line.kind != "capture" or line.amount <= 0:
            continue
        if line.about is None or line.about.kind != "ride":
            continue
        total = sums.setdefault(line.currency, {"currency": line.currency, "today": 0, "total": 0})
        total["total"] += line.amount
        if line.created_at.startswith(today):
            total["today"] += line.amount
    return sorted(sums.values(), key=lambda total: str(total["currency"]))


# ── the rider ─────────────────────────────────────────────────────────────────────────


async def rides_page(
    request: web.Request,
    viewer: Viewer,
    form: Form,
    *,
    estimate: Estimate | None = None,
    trip: EstimateBody | None = None,
    funds_short: bool = False,
) -> web.Response:
    """/rides: the ride under way, or the request form (with an estimate, a refusal)."""
    current, groups, wallet, lines = await asyncio.gather(
        current_ride(request, viewer),
        ask_splits(request, ListGroups(user_id=viewer.user_id)),
        ask(request, "payments", GetWallet(user_id=viewer.user_id)),
        statement_lines(request, viewer),
    )
    if current is not None and current["rider_id"] != viewer.user_id:
        current = None  # driving one: that is the driver's page
    past_ids = ride_ids(lines, "hold", incoming=False)
    past = [
        ride
        for ride in await rides_of(request, viewer, past_ids[: PAST_RIDES + 1])
        if current is None or ride["id"] != current["id"]
    ][:PAST_RIDES]
    context: dict[str, Any] = {
        "title": "Rides",
        "section": "rides",
        "form": form,
        "current": ride_context(current, viewer) if current is not None else None,
        "groups": [{"id": g.id, "name": g.name} for g in groups.groups],
        "balances": _balances(wallet),
        "past": [{**ride, "line": status_line(ride)} for ride in past],
        "funds_short": funds_short,
        "estimate": None,
        "map": None,
    }
    if estimate is not None and trip is not None:
        context["estimate"] = {
            **msgspec.to_builtins(estimate),
            **estimate_words(msgspec.to_builtins(estimate)),
        }
        context["map"] = trip_map(
            msgspec.to_builtins(trip.pickup), msgspec.to_builtins(trip.dropoff)
        )
    return await render_with_form(request, "rides.html", context, form)


def _balances(wallet: WalletView) -> list[dict[str, Any]]:
    return [{"currency": b.currency, "available": b.available} for b in wallet.balances]


@routes.get(RIDES)
@signed_in
async def rides(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await rides_page(request, viewer, Form.blank())


@routes.post(RIDES)
@signed_in
async def estimate_or_request(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """Estimate (shown on the page) or Request ride (then its page), by the button pressed."""
    form = await read_form(request)
    if form.value("intent") == "estimate":
        try:
            trip = form.parse(EstimateBody, converters=TRIP_CONVERTERS)
            quote: Estimate = await ask(request, "rides", estimate_message(trip))
        except REFUSALS as error:
            form.refuse(error, inputs=TRIP_INPUTS)
            return await rides_page(request, viewer, form)
        return await rides_page(request, viewer, form, estimate=quote, trip=trip)
    try:
        spend(request, "rides")
        body = form.parse(RideBody, converters=TRIP_CONVERTERS)
        if form.key is None:
            raise ProblemError(400, "idempotency_key_required", "Reload the page and try again.")
        message = request_message(
            body, user_id=viewer.user_id, ride_id=ride_id_for(viewer.user_id, form.key)
        )
        message = msgspec.structs.replace(
            message, idempotency=form.idempotency(request, body, caller=viewer.user_id)
        )
        view: RideView = await ask(request, "rides", message, timeout=REQUEST_ASK_TIMEOUT)
    except REFUSALS as error:
        short = isinstance(error, DomainError) and error.code == "insufficient_funds"
        if short:
            form.status = 422
            form.summary.append(
                "Your wallet does not have enough for this ride. Top up your wallet, "
                "then request it again."
            )
        else:
            form.refuse(error, inputs=TRIP_INPUTS)
        return await rides_page(request, viewer, form, funds_short=short)
    cookies.flash(request, "ride_requested")
    return redirect(f"{RIDES}/{view.id}")


async def ride_page(request: web.Request, viewer: Viewer, form: Form | None = None) -> web.Response:
    """/rides/{id}: one ride as the rider (or its driver) follows it."""
    view: RideView = await ask(
        request, "rides", GetRide(ride_id=request.match_info["id"], user_id=viewer.user_id)
    )
    ride: dict[str, Any] = await named(request, view)
    form = form or Form.blank()
    context = {"title": "Your ride", "section": "rides", "form": form, **ride_context(ride, viewer)}
    return await render_with_form(request, "ride.html", context, form)


@routes.get(RIDES + "/{id}")
@signed_in
async def ride(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await ride_page(request, viewer)


@routes.get(RIDES + "/{id}/live")
@signed_in
async def ride_live(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The ride's changing region alone, for static/rides.js to swap in."""
    view: RideView = await ask(
        request, "rides", GetRide(ride_id=request.match_info["id"], user_id=viewer.user_id)
    )
    ride: dict[str, Any] = await named(request, view)
    context = {"form": Form.blank(), **ride_context(ride, viewer)}
    return await render(request, "ride_live.html", context)


@routes.post(RIDES + "/{id}/cancel")
@signed_in
async def cancel(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await read_form(request)
    try:
        body = form.parse(CancelBody)
        message = cancel_message(body, ride_id=request.match_info["id"], user_id=viewer.user_id)
        message = msgspec.structs.replace(
            message, idempotency=form.idempotency(request, body, caller=viewer.user_id)
        )
        await ask(request, "rides", message)
    except REFUSALS as error:
        form.refuse(error)
        return await ride_page(request, viewer, form)
    cookies.flash(request, "ride_cancelled")
    return redirect(f"{RIDES}/{request.match_info['id']}")


@routes.post(RIDES + "/{id}/rating")
@signed_in
async def rate(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await read_form(request)
    try:
        body = form.parse(RatingBody)
        message = rating_message(body, ride_id=request.match_info["id"], user_id=viewer.user_id)
        message = msgspec.structs.replace(
            message, idempotency=form.idempotency(request, body, caller=viewer.user_id)
        )
        await ask(request, "rides", message)
    except REFUSALS as error:
        form.refuse(error, inputs={"$.stars": "stars"})
        if "stars" in form.errors:
            form.errors["stars"] = "Choose from 1 to 5 stars."
        return await ride_page(request, viewer, form)
    cookies.flash(request, "ride_rated")
    return redirect(f"{RIDES}/{request.match_info['id']}")


# ── the driver ────────────────────────────────────────────────────────────────────────


def driving_of(request: web.Request) -> str | None:
    """The status this browser last set (or a ride showed): online, offline or unknown."""
    held = cookies.read(request, DRIVING_COOKIE)
    return held if held in ("online", "offline") else None


def remember_driving(request: web.Request, status: str) -> None:
    if driving_of(request) != status:
        cookies.queue(request, DRIVING_COOKIE, status, DRIVING_SECONDS)


async def driver_state(request: web.Request, viewer: Viewer) -> dict[str, Any] | None:
    """What the driver's live region shows: offers and the ride in hand; None for
    someone who is no driver yet."""
    try:
        found: OfferList = await ask(request, "rides", GetOffers(user_id=viewer.user_id))
    except NotADriver:
        return None
    current = await current_ride(request, viewer)
    driving = current if current is not None and _drives(current, viewer) else None
    if driving is not None:
        remember_driving(request, driving["driver"]["status"])
    now = datetime.now(UTC)
    offers = []
    for offer in msgspec.to_builtins(found.offers):
        expires = datetime.fromisoformat(offer["expires_at"].replace("Z", "+00:00"))
        seconds = max(0, math.ceil((expires - now).total_seconds()))
        trip = trip_map(offer["pickup"], offer["dropoff"])
        offers.append({**offer, "seconds": seconds, "trip": trip.description})
    return {
        "driving": ride_context(driving, viewer) if driving is not None else None,
        "offers": offers,
        "version": version_of(driving, offers),
        "status": driving_of(request),
    }


def _drives(ride: dict[str, Any], viewer: Viewer) -> bool:
    return bool((ride.get("driver") or {}).get("user_id") == viewer.user_id)


async def driver_page(
    request: web.Request,
    viewer: Viewer,
    form: Form | None = None,
    *,
    status: int | None = None,
) -> web.Response:
    """/driver: registration for someone who is no driver yet, else the driver's day."""
    form = form or Form.blank()
    state = await driver_state(request, viewer)
    context: dict[str, Any] = {
        "title": "Drive",
        "section": "rides",
        "form": form,
        "state": state,
        "earnings": [],
        "trips": [],
    }
    if state is not None:
        lines = await statement_lines(request, viewer)
        context["earnings"] = earnings_of(lines, datetime.now(UTC).date().isoformat())
        ids = ride_ids(lines, "capture", incoming=True)[:5]
        context["trips"] = await rides_of(request, viewer, ids)
    return await render_with_form(request, "driver.html", context, form, status=status)


@routes.get(DRIVER)
@signed_in
async def driver(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await driver_page(request, viewer)


@routes.get(DRIVER + "/live")
@signed_in
async def driver_live(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The driver's changing region alone (offers, the ride in hand) for static/rides.js."""
    state = await driver_state(request, viewer)
    return await render(request, "driver_live.html", {"state": state, "form": Form.blank()})


@routes.post(DRIVER)
@signed_in
async def register_driver(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await read_form(request)
    try:
        body = form.parse(DriverBody)
        message = driver_message(body, user_id=viewer.user_id)
        message = msgspec.structs.replace(
            message, idempotency=form.idempotency(request, body, caller=viewer.user_id)
        )
        view: DriverView = await ask(request, "rides", message)
    except AlreadyADriver:
        return redirect(DRIVER)
    except REFUSALS as error:
        form.refuse(error)
        return await driver_page(request, viewer, form)
    remember_driving(request, view.status)
    cookies.flash(request, "driver_registered")
    return redirect(DRIVER)


@routes.post(DRIVER + "/status")
@signed_in
async def driver_status(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await read_form(request)
    try:
        body = form.parse(StatusBody)
        view: DriverView = await ask(
            request, "rides", SetDriverStatus(user_id=viewer.user_id, status=body.status)
        )
    except REFUSALS as error:
        form.refuse(error)
        return await driver_page(request, viewer, form)
    remember_driving(request, view.status)
    cookies.flash(request, f"driver_{view.status}")
    return redirect(DRIVER)


@routes.post(DRIVER + "/location")
@signed_in
async def driver_location(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """A location ping: typed (the form, then back to the page), or from the browser's
    Geolocation (static/rides.js asks for JSON: 204, or a problem in words)."""
    quiet = "application/json" in request.headers.get("Accept", "")
    try:
        form = await read_form(request)
    except REFUSALS as error:
        if quiet:
            return quiet_refusal(error)
        raise
    try:
        body = form.parse(PointBody, converters=LOCATION_CONVERTERS)
        await ask(request, "rides", location_message(body, user_id=viewer.user_id))
    except REFUSALS as error:
        if quiet:
            return quiet_refusal(error)
        form.refuse(error, inputs={"$": "lat"})
        return await driver_page(request, viewer, form)
    if quiet:
        return web.Response(status=204)
    cookies.flash(request, "location_sent")
    return redirect(DRIVER)


def quiet_refusal(error: ProblemError | DomainError) -> web.Response:
    """A refused ping for static/rides.js: its status, and in words what went wrong."""
    problem = as_problem(error)
    return web.json_response({"message": humane(problem.detail)}, status=problem.status)


@routes.post(DRIVER + "/offers/{id}/{answer:accept|decline}")
@signed_in
async def answer_offer(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await read_form(request)
    accept = request.match_info["answer"] == "accept"
    try:
        message = AnswerOffer(
            ride_id=request.match_info["id"],
            user_id=viewer.user_id,
            accept=accept,
            idempotency=form.idempotency(request, None, caller=viewer.user_id),
        )
        await ask(request, "rides", message)
    except REFUSALS as error:
        form.refuse(error)
        return await driver_page(request, viewer, form)
    cookies.flash(request, "offer_accepted" if accept else "offer_declined")
    return redirect(DRIVER)


@routes.post(DRIVER + "/rides/{id}/{step:arrive|start|complete}")
@signed_in
async def advance(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await read_form(request)
    step = request.match_info["step"]
    try:
        message = AdvanceRide(
            ride_id=request.match_info["id"],
            user_id=viewer.user_id,
            step=step,  # type: ignore[arg-type]  # the route admits only the three steps
            idempotency=form.idempotency(request, None, caller=viewer.user_id),
        )
        await ask(request, "rides", message)
    except REFUSALS as error:
        form.refuse(error)
        return await driver_page(request, viewer, form)
    cookies.flash(request, f"ride_{step}")
    return redirect(DRIVER)
