"""`python run.py admin create --email ...`: create or promote an admin, no HTTP involved."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Sequence

import aiohttp

from actors.auth.messages import MakeAdmin, UserView
from actors.runtime import ActorSystem, DomainError, PgDeadLetterStore
from actors.runtime.outbox import Outbox
from splitgo import config
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


def parse(argv: Sequence[str]) -> tuple[argparse.Namespace, config.Settings]:
    parser = argparse.ArgumentParser(prog="run.py admin", description="Manage admins.")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create or promote an admin")
    create.add_argument("--email", required=True)
    create.add_argument("--password", help="needed only when the user does not exist yet")
    create.add_argument("--name")
    config.add_flags(create)
    args = create.parse_args(list(argv)[1:]) if argv and argv[0] == "create" else None
    if args is None:
        parser.parse_args(list(argv))  # prints usage and exits
        raise SystemExit(2)
    return args, config.load(os.environ, args)


async def create_admin(
    settings: config.Settings, email: str, password: str | None, name: str | None
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
            user: UserView = await system.ref("auth").ask(
                MakeAdmin(email=email, password=password, name=name), timeout=30
            )
            return user
    finally:
        await system.stop(5.0)
        await transport.close()
        await database.close()


def main(argv: Sequence[str]) -> int:
    args, settings = parse(argv)
    try:
        user = asyncio.run(create_admin(settings, args.email, args.password, args.name))
    except DomainError as error:
        print(f"run.py admin: {error.message} ({error.code})")
        return 1
    print(f"{user.email} is an admin (id {user.id}, roles {', '.join(user.roles)})")
    return 0
