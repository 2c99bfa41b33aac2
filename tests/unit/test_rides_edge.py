"""The rides edge's body → command conversion, without a server: coordinates must be JSON
numbers, fields are required or refused by name, ride ids follow the Idempotency-Key, and
a replayed key with another body is a conflict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import msgspec
import pytest

from actors.auth.messages import FindUserByChat, UserView
from actors.rides.messages import (
    AdvanceRide,
    CancelRide,
    DriverView,
    Estimate,
    EstimateRide,
    GetCurrentRide,
    OfferList,
    OfferView,
    Point,
    RateRide,
    RegisterDriver,
    RequestRide,
    RideNotFound,
    RideView,
    TimelineEntry,
    UpdateLocation,
)
from splitgo.bot.rides import NO_RIDE, NOT_AVAILABLE, current_ride, ride_text
from splitgo.web.problems import ProblemError, to_json, validation_problem
from splitgo.web.rides import (
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
)

T = TypeVar("T")

HERE = {"lat": 52.52, "lon": 13.405}
THERE = {"lat": 52.5, "lon": 13.44}


def decode(body: Any, body_type: type[T]) -> T:
    """Decode as the edge does: a validation failure is the edge's 422 problem."""
    try:
        return msgspec.json.decode(msgspec.json.encode(body), type=body_type)
    except msgspec.ValidationError as error:
        raise validation_problem(error) from None


def problem_of(body: Any, body_type: type[Any]) -> ProblemError:
    """The 422 problem a refused body gets."""
    with pytest.raises(ProblemError) as caught:
        decode(body, body_type)
    assert caught.value.status == 422
    assert caught.value.code == "validation_error"
    return caught.value


def refused(body: Any, body_type: type[Any]) -> str:
    """The field a refused body's 422 names."""
    return problem_of(body, body_type).errors[0].field


def names(body: Any, body_type: type[Any], where: str, name: str) -> bool:
    """The 422 points at the object `where` and its message names the field `name`."""
    problem = problem_of(body, body_type)
    return problem.errors[0].field == where and f"`{name}`" in problem.errors[0].message


def a_ride(**changes: Any) -> RideView:
    fields: dict[str, Any] = {
        "id": "r1",
        "status": "requested",
        "rider_id": "rider",
        "pickup": Point(lat=HERE["lat"], lon=HERE["lon"]),
        "dropoff": Point(lat=THERE["lat"], lon=THERE["lon"]),
        "estimate": Estimate(
            amount=1250, currency="EUR", distance_m=2600, duration_s=380, surge=1.0
        ),
        "timeline": [TimelineEntry(status="requested", at="2026-01-01T10:00:00.000Z")],
    }
    return RideView(**{**fields, **changes})


# ── coordinates ───────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("lat", [52, 52.5, -90, 180.5, 1e3])
def test_any_json_number_is_a_coordinate(lat: float) -> None:
    """Ints and floats are taken as degrees; the range is the actor's to check."""
    assert decode({"lat": lat, "lon": 0}, PointBody) == PointBody(lat=float(lat), lon=0.0)


@pytest.mark.parametrize(
    ("value", "field"),
    [("52.5", "$.lat"), (True, "$.lat"), (None, "$.lat"), ([52], "$.lat"), ({"deg": 5}, "$.lat")],
)
def test_a_coordinate_that_is_not_a_number_names_its_field(value: Any, field: str) -> None:
    """Strings, booleans, nulls, lists and objects are refused naming the coordinate."""
    assert refused({"lat": value, "lon": 13.4}, PointBody) == field


def test_nested_coordinates_are_named_by_their_path() -> None:
    """A bad pickup or dropoff coordinate names `$.pickup.lat`, `$.dropoff.lon`."""
    assert refused({"pickup": {"lat": "1", "lon": 2}, "dropoff": THERE}, EstimateBody) == (
        "$.pickup.lat"
    )
    assert refused({"pickup": HERE, "dropoff": {"lat": 1, "lon": False}}, RideBody) == (
        "$.dropoff.lon"
    )


