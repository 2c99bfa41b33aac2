"""The Splits route of where the caller stands across all their groups."""

from __future__ import annotations

from aiohttp import web

from actors.splits.messages import GetSummary, SummaryView
from splitgo.web.declare import documented
from splitgo.web.problems import json_response, to_json
from splitgo.web.security import authenticate
from splitgo.web.splits.asking import ask_splits

routes = web.RouteTableDef()


@routes.get("/api/v1/me/summary")
@documented(
    summary="Where you stand across all your groups",
    description="Per currency what you are owed and owe (`totals`); per person what you and "
    "they owe each other across groups, by the groups' settle plans (`people`, net > 0: "
    "they owe you); your net in each active group (`groups`); and the newest activity of "
    "all of them (`recent`). People are named beside their ids.",
    tags=["splits"],
    responses={200: SummaryView},
)
async def summary(request: web.Request) -> web.Response:
    claims = authenticate(request)
    view: SummaryView = await ask_splits(request, GetSummary(user_id=claims.sub))
    return json_response(to_json(view))
