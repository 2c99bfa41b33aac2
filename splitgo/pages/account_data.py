"""Your data: download everything splitgo keeps about you, and delete your account.

`/account/data` holds both. "Download my data" is a plain link to `/account/data/export`,
the same document as GET /api/v1/me/export (`me_data.gather_export`), served as the file
splitgo-export-YYYY-MM-DD.json. "Delete my account" is a form confirmed with the password
that sends auth `DeleteAccount` (as DELETE /api/v1/me); while the wallet or a group
balance is not zero it is refused, and each reason is said at the form in words (who is
owed what, in which group, and what to do). Once deleted, this browser is signed out and
the sign-in page says so.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from aiohttp import web

from actors.auth.messages import AccountNotEmpty, DeleteAccount
from splitgo.pages import cookies, sessions
from splitgo.pages.forms import REFUSALS, Form, read_form
from splitgo.pages.guards import SIGN_IN, signed_in, spend
from splitgo.pages.render import redirect, render_with_form
from splitgo.pages.sessions import Viewer
from splitgo.web.actors import ask
from splitgo.web.me_data import DeleteMeBody, deletion_refused, export_filename, gather_export
from splitgo.web.problems import json_response

log = structlog.get_logger("splitgo.pages.account_data")
routes = web.RouteTableDef()

DATA = "/account/data"

cookies.FLASHES.update(
    {
        "account_deleted": "Your account is deleted. What you wrote now shows as written by "
        "“Deleted user”; you can sign up again with the same email any time.",
    }
)


@routes.get(DATA)
@signed_in
async def your_data(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await _page(request, Form.blank())


@routes.get(f"{DATA}/export")
@signed_in
async def export(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    document = await gather_export(request, viewer.user_id)
    response = json_response(document)
    filename = export_filename(datetime.now(UTC))
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    log.info("personal_data_exported", user_id=viewer.user_id)
    return response


@routes.post(f"{DATA}/delete")
@signed_in
async def delete(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await read_form(request)
    try:
        spend(request, "password")  # a password is tried here: the sign-in's limit
        body = form.parse(DeleteMeBody)
        message = DeleteAccount(
            user_id=viewer.user_id,
            session_id=viewer.session_id,
            password=body.password or None,
            idempotency=form.idempotency(request, body, caller=viewer.user_id),
        )
        await ask(request, "auth", message, timeout=30)
    except AccountNotEmpty as error:
        form.refuse(deletion_refused(error))
        return await _page(request, form, not_empty=True)
    except REFUSALS as error:
        form.refuse(error)
        return await _page(request, form)
    await sessions.sign_out(request)
    cookies.flash(request, "account_deleted")
    return redirect(SIGN_IN)


async def _page(request: web.Request, form: Form, *, not_empty: bool = False) -> web.Response:
    return await render_with_form(
        request,
        "account_data.html",
        {
            "title": "Your data",
            "section": "account",
            "form": form,
            "not_empty": not_empty,
        },
        form,
    )