def test_missing_and_extra_fields_are_refused() -> None:
    """A missing field is a 422 naming its own path; an unknown one points at its object and
    names the field."""
    assert refused({"lat": 1}, PointBody) == "$.lon"
    assert refused({"pickup": HERE}, EstimateBody) == "$.dropoff"
    assert refused({"pickup": {"lat": 1}, "dropoff": THERE}, RideBody) == "$.pickup.lon"
    assert names({"lat": 1, "lon": 2, "alt": 3}, PointBody, "$", "alt")
    assert names({"pickup": HERE, "dropoff": THERE, "tip": 1}, RideBody, "$", "tip")
    assert names({"pickup": {**HERE, "x": 1}, "dropoff": THERE}, RideBody, "$.pickup", "x")
    assert refused([HERE], PointBody) == "$"


# ── the other bodies ──────────────────────────────────────────────────────────────────


def test_driver_status_rating_and_cancel_bodies() -> None:
    """Each body takes its fields with their types and refuses the rest by name."""
    assert decode({"vehicle": "Golf", "plate": "B 1"}, DriverBody) == DriverBody("Golf", "B 1")
    assert refused({"vehicle": "Golf"}, DriverBody) == "$.plate"
    assert refused({"vehicle": "Golf", "plate": 7}, DriverBody) == "$.plate"
    assert decode({"status": "online"}, StatusBody).status == "online"
    assert refused({"status": "busy"}, StatusBody) == "$.status"
    assert decode({"stars": 5}, RatingBody) == RatingBody(stars=5)
    for stars in ("5", 4.5, True, None):
        assert refused({"stars": stars}, RatingBody) == "$.stars"
    assert refused({"stars": 5, "comment": 3}, RatingBody) == "$.comment"
    assert decode({}, CancelBody) == CancelBody()
    assert decode({"reason": "late"}, CancelBody).reason == "late"
    assert refused({"reason": "x" * 201}, CancelBody) == "$.reason"
    assert names({"why": "late"}, CancelBody, "$", "why")


def test_group_id_is_an_optional_non_empty_string() -> None:
    """A ride's group is optional; when given it is a non-empty string id."""
    assert decode({"pickup": HERE, "dropoff": THERE}, RideBody).group_id is None
    assert decode({"pickup": HERE, "dropoff": THERE, "group_id": "g"}, RideBody).group_id == "g"
    assert refused({"pickup": HERE, "dropoff": THERE, "group_id": ""}, RideBody) == "$.group_id"
    assert refused({"pickup": HERE, "dropoff": THERE, "group_id": 3}, RideBody) == "$.group_id"


# ── bodies into commands ──────────────────────────────────────────────────────────────


def test_bodies_become_the_actors_commands() -> None:
    """Every body turns into its command with the caller's id and the ride's id."""
    ride = decode({"pickup": HERE, "dropoff": THERE, "group_id": "g1"}, RideBody)
    assert request_message(ride, user_id="u", ride_id="r") == RequestRide(
        ride_id="r",
        user_id="u",
        pickup=Point(lat=52.52, lon=13.405),
        dropoff=Point(lat=52.5, lon=13.44),
        group_id="g1",
    )
    estimate = decode({"pickup": HERE, "dropoff": THERE}, EstimateBody)
    assert estimate_message(estimate) == EstimateRide(
        pickup=Point(lat=52.52, lon=13.405), dropoff=Point(lat=52.5, lon=13.44)
    )
    assert driver_message(DriverBody("Golf", "B 1"), user_id="u") == RegisterDriver(
        user_id="u", vehicle="Golf", plate="B 1"
    )
    assert location_message(PointBody(1.0, 2.0), user_id="u") == UpdateLocation(
        user_id="u", lat=1.0, lon=2.0
    )
    assert cancel_message(CancelBody("late"), ride_id="r", user_id="u") == CancelRide(
        ride_id="r", user_id="u", reason="late"
    )
    assert rating_message(RatingBody(4, "ok"), ride_id="r", user_id="u") == RateRide(
        ride_id="r", user_id="u", stars=4, comment="ok"
    )


