"""The Splits routes for a group's history: the activity feed and the CSV export."""

from __future__ import annotations

import re

from aiohttp import web

from actors.splits.messages import ActivityPage, CsvExport, ExportGroup, GetActivity
from splitgo.web.declare import Content, PageQuery, documented
from splitgo.web.ops import page_params
from splitgo.web.problems import json_response, to_json
from splitgo.web.security import authenticate
from splitgo.web.splits.asking import ask_splits, group_id

routes = web.RouteTableDef()

_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def attachment(filename: str) -> str:
    safe = _FILENAME_UNSAFE.sub("_", filename).strip("._") or "export.csv"
    return f'attachment; filename="{safe}"'


@routes.get("/api/v1/groups/{id}/activity")
@documented(
    summary="What happened in the group, newest first",
    tags=["splits"],
    query=PageQuery,
    responses={200: ActivityPage},
)
async def activity(request: web.Request) -> web.Response:
    claims = authenticate(request)
    limit, cursor = page_params(request)
    page: ActivityPage = await ask_splits(
        request,
        GetActivity(group_id=group_id(request), user_id=claims.sub, limit=limit, cursor=cursor),
    )
    return json_response(to_json(page))


@routes.get("/api/v1/groups/{id}/export.csv")
@documented(
    summary="The group's expenses and settlements as CSV",
    tags=["splits"],
    responses={
        200: Content(
            media_type="text/csv",
            description="a CSV file",
            headers={"Content-Disposition": ("attachment; filename=...", True)},
        )
    },
)
async def export_csv(request: web.Request) -> web.Response:
    claims = authenticate(request)
    export: CsvExport = await ask_splits(
        request, ExportGroup(group_id=group_id(request), user_id=claims.sub)
    )
    return web.Response(
        text=export.text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": attachment(export.filename)},
    )
