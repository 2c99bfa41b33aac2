"""Pages: a Splitwise export imported into a group (or into a new group), and the group
exported as JSON.

The same path as the JSON API (splitgo/web/splits/imports.py): the upload form sends the
file as a multipart form (read by `read_upload`, past the pages' 1 MiB form limit, CSRF
checked), the dry run's report is shown with a choice per Splitwise name (a member, or a
new placeholder), and confirming starts the node's import job and goes to its progress
page: a <progress> bar that static/import_progress.js moves as the job's status changes,
and that a browser without JavaScript follows by reloading (a refresh every 2 seconds
while it runs). A refusal (a file in another shape, too large) is shown at the file input.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from actors.runtime import DomainError
from actors.splits.messages import ExportGroupJson, GroupExport, ImportDryRun
from splitgo.pages import csrf
from splitgo.pages.forms import KEY_FIELD, REFUSALS, Form, read_form
from splitgo.pages.group_page import group_context
from splitgo.pages.guards import signed_in
from splitgo.pages.render import named, redirect, render
from splitgo.pages.sessions import Viewer
from splitgo.web.problems import ProblemError, json_response, to_json
from splitgo.web.splits.asking import ask_splits
from splitgo.web.splits.history import attachment
from splitgo.web.splits.imports import (
    ConfirmBody,
    MatchBody,
    dry_run,
    find_job,
    new_group_for,
    read_upload,
    start_import,
)

routes = web.RouteTableDef()

NEW = "new"  # the choice of a new placeholder for a name


async def _upload(request: web.Request) -> tuple[bytes | None, Form]:
    """The posted file and the form's other inputs (CSRF checked); a refusal of the file
    (too large, none) is put at the file input and the file is None."""
    form = Form()
    try:
        upload = await read_upload(request)
    except ProblemError as error:
        _refused(form, error)
        return None, form
    csrf.check(request, upload.fields.get(csrf.FIELD))
    form.values = {k: [v] for k, v in upload.fields.items() if k not in (csrf.FIELD, KEY_FIELD)}
    form.key = upload.fields.get(KEY_FIELD) or None
    return upload.data, form


def _refused(form: Form, error: ProblemError | DomainError) -> None:
    """A refusal of the file said at its input."""
    form.values.setdefault("file", [""])
    form.refuse(error, inputs={"$.file": "file"})


async def _review(
    request: web.Request,
    viewer: Viewer,
    group_id: str,
    result: ImportDryRun,
    *,
    status: int = 200,
) -> web.StreamResponse:
    context = await group_context(request, viewer, group_id)
    members = [
        {"user_id": m["user_id"], "name": m.get("name") or "Someone"}
        for m in context["group"]["members"]
    ]
    report = to_json(result.report)
    rows = [
        {"index": index, "name": match.name, "user_id": match.user_id or NEW}
        for index, match in enumerate(result.mapping)
    ]
    return await render(
        request,
        "import_review.html",
        {
            **context,
            "title": f"Import · {context['title']}",
            "report": report,
            "rows": rows,
            "members": members,
            "already": result.already_imported,
            "new": NEW,
        },
        status=status,
    )


@routes.get("/groups/{id}/import")
@signed_in
async def import_form(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    group_id = request.match_info["id"]
    context = await group_context(request, viewer, group_id)
    return await render(
        request,
        "import.html",
        {**context, "title": f"Import · {context['title']}", "form": Form.blank()},
    )


@routes.post("/groups/{id}/import")
@signed_in
async def import_check(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    group_id = request.match_info["id"]
    data, form = await _upload(request)
    if data is not None:
        try:
            result = await dry_run(request, viewer.user_id, group_id, data)
            return await _review(request, viewer, group_id, result)
        except REFUSALS as error:
            _refused(form, error)
    context = await group_context(request, viewer, group_id)
    return await render(
        request,
        "import.html",
        {**context, "title": f"Import · {context['title']}", "form": form},
        status=form.status if form.status >= 400 else 422,
    )


@routes.post("/groups/{id}/import/confirm")
@signed_in
async def import_confirm(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    group_id = request.match_info["id"]
    form = await read_form(request)
    mapping = []
    index = 0
    while form.value(f"name.{index}"):
        chosen = form.value(f"map.{index}")
        mapping.append(
            MatchBody(
                name=form.value(f"name.{index}"), user_id=None if chosen in ("", NEW) else chosen
            )
        )
        index += 1
    try:
        body = ConfirmBody(file_sha256=form.value("file_sha256"), mapping=mapping)
        job = await start_import(request, viewer.user_id, group_id, body, key=form.key)
    except REFUSALS as error:
        form.values.setdefault("file", [""])
        form.refuse(error, inputs={"$.file_sha256": None, "$.file": "file"})
        context = await group_context(request, viewer, group_id)
        return await render(
            request,
            "import.html",
            {**context, "title": f"Import · {context['title']}", "form": form},
            status=form.status,
        )
    return redirect(f"/groups/{group_id}/import/jobs/{job.id}")


def _job_context(request: web.Request, viewer: Viewer) -> dict[str, Any]:
    job = find_job(request, viewer.user_id, request.match_info["job_id"])
    if job.group_id != request.match_info["id"]:
        raise ProblemError(404, "import_not_found", "no such import in this group")
    return {"job": to_json(job.view())}


@routes.get("/groups/{id}/import/jobs/{job_id}")
@signed_in
async def import_progress(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    group_id = request.match_info["id"]
    job = _job_context(request, viewer)
    context = await group_context(request, viewer, group_id)
    return await render(
        request,
        "import_progress.html",
        {**context, **job, "title": f"Import · {context['title']}"},
    )


@routes.get("/groups/{id}/import/jobs/{job_id}/status")
@signed_in
async def import_status(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The job's `{state, done, total}` for static/import_progress.js."""
    job = _job_context(request, viewer)["job"]
    return json_response({key: job[key] for key in ("state", "done", "total")})


# ── a new group from a file ────────────────────────────────────────────────────────────


@routes.get("/imports/splitwise")
@signed_in
async def new_group_form(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await render(
        request,
        "import_new.html",
        {"title": "Import from Splitwise", "section": "groups", "form": Form.blank()},
    )


@routes.post("/imports/splitwise")
@signed_in
async def new_group_check(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    data, form = await _upload(request)
    if data is not None:
        try:
            group = await new_group_for(request, viewer.user_id, data, form.value("name"), None)
            result = await dry_run(request, viewer.user_id, group.id, data)
            return await _review(request, viewer, group.id, result)
        except REFUSALS as error:
            _refused(form, error)
    return await render(
        request,
        "import_new.html",
        {"title": "Import from Splitwise", "section": "groups", "form": form},
        status=form.status if form.status >= 400 else 422,
    )


# ── export ─────────────────────────────────────────────────────────────────────────────


@routes.get("/groups/{id}/export.json")
@signed_in
async def export_json(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The whole group as JSON, as GET /api/v1/groups/{id}/export.json answers it."""
    export: GroupExport = await ask_splits(
        request, ExportGroupJson(group_id=request.match_info["id"], user_id=viewer.user_id)
    )
    data = await named(request, export)
    response = json_response(data)
    safe = "".join(c if c.isalnum() else "-" for c in export.group.name).strip("-") or "group"
    response.headers["Content-Disposition"] = attachment(f"{safe}.json")
    return response
