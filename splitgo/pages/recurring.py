"""The web app's pages for issue 17 items 5 and 6: a group's recurring expenses (with a
Stop button each), the simplify switch (its form sits on the Members tab), and settling
everything with one person across groups (from the People rows of home).

Each form builds the message its JSON route builds (splitgo/web/splits/recurring.py), and a
refusal is said on the page in words; everything works without JavaScript.
"""

from __future__ import annotations

from aiohttp import web

from actors.auth.messages import GetUser
from actors.splits.messages import (
    ListRecurring,
    RecurringList,
    SetSimplify,
    StopRecurring,
)
from splitgo.pages import cookies
from splitgo.pages.forms import REFUSALS, Form, as_problem, read_form
from splitgo.pages.group_page import group_context
from splitgo.pages.guards import signed_in
from splitgo.pages.render import named, redirect, render
from splitgo.pages.sessions import Viewer
from splitgo.web.actors import find_user
from splitgo.web.keys import SERVICES
from splitgo.web.splits.asking import ask_splits
from splitgo.web.splits.recurring import owed_by_group, settle_all

routes = web.RouteTableDef()

cookies.FLASHES.update(
    {
        "recurring_stopped": "Stopped. No more copies will be added; the ones made stay.",
        "plan_simplified": "The settle plan now shows the fewest transfers.",
        "plan_direct": "The settle plan now shows who owes whom directly.",
        "settled_all": "Settled with them in every group. The balances are up to date.",
    }
)


def gid(request: web.Request) -> str:
    return request.match_info["id"]


async def recurring_page(
    request: web.Request, viewer: Viewer, *, problem: str | None = None, status: int = 200
) -> web.Response:
    context = await group_context(request, viewer, gid(request))
    listed: RecurringList = await ask_splits(
        request, ListRecurring(group_id=gid(request), user_id=viewer.user_id)
    )
    return await render(
        request,
        "recurring.html",
        {
            **context,
            "tab": "recurring",
            "title": f"Recurring · {context['group']['name']}",
            "items": (await named(request, listed))["items"],
            "problem": problem,
        },
        status=status,
    )


@routes.get("/groups/{id}/recurring")
@signed_in
async def recurring(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await recurring_page(request, viewer)


@routes.post("/groups/{id}/recurring/{eid}/stop")
@signed_in
async def stop(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    await read_form(request)
    message = StopRecurring(
        group_id=gid(request), user_id=viewer.user_id, expense_id=request.match_info["eid"]
    )
    try:
        await ask_splits(request, message)
    except REFUSALS as error:
        problem = as_problem(error)
        return await recurring_page(request, viewer, problem=problem.detail, status=problem.status)
    cookies.flash(request, "recurring_stopped")
    return redirect(f"/groups/{gid(request)}/recurring")


@routes.post("/groups/{id}/simplify")
@signed_in
async def settings(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The simplify switch of the Members tab: two buttons, one value each."""
    form = await read_form(request)
    simplify = form.value("simplify") != "false"
    await ask_splits(
        request, SetSimplify(group_id=gid(request), user_id=viewer.user_id, simplify=simplify)
    )
    cookies.flash(request, "plan_simplified" if simplify else "plan_direct")
    return redirect(f"/groups/{gid(request)}/members")


async def person_page(
    request: web.Request, viewer: Viewer, form: Form, *, status: int = 200
) -> web.Response:
    person = request.match_info["user_id"]
    user = await find_user(request.app[SERVICES].system, GetUser(user_id=person))
    name = user.name if user is not None else "them"
    owed = await owed_by_group(request, viewer.user_id, person)
    return await render(
        request,
        "person_settle.html",
        {
            "title": f"Settle up with {name}",
            "section": "home",
            "person": {"user_id": person, "name": name, "has_account": user is not None},
            "owed": owed,
            "form": form,
        },
        status=status,
    )


@routes.get("/people/{user_id}/settle")
@signed_in
async def person(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await person_page(request, viewer, Form.blank(method="cash"))


@routes.post("/people/{user_id}/settle")
@signed_in
async def settle_person(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await read_form(request)
    method = form.value("method")
    try:
        if method not in ("cash", "wallet"):
            form.errors["method"] = "Choose how you pay: cash or from your wallet."
            return await person_page(request, viewer, form, status=422)
        if not form.key:  # the key names this payment: without it a retry could pay twice
            form.summary.append("This form is damaged. Reload the page and try again.")
            return await person_page(request, viewer, form, status=400)
        await settle_all(request, viewer.user_id, request.match_info["user_id"], form.key, method)
    except REFUSALS as error:
        form.refuse(error, inputs={"$.amount": None})
        return await person_page(request, viewer, form, status=form.status)
    cookies.flash(request, "settled_all")
    return redirect("/")
