"""The demo page used as a person would, in Debian's Chromium against the real server.

Fields are found by their visible labels and buttons by their text; results are read from
the page as shown. The browser console must stay free of errors, and the server's log must
never hold the PAN or the name typed in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

PAN = "ABCDE1234F"
INVALID_PAN = "ABCDE0000F"  # mock magic value: digits 0000 are invalid
SYNTHETIC_NAME = "Asha Verma"
CONSENT_LABEL = "I agree that my PAN is verified with the Income Tax registry through Decentro."
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WAIT_MS = 60_000  # a limit for a busy machine: Playwright polls the page's state until then


@pytest.fixture
def page(browser: Any, example_app_server: Any) -> Iterator[Any]:
    """A fresh page on ``/``; records console errors and uncaught exceptions in ``page.errors``."""
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.errors = []
    page.on("console", lambda message: page.errors.append(f"{message.text} ({message.location['url']})")
            if message.type == "error" else None)
    page.on("pageerror", lambda error: page.errors.append(f"uncaught: {error}"))
    page.goto(example_app_server.base_url + "/")
    try:
        yield page
    finally:
        context.close()


def shown_answer(page: Any, result_id: str, *, status: str) -> dict[str, Any]:
    """Wait until the result box shows ``"status": <status>`` and return the JSON it shows."""
    from playwright.sync_api import expect

    box = page.locator(f"#{result_id}")
    expect(box).to_be_visible()
    expect(box).to_contain_text(f'"status": "{status}"')
    first_line, _, body = box.inner_text().partition("\n")
    answer: dict[str, Any] = json.loads(body)
    answer["http"] = first_line
    return answer


def console_errors(page: Any) -> list[str]:
    return list(page.errors)


def verify_pan(page: Any, pan: str, *, name: str = "", consent: bool = True) -> None:
    page.get_by_label("PAN", exact=True).fill(pan)
    page.get_by_label("Name (optional)").fill(name)
    page.get_by_role("checkbox", name=CONSENT_LABEL).set_checked(consent)
    page.get_by_role("button", name="Verify PAN").click()


def test_a_person_verifies_a_pan_sees_an_invalid_one_refused_and_opens_a_payment(page, example_app_server, tmp_path):
    verify_pan(page, PAN, name=SYNTHETIC_NAME)
    valid = shown_answer(page, "pan-result", status="SUCCESS")
    assert valid["http"] == "HTTP 200" and valid["data"]["pan_status"] == "VALID"
    assert UUID.match(valid["data"]["reference_id"])

    verify_pan(page, INVALID_PAN)
    invalid = shown_answer(page, "pan-result", status="FAILURE")
    assert invalid["http"] == "HTTP 200" and invalid["data"]["reference_id"] != valid["data"]["reference_id"]
    assert invalid["error"]["code"] == "INVALID_DOCUMENT"

    page.get_by_label("Amount (INR)").fill("10")
    page.get_by_role("button", name="Open payment").click()
    opened = shown_answer(page, "payment-result", status="PENDING")
    reference_id = opened["data"]["reference_id"]
    assert UUID.match(reference_id)
    assert page.get_by_text(reference_id).is_visible()

    screenshot = tmp_path / "demo-page.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 1000 and screenshot.read_bytes().startswith(PNG_SIGNATURE)

    page.get_by_role("button", name="Check status").click()
    settled = shown_answer(page, "payment-result", status="SUCCESS")  # amount 10 settles SUCCESS
    assert settled["data"]["reference_id"] == reference_id
    assert console_errors(page) == []
    assert_no_personal_data_logged(example_app_server)


def test_without_the_consent_box_ticked_the_page_shows_consent_required(page, example_app_server):
    verify_pan(page, PAN, consent=False)
    refused = shown_answer(page, "pan-result", status="FAILURE")
    assert refused["http"] == "HTTP 400" and refused["error"]["code"] == "CONSENT_REQUIRED"
    # The only console line is Chromium's note about that 400 answer; no script error.
    assert [line for line in console_errors(page) if not re.search(r"status of 400 .*/api/kyc/pan\)$", line)] == []

    verify_pan(page, PAN)
    assert shown_answer(page, "pan-result", status="SUCCESS")["http"] == "HTTP 200"


def assert_no_personal_data_logged(server: Any) -> None:
    log = server.log()
    assert "POST /api/kyc/pan" in log  # the log is the server's, and it did record the calls
    for secret in (PAN, INVALID_PAN, SYNTHETIC_NAME, "Demo Customer", "demo@example.com", "9876500011"):
        assert secret not in log
