"""Your data in a real browser: from the account page to the Your data page, the
download of the export as a file, and deleting the account with the password, refused in
words while a debt is open and done once it is settled; the page fits a 360 px phone."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, ViewportSize, expect

from tests.browser.harness import Site, sign_in
from tests.support.api import PASSWORD, User

PHONE: ViewportSize = {"width": 360, "height": 740}


def call_ok(
    site: Site, method: str, path: str, user: User, body: object, status: int
) -> dict[str, Any]:
    reply = site.call(method, path, user, body, {"Idempotency-Key": secrets.token_hex(8)})
    assert reply.status == status, reply.body
    return dict(reply.body) if isinstance(reply.body, dict) else {}


def owing(site: Site, creditor: User, debtor: User) -> str:
    """A group where `debtor` owes `creditor` 5.00 EUR."""
    group = call_ok(
        site, "POST", "/api/v1/groups", creditor, {"name": "Flat", "currency": "EUR"}, 201
    )
    path = f"/api/v1/groups/{group['id']}"
    call_ok(site, "POST", f"{path}/members", creditor, {"user_id": debtor.id}, 201)
    shares = [{"user_id": creditor.id}, {"user_id": debtor.id}]
    dinner = {
        "description": "Dinner",
        "amount": 1000,
        "currency": "EUR",
        "paid_by": creditor.id,
        "split": {"mode": "equal", "shares": shares},
    }
    call_ok(site, "POST", f"{path}/expenses", creditor, dinner, 201)
    return str(group["id"])


def test_download_then_delete_from_the_account_page(page: Page, site: Site, tmp_path: Path) -> None:
    """Bo finds Your data from his account, downloads his data as a dated JSON file, is
    told he owes Ana 5.00 EUR in Flat when he tries to delete, and once settled the
    account is deleted and the sign-in page says so."""
    ana, bo = site.register("Ana"), site.register("Bo")
    group = owing(site, ana, bo)
    sign_in(page, bo)
    page.goto("/account")
    page.get_by_role("link", name="Your data").click()
    expect(page).to_have_url(re.compile(r"/account/data$"))
    expect(page.get_by_role("heading", name="Your data", level=1)).to_be_visible()

    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download my data").click()
    download = downloading.value
    assert re.fullmatch(r"splitgo-export-\d{4}-\d{2}-\d{2}\.json", download.suggested_filename)
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert json.loads(saved.read_text())["user_id"] == bo.id

    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.get_by_label("Your password, to confirm").fill(PASSWORD)
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_role("alert").first).to_be_visible()
    expect(page.get_by_text("You owe Ana 5.00 EUR in Flat: settle up first.")).to_be_visible()

    cash = {"to_user_id": ana.id, "amount": 500, "currency": "EUR", "method": "cash"}
    call_ok(site, "POST", f"/api/v1/groups/{group}/settlements", bo, cash, 201)
    page.get_by_label("Your password, to confirm").fill(PASSWORD)
    page.get_by_role("button", name="Delete my account").click()
    expect(page).to_have_url(re.compile(r"/sign-in$"))
    expect(page.get_by_text("Your account is deleted.")).to_be_visible()
