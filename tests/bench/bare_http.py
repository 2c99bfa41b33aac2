"""The limit of the auth section: a bare aiohttp app in a process of its own.

    python -m tests.bench.bare_http --port 8081

One handler, GET /api/v1/me, answers a small JSON object shaped like splitgo's /me
body (a constant: no token check, no actor, no database), and GET /healthz answers
{"status": "ok"}. No middlewares and no access log, as splitgo's node runs without
aiohttp's access log. Listens on 127.0.0.1 only; stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from aiohttp import web

ME_BODY: dict[str, Any] = {
    "id": "0192f5a4-7d1e-7c3a-9b7e-3f1d2c4b5a69",
    "email": "bench-user@example.com",
    "name": "Bench User",
    "email_verified": False,
    "roles": ["rider"],
    "telegram_linked": False,
    "created_at": "2026-01-01T00:00:00Z",
    "phone": None,
    "phone_verified": False,
}


async def me(request: web.Request) -> web.Response:
    return web.json_response(ME_BODY)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/api/v1/me", me)
    app.router.add_get("/healthz", healthz)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.bare_http", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    web.run_app(create_app(), host="127.0.0.1", port=args.port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
