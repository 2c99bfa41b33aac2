"""Home: where the signed-in person stands — what they owe and are owed per currency, per
person and per group — and what happened lately, from the splits actor's `GetSummary`
(the reply of GET /api/v1/me/summary, with the same names beside the ids)."""

from __future__ import annotations

from aiohttp import web

from actors.splits.messages import GetSummary, SummaryView
from splitgo.pages.guards import signed_in
from splitgo.pages.render import named, render
from splitgo.pages.sessions import Viewer
from splitgo.web.splits.asking import ask_splits

routes = web.RouteTableDef()


@routes.get("/home")
@signed_in
async def home(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    view: SummaryView = await ask_splits(request, GetSummary(user_id=viewer.user_id))
    summary = await named(request, view)
    return await render(
        request, "home.html", {"title": "Home", "section": "home", "summary": summary}
    )
