"""Pages: the receipts and attachments of an expense (issue 17, item 3), shown on the
expense's page (templates/attachments_section.html, included by expense_detail.html).

- The section lists the attachments, a thumbnail of each (an <img> from a route of this
  site: `…/attachments/{aid}/thumbnail`) linking to the file (`…/attachments/{aid}`:
  an image opens in place, a PDF downloads), who added it and when, and a Delete link.
- The upload form is `multipart/form-data`: its CSRF token and idempotency key come
  before the file, and the token is checked before a byte of the file is read. The file
  is read as a stream and refused past the size limit without being held whole
  (splitgo/web/splits/attachments.py `read_upload`, shared with the JSON route, as are
  the attachment id derived from the form's key and the files actor's refusals naming
  the `file` input). A refusal — wrong type, too large, a damaged image, too many — is
  shown at the file input (aria-describedby), on the expense's page again.
- Delete asks first: with JavaScript a <dialog> in the section (static/group_live.js
  opens it), without it a confirmation page (templates/attachments_delete.html).
- Who may: the same as the JSON routes, through splits: to someone not in the group the
  expense and its files do not exist (the 404 page), and an archived group's attachments
  can be read but not added or deleted.

`attachments_context` is what the section needs; splitgo/pages/expenses.py
`render_detail` adds it to the expense page's context.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from actors.files.messages import MAX_UPLOAD_BYTES, PDF, AttachmentNotFound
from splitgo.pages import cookies, csrf
from splitgo.pages.forms import KEY_FIELD, REFUSALS, Form, read_form
from splitgo.pages.group_page import group_context
from splitgo.pages.guards import signed_in, spend
from splitgo.pages.render import named, redirect, render
from splitgo.pages.sessions import Viewer
from splitgo.web.idempotency import HEADER
from splitgo.web.names import NAMES
from splitgo.web.splits.attachments import (
    ACCEPTED,
    FILE_FIELD,
    attachment_id_for,
    check_member,
    content_of,
    delete_one,
    file_response,
    list_of,
    read_upload,
    store_upload,
)

routes = web.RouteTableDef()

# the upload form as it was refused, for the expense page rendered again with it
UPLOAD_FORM = web.RequestKey("pages_attachment_form", Form)
# where a refusal's field shows: the file's errors at the file input, a damaged form's
# key at the top
UPLOAD_INPUTS: dict[str, str | None] = {FILE_FIELD: FILE_FIELD, HEADER: None}
# the rate limit's bucket of uploads (the JSON route's too, once hardening lists it)
RATE_GROUP = "attachments"

cookies.FLASHES.update(
    {
        "attachment_added": "Attachment added.",
        "attachment_deleted": "Attachment deleted.",
    }
)

_UNITS = ("bytes", "KB", "MB", "GB")


def size_words(size: int) -> str:
    """A file's size for people: `512 bytes`, `84 KB`, `1.2 MB` (1 KB = 1024 bytes; one
    decimal below 10 of a unit, none above)."""
    if size < 1024:
        return "1 byte" if size == 1 else f"{max(size, 0)} bytes"
    value, unit = float(size), 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    if value < 10:
        return f"{value:.1f}".removesuffix(".0") + f" {_UNITS[unit]}"
    return f"{round(value)} {_UNITS[unit]}"


def base_path(group_id: str, expense_id: str) -> str:
    """The expense's attachments' pages."""
    return f"/groups/{group_id}/expenses/{expense_id}/attachments"


def shown(item: dict[str, Any], base: str) -> dict[str, Any]:
    """One attachment as the section shows it: its JSON view with its size in words, its
    kind and its pages' paths."""
    url = f"{base}/{item['id']}"
    return {
        **item,
        "size_words": size_words(int(item["size"])),
        "is_image": str(item["content_type"]).startswith("image/"),
        "is_pdf": item["content_type"] == PDF,
        "url": url,
        "thumbnail_url": f"{url}/thumbnail" if item["has_thumbnail"] else None,
        "delete_url": f"{url}/delete",
    }


async def _with_names(request: web.Request, items: list[dict[str, Any]]) -> None:
    """`uploaded_by_name` beside `uploaded_by`, from the edge's name book."""
    book = request.app.get(NAMES)
    missing = {item["uploaded_by"] for item in items if not item.get("uploaded_by_name")}
    names = await book.names(missing) if book is not None and missing else {}
    for item in items:
        item.setdefault("uploaded_by_name", names.get(item["uploaded_by"], "Someone"))


