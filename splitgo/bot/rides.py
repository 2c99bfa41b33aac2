"""`/rides`: the asker's ride in progress (as rider or driver) — its status, the driver,
pickup and dropoff, and the fare — asked of the rides actor. On a node that cannot reach
a rides actor the bot says rides are not available here."""

from __future__ import annotations

from html import escape

from aiogram import F, Router, types
from aiogram.enums import ChatType
from aiogram.filters import Command

from actors.payments.messages import format_money
from actors.rides.messages import GetCurrentRide, Point, RideNotFound, RideView
from actors.runtime import ActorSystem
from splitgo.bot.linking import require_user

NOT_AVAILABLE = "Rides are not available on this server yet."
NO_RIDE = "You have no ride in progress."

STATUS_TEXT = {
    "requested": "looking for a driver",
    "driver_assigned": "a driver is on the way",
    "driver_arrived": "your driver is at the pickup",
    "in_progress": "on the way",
    "completed": "completed",
    "cancelled": "cancelled",
    "no_driver": "no driver was found",
}


def place(point: Point) -> str:
    return f"{point.lat:.5f}, {point.lon:.5f}"


def ride_text(ride: RideView, user_id: str) -> str:
    """The ride as a short HTML message for the rider or the driver."""
    lines = [f"<b>Your ride</b>: {escape(STATUS_TEXT.get(ride.status, ride.status))}"]
    if ride.driver is not None and ride.driver.user_id != user_id:
        lines.append(f"Driver: {escape(ride.driver.vehicle)}, plate {escape(ride.driver.plate)}")
    elif ride.driver is not None:
        lines.append("You are driving this ride.")
    lines.append(f"Pickup: {place(ride.pickup)}")
    lines.append(f"Dropoff: {place(ride.dropoff)}")
    if ride.fare is not None:
        lines.append(f"Fare: {format_money(ride.fare, ride.estimate.currency)}")
    else:
        lines.append(f"Fare: about {format_money(ride.estimate.amount, ride.estimate.currency)}")
    return "\n".join(lines)


async def current_ride(message: types.Message, system: ActorSystem) -> None:
    if "rides" not in system.routes():
        await message.answer(NOT_AVAILABLE)
        return
    user = await require_user(message, system)
    if user is None:
        return
    try:
        ride: RideView = await system.ref("rides").ask(GetCurrentRide(user_id=user.id))
    except RideNotFound:
        await message.answer(NO_RIDE)
        return
    await message.answer(ride_text(ride, user.id))


def build_router() -> Router:
    """A fresh router of this feature (a router joins one dispatcher only)."""
    router = Router(name="rides")
    router.message.filter(F.chat.type == ChatType.PRIVATE)
    router.message.register(current_ride, Command("rides"))
    return router
