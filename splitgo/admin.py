"""`splitgo admin create --email ...`: create or promote an admin, no HTTP involved.

The password of an admin it creates never goes on the command line (every user of the
machine sees those): it comes from SPLITGO_ADMIN_PASSWORD, or is asked on the terminal.
Promoting an existing account needs none.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Callable, Sequence

import aiohttp

from actors.auth.messages import InvalidField, MakeAdmin, UserView
from actors.runtime import ActorRef, ActorSystem, DomainError, PgDeadLetterStore
from actors.runtime.outbox import Outbox
from splitgo import config, event_loop
from splitgo.db import open_database
from splitgo.node import (
    ACTORS,
    Channels,
    NodeParts,
    email_channel,
    jwt_keys_for,
    load_plugins,
    public_url_for,
    spawn,
)
from splitgo.web.live import LiveHub
from transport import Codec, MemoryTransport


class NoPassword(Exception):
    """A new admin needs a password and none came: SPLITGO_ADMIN_PASSWORD is unset and there
    is no terminal to ask on, or the two typed on it differ."""


def parse(
    argv: Sequence[str], prog: str = "splitgo admin"
) -> tuple[argparse.Namespace, config.Settings]:
    parser = argparse.ArgumentParser(prog=prog, description="Manage admins.")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser(
        "create",
        help="create or promote an admin",
        description="Create or promote an admin. The password of a new one comes from "
        "SPLITGO_ADMIN_PASSWORD, or is asked on the terminal.",
    )
    create.add_argument("--email", required=True)
    create.add_argument("--name")
    config.add_flags(create)
    args = create.parse_args(list(argv)[1:]) if argv and argv[0] == "create" else None
    if args is None:
        parser.parse_args(list(argv))  # prints usage and exits
        raise SystemExit(2)
    return args, config.load(os.environ, args)


def ask_password(email: str) -> str:
    """The new admin's password, typed twice on the terminal (never echoed)."""
    if not sys.stdin.isatty():
        raise NoPassword(
            f"there is no account for {email} yet: give the new admin's password in "
            "SPLITGO_ADMIN_PASSWORD, or run this on a terminal to be asked for it"
        )
    password = getpass.getpass(f"Password for the new admin {email}: ")
    if getpass.getpass("The same password again: ") != password:
        raise NoPassword("the two passwords differ")
    return password


async def make_admin(
    auth: ActorRef,
    email: str,
    name: str | None,
    password: str | None,
    ask: Callable[[str], str],
) -> UserView:
    """Promote `email`, or create it with `password`, else with the password `ask` gives."""
    try:
        user: UserView = await auth.ask(
            MakeAdmin(email=email, password=password, name=name), timeout=30
        )
        return user
    except DomainError as error:
        # "no account with this email": a password would create one
        wanted = error.code == InvalidField.code and error.details.get("field") == "$.password"
        if password is not None or not wanted:
            raise
    password = await asyncio.to_thread(ask, email)
    created: UserView = await auth.ask(
        MakeAdmin(email=email, password=password, name=name), timeout=30
    )
    return created


async def create_admin(
    settings: config.Settings,
    email: str,
    name: str | None,
    ask: Callable[[str], str] = ask_password,
) -> UserView:
    """Run the auth actor in this process, on the node's database, just for this command."""
    load_plugins(settings)
    database = await open_database(settings.database_url, settings.data_dir, pool_size=2)
    codec = Codec()
    for spec in ACTORS.values():
        codec.register_module(spec.messages)
    transport = MemoryTransport(node_id=f"{settings.node_id}-admin")
    # relay=False: the events it writes wait in the outbox for a running node to deliver
    system = ActorSystem(
        transport,
        codec=codec,
        dead_letters=PgDeadLetterStore(database.pool),
        outbox=Outbox(database.pool, relay=False),
    )
    await system.start()
    try:
        async with aiohttp.ClientSession() as http:
            bound = f"http://{settings.host}:{settings.port}"
            parts = NodeParts(
                settings=settings,
                system=system,
                database=database,
                public_url=public_url_for(settings, bound),
                jwt_keys=jwt_keys_for(settings),
                http=http,
                email=email_channel(settings),
                channels=Channels(live=LiveHub()),
            )
            for spec in ACTORS.values():
                system.route(spec.name, shards=spec.shards, key=spec.key)
            spawn(system, ACTORS["auth"], parts)
            auth = system.ref("auth")
            return await make_admin(auth, email, name, settings.admin_password, ask)
    finally:
        await system.stop(5.0)
        await transport.close()
        await database.close()


def main(argv: Sequence[str], prog: str = "splitgo admin") -> int:
    args, settings = parse(argv, prog)
    try:
        chosen = event_loop.choose(settings.event_loop)  # as the node runs
        user = event_loop.run(create_admin(settings, args.email, args.name), chosen)
    except NoPassword as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    except DomainError as error:
        print(f"{prog}: {error.message} ({error.code})")
        return 1
    print(f"{user.email} is an admin (id {user.id}, roles {', '.join(user.roles)})")
    return 0