async def attachments_context(
    request: web.Request, viewer: Viewer, expense_id: str
) -> dict[str, Any]:
    """What attachments_section.html needs, for the expense whose page this is (the
    caller, rendering that page, has had splits' word that the viewer is a member):
    `attachments` (oldest first, see `shown`), `attachment_form` (the upload form: blank,
    or as it was refused), `attachment_accept`, `attachment_limit` (words)."""
    group_id = request.match_info["id"]
    found = await list_of(request, group_id, expense_id)
    items: list[dict[str, Any]] = await named(request, found.items) if found.items else []
    await _with_names(request, items)
    base = base_path(group_id, expense_id)
    return {
        "attachments": [shown(item, base) for item in items],
        "attachment_form": request.get(UPLOAD_FORM) or Form.blank(),
        "attachment_accept": ACCEPTED,
        "attachment_limit": size_words(MAX_UPLOAD_BYTES),
    }


async def _expense_page(request: web.Request, viewer: Viewer, form: Form) -> web.Response:
    """The expense's page again, with the refused upload form in its section."""
    # imported here: expenses.py imports this module for `attachments_context`
    from splitgo.pages.expenses import render_detail

    request[UPLOAD_FORM] = form
    return await render_detail(request, viewer, Form.blank(), status=form.status)


def _ids(request: web.Request) -> tuple[str, str]:
    return request.match_info["id"], request.match_info["eid"]


@routes.post("/groups/{id}/expenses/{eid}/attachments")
@signed_in
async def upload(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    group_id, expense_id = _ids(request)
    spend(request, RATE_GROUP)  # decoding and thumbnailing cost: limited per address
    # a stranger gets the 404 page before anything of the upload is read
    await check_member(request, group_id, expense_id, viewer.user_id, changing=False)
    form = Form(values={FILE_FIELD: []})

    def guard(fields: Any) -> None:
        token = fields.get(csrf.FIELD)
        csrf.check(request, token if isinstance(token, str) else None)

    try:
        sent = await read_upload(request, on_file=guard)
        key = sent.fields.get(KEY_FIELD, "").strip()
        form.key = key or None
        await check_member(request, group_id, expense_id, viewer.user_id, changing=True)
        scoped = form.idempotency(request, None, caller=viewer.user_id)
        await store_upload(
            request,
            sent,
            group=group_id,
            expense_id=expense_id,
            user_id=viewer.user_id,
            attachment_id=(
                attachment_id_for(scoped.scope, scoped.key) if scoped else str(uuid.uuid4())
            ),
        )
    except csrf.CsrfRefused:
        raise  # the page that says so, never a field's error
    except REFUSALS as error:
        form.refuse(error, inputs=UPLOAD_INPUTS)
        return await _expense_page(request, viewer, form)
    cookies.flash(request, "attachment_added")
    return redirect(f"/groups/{group_id}/expenses/{expense_id}#attachments")


@routes.get("/groups/{id}/expenses/{eid}/attachments/{aid}")
@signed_in
async def open_file(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    group_id, expense_id = _ids(request)
    await check_member(request, group_id, expense_id, viewer.user_id, changing=False)
    content = await content_of(request, group_id, expense_id, request.match_info["aid"], "original")
    return file_response(request, content)


@routes.get("/groups/{id}/expenses/{eid}/attachments/{aid}/thumbnail")
@signed_in
async def thumbnail(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    group_id, expense_id = _ids(request)
    await check_member(request, group_id, expense_id, viewer.user_id, changing=False)
    content = await content_of(
        request, group_id, expense_id, request.match_info["aid"], "thumbnail"
    )
    return file_response(request, content)


@routes.get("/groups/{id}/expenses/{eid}/attachments/{aid}/delete")
@signed_in
async def confirm_delete(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    group_id, expense_id = _ids(request)
    layout = await group_context(request, viewer, group_id)
    await check_member(request, group_id, expense_id, viewer.user_id, changing=False)
    found = await list_of(request, group_id, expense_id)
    wanted = request.match_info["aid"]
    item = next((view for view in found.items if view.id == wanted), None)
    if item is None:
        raise AttachmentNotFound("This attachment is gone: it was deleted already.")
    return await render(
        request,
        "attachments_delete.html",
        {
            **layout,
            "title": f"Delete {item.filename}?",
            "attachment": shown(await named(request, item), base_path(group_id, expense_id)),
            "expense_url": f"/groups/{group_id}/expenses/{expense_id}",
        },
    )


@routes.post("/groups/{id}/expenses/{eid}/attachments/{aid}/delete")
@signed_in
async def delete(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    group_id, expense_id = _ids(request)
    await read_form(request)  # its CSRF token
    await check_member(request, group_id, expense_id, viewer.user_id, changing=True)
    await delete_one(request, group_id, expense_id, request.match_info["aid"], viewer.user_id)
    cookies.flash(request, "attachment_deleted")
    return redirect(f"/groups/{group_id}/expenses/{expense_id}#attachments")
