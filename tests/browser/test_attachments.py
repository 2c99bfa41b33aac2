"""A receipt in a real browser: a PNG chosen in the expense page's file input is uploaded,
its thumbnail appears (an image this site serves, loaded under the page's strict CSP),
and following it opens the picture."""

from __future__ import annotations

import io
import re
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, expect

from tests.browser.harness import Site, sign_in
from tests.browser.test_expenses import verified


def test_upload_a_receipt_see_its_thumbnail_and_open_it(
    page: Page, site: Site, tmp_path: Path
) -> None:
    """The labelled file input takes a PNG; after Upload the page says so and shows the
    file's thumbnail, loaded (it has pixels); clicking it opens the PNG itself."""
    ana = verified(site, "Ana")
    made = site.call(
        "POST", "/api/v1/groups", ana, {"name": "Receipts", "currency": "EUR"},
        headers={"Idempotency-Key": "attachments-browser-group"},
    )  # fmt: skip
    assert made.status == 201, made.body
    group = made.body["id"]
    body = {
        "description": "Groceries",
        "amount": 2350,
        "currency": "EUR",
        "paid_by": ana.id,
        "split": {"mode": "equal", "shares": [{"user_id": ana.id}]},
    }
    expense = site.call("POST", f"/api/v1/groups/{group}/expenses", ana, body)
    assert expense.status == 201, expense.body
    receipt = tmp_path / "receipt.png"
    buffer = io.BytesIO()
    Image.new("RGB", (400, 600), (20, 120, 90)).save(buffer, "PNG")
    receipt.write_bytes(buffer.getvalue())

    sign_in(page, ana)
    page.goto(f"/groups/{group}/expenses/{expense.body['id']}")
    page.get_by_label("Add a receipt or file").set_input_files(receipt)
    page.get_by_role("button", name="Upload").click()

    expect(page).to_have_url(re.compile(rf"/expenses/{expense.body['id']}#attachments$"))
    expect(page.get_by_role("status").first).to_contain_text("Attachment added.")
    thumbnail = page.locator("#attachments img.attachment-thumb")
    expect(thumbnail).to_have_count(1)
    expect(thumbnail).to_have_attribute("src", re.compile(r"/attachments/[^/]+/thumbnail$"))
    thumbnail.scroll_into_view_if_needed()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle()
    )

    with page.expect_response(re.compile(r"/attachments/[^/]+$")) as opened:
        page.locator("#attachments a.attachment-open").click()
    response = opened.value
    assert response.status == 200
    assert response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.body())).size == (400, 600)
