"""The soak's people and what they do: sign-ups and logins, group expenses, sandbox top-ups,
transfers, group chat and reads, each a loop that runs until the client says stop.

Every write carries its key where the stored row shows it (a transfer's note, an expense's
description, a chat message's text, a top-up's own key column, a sign-up's email), so the
checks can find each effect by the key that made it.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from tests.soak.load import Client, Person, Request

PASSWORD = "correct horse battery staple 42"
FUNDS = 100_000  # minor units each member starts with
MEMBERS = 8  # two groups of four
PAUSE = 0.05  # s between one person's requests


@dataclass
class World:
    """The members, their groups and the groups' conversations."""

    members: list[Person]
    groups: dict[str, list[Person]]  # group id -> its members
    chats: dict[str, str]  # group id -> conversation id


class SetUpFailed(RuntimeError):
    """A step before the load did not succeed (the soak cannot start)."""


def need(request: Request) -> Request:
    if not request.succeeded:
        raise SetUpFailed(f"{request.kind} {request.path}: {request.answers[-3:]}")
    return request


async def sign_up(client: Client, name: str) -> tuple[Request, Person | None]:
    """Register a new address and log in; the register request and the person (None if
    either step was refused)."""
    email = f"{client.key('email')}@example.com"
    body = {"email": email, "password": PASSWORD, "name": name}
    registered = await client.send(
        Request("signup", "POST", "/api/v1/auth/register", body, client.key("signup"), None)
    )
    if not (registered.succeeded or (registered.status == 409 and len(registered.answers) > 1)):
        return registered, None
    login = await client.send(
        Request(
            "login",
            "POST",
            "/api/v1/auth/login",
            {"email": email, "password": PASSWORD},
            None,
            None,
        )
    )
    if not login.succeeded:
        return registered, None
    user_id = registered.id
    if user_id is None:  # a retried register answered email_taken: its first attempt won
        me = await client.send(
            Request(
                "me",
                "GET",
                "/api/v1/me",
                None,
                None,
                Person("", email, login.reply["access_token"]),
            )
        )
        user_id = need(me).id
    return registered, Person(str(user_id), email, login.reply["access_token"])


def went_through(pay: Request) -> bool:
    """Whether a press of Pay paid its checkout: answered 303, or answered 409
    `checkout_decided` after an attempt that got no answer (that attempt paid it: the soak
    only ever presses Pay)."""
    retried_into_decided = pay.answers[-1:] == [(409, "checkout_decided")] and len(pay.answers) > 1
    return pay.succeeded or retried_into_decided


async def top_up(client: Client, person: Person, amount: int) -> bool:
    """A EUR top-up paid at the sandbox's checkout; whether the payment was accepted."""
    created = await client.post(
        "top_up", person, "/api/v1/wallet/top-ups", {"amount": amount, "currency": "EUR"}
    )
    if not created.succeeded:
        return False
    checkout = str(created.reply["checkout_url"]).split("/sandbox/checkout/")[1]
    paid = await client.send(
        Request("pay", "POST", f"/sandbox/checkout/{checkout}/pay", None, None, None)
    )
    return went_through(paid)


async def build_world(client: Client) -> World:
    """Eight funded members in two groups of four, each group with its conversation."""
    signed = await asyncio.gather(*(sign_up(client, f"Member {n}") for n in range(MEMBERS)))
    members = [person for _, person in signed if person is not None]
    if len(members) != MEMBERS:
        raise SetUpFailed("a member's sign-up failed")
    if not all(await asyncio.gather(*(top_up(client, m, FUNDS) for m in members))):
        raise SetUpFailed("a member's top-up was not paid")
    groups: dict[str, list[Person]] = {}
    chats: dict[str, str] = {}
    for n in range(2):
        team = members[4 * n : 4 * n + 4]
        group = need(
            await client.post(
                "group", team[0], "/api/v1/groups", {"name": f"Soak {n}", "currency": "EUR"}
            )
        ).id
        assert group is not None
        for member in team[1:]:
            need(
                await client.post(
                    "member", team[0], f"/api/v1/groups/{group}/members", {"user_id": member.id}
                )
            )
        groups[group] = team
        opened = need(
            await client.post("chat_open", team[0], "/api/v1/conversations", {"group_id": group})
        )
        chats[group] = str(opened.id)
    return World(members, groups, chats)


# ── the load's loops ────────────────────────────────────────────────────────────────────


async def transfers(client: Client, payer: Person, payee: Person, rng: random.Random) -> None:
    """Small transfers from one member to the next; the note is the key."""
    while not client.stop.is_set():
        body = {"to_user_id": payee.id, "amount": rng.randint(1, 9), "currency": "EUR"}
        await client.post("transfer", payer, "/api/v1/transfers", body, key_in="note")
        await asyncio.sleep(PAUSE)


async def expenses(client: Client, group: str, team: list[Person], rng: random.Random) -> None:
    """Expenses split equally in a group, paid by each member in turn; the description is
    the key."""
    turn = 0
    while not client.stop.is_set():
        payer = team[turn % len(team)]
        body = {
            "amount": rng.randint(100, 999),
            "currency": "EUR",
            "paid_by": payer.id,
            "split": {"mode": "equal", "shares": [{"user_id": m.id} for m in team]},
        }
        path = f"/api/v1/groups/{group}/expenses"
        await client.post("expense", payer, path, body, key_in="description")
        turn += 1
        await asyncio.sleep(PAUSE)


async def chat(client: Client, conversation: str, team: list[Person]) -> None:
    """Messages in a group's conversation by each member in turn (slower than the chat's
    rate limit of one a second per person); the text is the key."""
    turn = 0
    while not client.stop.is_set():
        path = f"/api/v1/conversations/{conversation}/messages"
        await client.post("chat", team[turn % len(team)], path, {}, key_in="text")
        turn += 1
        await asyncio.sleep(0.4)


async def top_ups(client: Client, members: list[Person], rng: random.Random) -> None:
    """Top-ups by the members in turn, each paid at the sandbox's checkout."""
    turn = 0
    while not client.stop.is_set():
        await top_up(client, members[turn % len(members)], rng.randint(100, 999))
        turn += 1
        await asyncio.sleep(0.5)


async def sign_ups(client: Client) -> None:
    """New people signing up and logging in."""
    while not client.stop.is_set():
        await sign_up(client, "Newcomer")
        await asyncio.sleep(0.5)


async def reads(client: Client, world: World, rng: random.Random) -> None:
    """Who am I, a group's balances, my wallet: what an open app asks."""
    groups = list(world.groups)
    while not client.stop.is_set():
        group = rng.choice(groups)
        person = rng.choice(world.groups[group])
        await client.get("read_me", person, "/api/v1/me")
        await client.get("read_balances", person, f"/api/v1/groups/{group}/balances")
        await client.get("read_wallet", person, "/api/v1/wallet")
        await asyncio.sleep(PAUSE)


def workers(client: Client, world: World, seed: int) -> list[asyncio.Task[None]]:
    """The whole mix, started."""
    members = world.members
    loops = [
        *(
            transfers(client, members[n], members[(n + 1) % len(members)], random.Random(seed + n))
            for n in range(0, len(members), 2)
        ),
        *(
            expenses(client, group, team, random.Random(seed + 20 + n))
            for n, (group, team) in enumerate(world.groups.items())
        ),
        *(chat(client, world.chats[group], team) for group, team in world.groups.items()),
        top_ups(client, members, random.Random(seed + 40)),
        sign_ups(client),
        *(reads(client, world, random.Random(seed + 50 + n)) for n in range(2)),
    ]
    return [asyncio.create_task(loop) for loop in loops]