def test_views_are_plain_json_without_tags() -> None:
    """Replies lose their `msg_type` tags, nested ones included."""
    shown = to_json(
        a_ride(driver=DriverView(user_id="d", vehicle="Golf", plate="B 1", status="online"))
    )
    assert "msg_type" not in shown
    assert "msg_type" not in shown["driver"]
    assert shown["pickup"] == HERE
    assert shown["timeline"] == [
        {"status": "requested", "at": "2026-01-01T10:00:00.000Z", "note": None}
    ]
    offers = OfferList(
        offers=[
            OfferView(
                ride_id="r",
                pickup=Point(lat=1.0, lon=2.0),
                dropoff=Point(lat=3.0, lon=4.0),
                fare=900,
                currency="EUR",
                expires_at="2026-01-01T10:00:15.000Z",
            )
        ]
    )
    assert to_json(offers)["offers"][0]["pickup"] == {"lat": 1.0, "lon": 2.0}
    step = to_json(AdvanceRide(ride_id="r", user_id="u", step="arrive"))
    assert step == {"ride_id": "r", "user_id": "u", "step": "arrive", "idempotency": None}


# ── the bot's answer ──────────────────────────────────────────────────────────────────


def test_the_bot_describes_a_ride_to_rider_and_driver() -> None:
    """/rides shows the status, the driver's car, both places and the fare."""
    car = DriverView(user_id="d", vehicle="Golf <GTI>", plate="B 1", status="online")
    text = ride_text(a_ride(status="driver_assigned", driver=car), "rider")
    assert "a driver is on the way" in text
    assert "Golf &lt;GTI&gt;, plate B 1" in text
    assert "Pickup: 52.52000, 13.40500" in text
    assert "Dropoff: 52.50000, 13.44000" in text
    assert "Fare: about 12.50 EUR" in text
    done = ride_text(a_ride(status="completed", driver=car, fare=1100), "d")
    assert "You are driving this ride." in done
    assert "Fare: 11.00 EUR" in done
    assert NO_RIDE == "You have no ride in progress."


@dataclass
class FakeRef:
    """An actor that answers one message type with a canned reply (or error)."""

    answers: dict[type, Any]

    async def ask(self, message: Any, **_: Any) -> Any:
        answer = self.answers[type(message)]
        if isinstance(answer, Exception):
            raise answer
        return answer


@dataclass
class FakeSystem:
    actors: dict[str, FakeRef]

    def routes(self) -> dict[str, int]:
        return dict.fromkeys(self.actors, 1)

    def ref(self, name: str) -> FakeRef:
        return self.actors[name]


@dataclass
class FakeChat:
    id: int = 42


@dataclass
class FakeMessage:
    chat: FakeChat = field(default_factory=FakeChat)
    answers: list[str] = field(default_factory=list)

    async def answer(self, text: str, **_: Any) -> None:
        self.answers.append(text)


def linked_user() -> UserView:
    return UserView(
        id="rider",
        email="r@example.com",
        name="Rider",
        email_verified=True,
        roles=[],
        telegram_linked=True,
        created_at="2026-01-01T00:00:00Z",
    )


async def ask_bot(rides: Any | None) -> list[str]:
    """What /rides answers a linked user, with the rides actor answering `rides`."""
    actors = {"auth": FakeRef({FindUserByChat: linked_user()})}
    if rides is not None:
        actors["rides"] = FakeRef({GetCurrentRide: rides})
    message = FakeMessage()
    await current_ride(cast(Any, message), cast(Any, FakeSystem(actors)))
    return message.answers


async def test_the_bot_asks_the_rides_actor_for_the_current_ride() -> None:
    """/rides shows the ride, says when there is none, and says when rides are absent."""
    (shown,) = await ask_bot(a_ride(status="in_progress"))
    assert "on the way" in shown
    assert await ask_bot(RideNotFound("none")) == [NO_RIDE]
    assert await ask_bot(None) == [NOT_AVAILABLE]
