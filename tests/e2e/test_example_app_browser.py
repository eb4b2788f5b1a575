"""The onboarding demo and the operator console used as people would, in Debian's Chromium
against the real server (``flask --app example_app run``).

Fields are found by their visible labels and buttons by their names; every wait is on a state
of the page (Playwright's ``expect``), never a sleep. The browser console must stay free of
script errors, the server's log and the console's pages free of the personal data typed in.

Screenshots are written to ``$DECENTRO_E2E_ARTIFACTS`` (default ``build/e2e-artifacts``);
with ``DECENTRO_UPDATE_SCREENSHOTS=1`` the tests also rewrite the README's ``docs/demo.png``
and ``docs/console.png``.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from decentro_adapters.vault.fernet import FernetVault
from decentro_core.webhooks import sign_body

pytestmark = pytest.mark.e2e

PAN = "ABCDE1234F"
INVALID_PAN = "ABCDE0000F"  # mock magic value: digits 0000 are invalid
SYNTHETIC_NAME = "Asha Verma"
CUSTOMER = ("Demo Customer", "demo@example.com", "9876500011")
AADHAAR = "234567890124"  # synthetic, Verhoeff-valid
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WAIT_MS = 60_000  # a limit for a busy machine: Playwright polls the page's state until then
CONSOLE = "/decentro/console"
REPO = Path(__file__).resolve().parents[2]
# Read at import: the suite's hermetic fixture clears DECENTRO_* variables before each test.
ARTIFACTS = Path(os.environ.get("DECENTRO_E2E_ARTIFACTS", REPO / "build" / "e2e-artifacts"))
UPDATE_SCREENSHOTS = os.environ.get("DECENTRO_UPDATE_SCREENSHOTS") == "1"


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    try:
        yield context
    finally:
        context.close()


def open_page(context: Any, url: str) -> Any:
    """A page on ``url`` that records console errors and uncaught exceptions in ``page.errors``."""
    page = context.new_page()
    page.errors = []
    page.on("console", lambda message: page.errors.append(f"{message.text} ({message.location['url']})")
            if message.type == "error" else None)
    page.on("pageerror", lambda error: page.errors.append(f"uncaught: {error}"))
    page.goto(url)
    return page


def script_errors(page: Any) -> list[str]:
    """Console errors other than Chromium's note about an HTTP 4xx answer the page handled."""
    return [line for line in page.errors if not re.search(r"the server responded with a status of 4\d\d", line)]


def screenshot(page: Any, name: str, *, readme: str | None = None) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes().startswith(PNG_SIGNATURE) and path.stat().st_size > 5000
    if readme and UPDATE_SCREENSHOTS:
        (REPO / "docs" / readme).write_bytes(path.read_bytes())
    return path


def field_error(page: Any, error_id: str) -> Any:
    return page.locator(f"#{error_id}")


# -- the steps, as a customer takes them ------------------------------------------------------


def give_consent(page: Any) -> None:
    from playwright.sync_api import expect

    page.get_by_role("button", name="Continue").click()
    expect(field_error(page, "err-consent-agree")).to_contain_text("Tick the box")
    page.get_by_label("I agree to these checks").check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="2. Your PAN")).to_be_focused()


def verify_pan(page: Any) -> None:
    from playwright.sync_api import expect

    page.get_by_label("PAN", exact=True).fill(INVALID_PAN)
    page.get_by_role("button", name="Verify PAN").click()
    expect(field_error(page, "err-pan-pan")).to_have_text("Decentro says this document is not valid.")
    expect(page.get_by_label("PAN", exact=True)).to_have_attribute("aria-invalid", "true")
    page.get_by_label("PAN", exact=True).fill(PAN)
    page.get_by_label("Name as on the PAN (optional)").fill(SYNTHETIC_NAME)
    page.get_by_role("button", name="Verify PAN").click()
    expect(page.get_by_role("heading", name="3. Your bank account")).to_be_focused()
    expect(page.locator("#summary")).to_contain_text("PAN ABCDE••••F valid")


def verify_bank(page: Any) -> None:
    """The hint's failing pair is refused in the bank's words (not "this document"); then the
    pre-filled account passes."""
    from playwright.sync_api import expect

    hint = page.locator("p.note").first.inner_text()
    assert "123456789013 with IFSC HDFC0001234" in hint
    account, ifsc = page.get_by_label("Account number"), page.get_by_label("IFSC")
    prefilled = (account.input_value(), ifsc.input_value())
    account.fill("123456789013")
    ifsc.fill("HDFC0001234")
    page.get_by_role("button", name="Verify account").click()
    expect(field_error(page, "err-bank-account_number")).to_have_text(
        "The bank says this account does not exist or cannot take money.")
    account.fill(prefilled[0])
    ifsc.fill(prefilled[1])
    page.get_by_role("button", name="Verify account").click()
    expect(page.get_by_role("heading", name="4. Your Aadhaar")).to_be_focused()
    expect(page.locator("#summary")).to_contain_text("Bank account ••••••••9011 exists")


def walk_to_aadhaar(context: Any, server: Any) -> Any:
    """A new customer's page, through consent, PAN and bank account to the Aadhaar step."""
    page = open_page(context, server.base_url + "/")
    give_consent(page)
    verify_pan(page)
    verify_bank(page)
    return page


def verify_aadhaar_by_otp(page: Any) -> None:
    from playwright.sync_api import expect

    page.get_by_label("Aadhaar number").fill(AADHAAR)
    page.get_by_role("button", name="Send OTP").click()
    expect(page.get_by_label("OTP", exact=True)).to_be_focused()
    page.get_by_label("OTP", exact=True).fill("000000")  # the emulator refuses any OTP but 123456
    page.get_by_role("button", name="Verify OTP").click()
    expect(field_error(page, "err-otp-verify-otp")).not_to_be_empty()
    page.get_by_label("OTP", exact=True).fill("123456")
    page.get_by_role("button", name="Verify OTP").click()
    expect(page.get_by_role("heading", name="5. Your first payment")).to_be_focused()
    expect(page.locator("#summary")).to_contain_text("Aadhaar ending 0124 verified")


def verify_aadhaar_by_file(page: Any) -> None:
    from playwright.sync_api import expect

    page.get_by_label("Upload UIDAI's offline e-KYC file").check()
    page.get_by_role("button", name="Upload and verify").click()  # no file chosen yet
    expect(field_error(page, "err-file-file")).not_to_be_empty()
    page.get_by_label("Offline e-KYC file (XML or ZIP)").set_input_files(
        {"name": "offlineaadhaar.xml", "mimeType": "text/xml", "buffer": b"<OfflinePaperlessKyc/>"})
    page.get_by_label("Share code").fill("1234")
    page.get_by_role("button", name="Upload and verify").click()
    expect(page.get_by_role("heading", name="5. Your first payment")).to_be_focused()
    expect(page.locator("#summary")).to_contain_text("Aadhaar ending 0000 verified")  # the mock's holder


def open_payment(page: Any, amount: str = "30") -> str:
    """Pay: one request however often the busy button is pressed, with an Idempotency-Key.
    Amount 30 stays PENDING until Decentro's callback; 10 and 20 settle at the first status check."""
    from playwright.sync_api import expect

    held: list[Any] = []
    page.route("**/api/payments", lambda route: held.append(route))
    # Count the page's payment requests as it makes them (a held request reaches the route
    # handler only later), so a second request would be seen at once.
    page.evaluate("""() => { window.paymentPosts = 0; if (window.countingPosts) return;
        window.countingPosts = true; const send = window.fetch;
        window.fetch = (url, ...rest) => { if (String(url).endsWith("/payments")) window.paymentPosts++;
                                           return send(url, ...rest); }; }""")
    page.get_by_label("Amount (INR)").fill(amount)
    button = page.get_by_role("button", name="Pay with UPI")
    button.click()
    busy = page.get_by_role("button", name="Opening payment…")
    expect(busy).to_be_disabled()
    busy.click(force=True)  # a second press while the first is in flight sends nothing,
    page.locator("#payment-form").evaluate("form => form.requestSubmit()")  # nor a scripted submit
    expect(page.locator("#payment-form")).to_have_attribute("aria-busy", "true")
    assert page.evaluate("window.paymentPosts") == 1
    page.wait_for_function("() => true")  # one more round trip: the held request is in
    assert len(held) == 1 and re.fullmatch(r"[0-9a-f]{32}", held[0].request.headers["idempotency-key"])
    held[0].continue_()
    page.unroute("**/api/payments")
    expect(page.locator("#payment-view")).to_be_visible()
    if amount == "30":
        expect(page.locator("#payment-status")).to_have_text("PENDING")
    reference = page.locator("#reference").inner_text()
    assert reference.startswith("idem-")
    qr = page.get_by_role("img", name=re.compile("QR code of the UPI payment"))
    expect(qr).to_be_visible()
    expect(qr).to_have_attribute("src", re.compile(r"^/demo/qr\.svg\?uri=upi%3A%2F%2Fpay"))
    page.wait_for_function("document.getElementById('qr').complete && document.getElementById('qr').naturalWidth > 100")
    expect(page.locator("#timeline")).to_contain_text("Payment opened")
    return reference


def test_a_customer_onboards_and_the_callback_moves_the_payment_timeline(context, walk_server):
    from playwright.sync_api import expect

    page = walk_to_aadhaar(context, walk_server)
    verify_aadhaar_by_otp(page)

    page.get_by_label("Amount (INR)").fill("12.345")
    page.get_by_role("button", name="Pay with UPI").click()
    expect(field_error(page, "err-payment-amount")).to_contain_text("at most two decimals")
    expect(page.get_by_label("Amount (INR)")).to_be_focused()

    reference = open_payment(page)
    expect(page.locator("#timeline li")).to_have_count(2)  # opened, Decentro's PENDING answer
    page.get_by_role("button", name="Customer paid").click()
    expect(page.locator("#payment-status")).to_have_text("SUCCESS")
    expect(page.locator("#timeline")).to_contain_text("Decentro's callback received")
    expect(page.locator("#timeline li").last).to_contain_text("SUCCESS")
    expect(page.locator("#summary")).to_contain_text("First payment of ₹30.00 received")
    expect(page.get_by_role("group", name=re.compile("Simulate Decentro's callback"))).to_be_hidden()
    assert page.locator("#last-reference").inner_text() == reference
    screenshot(page, "demo-onboarding", readme="demo.png")
    assert script_errors(page) == []
    assert_no_personal_data_logged(walk_server)


def test_a_timeline_read_before_the_callback_does_not_end_the_payment_view(context, walk_server):
    """The race CI met on a busy machine, made certain: the first timeline after "Customer
    paid" is one read before the callback landed, while the status read says SUCCESS. The page
    keeps reading the timeline until the callback shows, instead of stopping on the stale one."""
    from playwright.sync_api import expect

    page = walk_to_aadhaar(context, walk_server)
    verify_aadhaar_by_file(page)
    reference = open_payment(page)
    expect(page.locator("#timeline li")).to_have_count(2)
    stale = page.evaluate("async (ref) => (await fetch(`/demo/payments/${ref}/timeline`)).text()", reference)
    assert "callback received" not in stale
    served: list[str] = []
    clicked: list[bool] = []  # the callback was asked for: its answer came back to the page
    page.on("response", lambda answer: clicked.append(True) if "simulate-callback" in answer.url else None)

    def first_timeline_stale(route: Any) -> None:
        if not clicked:
            route.continue_()
        elif not served:
            served.append("stale")
            route.fulfill(status=200, content_type="application/json", body=stale)
        else:
            served.append("fresh")
            route.continue_()

    page.route("**/timeline", first_timeline_stale)
    page.get_by_role("button", name="Customer paid").click()
    expect(page.locator("#payment-status")).to_have_text("SUCCESS")
    expect(page.locator("#timeline")).to_contain_text("Decentro's callback received")
    expect(page.locator("#timeline li").last).to_contain_text("SUCCESS")
    assert served[0] == "stale" and "fresh" in served
    assert script_errors(page) == []


def test_a_failed_payment_keeps_its_reference_and_another_can_be_opened(context, walk_server):
    from playwright.sync_api import expect

    page = walk_to_aadhaar(context, walk_server)
    verify_aadhaar_by_file(page)
    failed = open_payment(page)
    page.get_by_role("button", name="Payment failed").click()
    expect(page.locator("#payment-status")).to_have_text("FAILURE")
    expect(page.locator("#timeline li").last).to_contain_text("FAILURE")
    page.get_by_role("button", name="Try another payment").click()
    expect(page.get_by_label("Amount (INR)")).to_be_focused()
    expect(page.locator("#last-reference")).to_have_text(failed)  # still shown for support
    screenshot(page, "demo-failed-payment")
    second = open_payment(page, "10")  # amount 10 settles SUCCESS at Decentro's next status check
    assert second != failed
    expect(page.locator("#payment-status")).to_have_text("SUCCESS")
    assert script_errors(page) == []


# -- the operator console ---------------------------------------------------------------------


def post_signed_callback(server: Any, payload: dict[str, Any]) -> int:
    raw = json.dumps(payload).encode()
    assert server.webhook_secret is not None
    request = urllib.request.Request(server.base_url + "/api/webhooks/decentro", data=raw, method="POST", headers={
        "Content-Type": "application/json", "X-Decentro-Signature": sign_body(raw, server.webhook_secret)})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return int(answer.status)


def test_a_visitor_is_refused_and_the_operator_replays_a_failed_callback(context, walk_server):
    from playwright.sync_api import expect

    base = walk_server.base_url
    visitor = open_page(context, base + "/")
    for path in ("/", "/payments", "/callbacks?state=failed", "/events", "/audit", "/consents"):
        answer = visitor.goto(base + CONSOLE + path)
        assert answer.status == 404
        expect(visitor.locator("body")).not_to_contain_text("Payments")
    refused = visitor.request.post(base + CONSOLE + "/callbacks/any/replay", form={"csrf_token": "x"})
    assert refused.status == 404

    # Decentro's callback overtakes our own write: it names a payment not stored yet, so it is
    # kept as failed. The payment's reference is the keyed hash of its Idempotency-Key.
    key = "console-e2e-payment-1"
    vault = FernetVault([walk_server.encryption_key])
    reference = "idem-" + vault.fingerprint(f"idempotency|demo-user|{key}")[:32]
    assert post_signed_callback(walk_server, {
        "callbackTxnId": "CB-early-1", "transactionStatus": "SUCCESS", "referenceId": reference}) == 200
    opened = visitor.request.post(base + "/api/payments", headers={"Idempotency-Key": key}, data={
        "amount": 30, "user_id": "demo-user",
        "customer_details": {"name": CUSTOMER[0], "email": CUSTOMER[1], "phone": CUSTOMER[2]}})
    assert opened.ok and opened.json()["data"]["reference_id"] == reference

    operator = open_page(context, base + "/demo/operator")
    operator.get_by_role("button", name="Sign in as the demo operator").click()
    expect(operator.get_by_role("heading", name="Overview")).to_be_visible()
    operator.get_by_role("navigation", name="Console").get_by_role("link", name="Callbacks").click()
    operator.get_by_role("link", name="failed", exact=True).click()
    row = operator.get_by_role("row").filter(has_text="CB-early-1")
    expect(row).to_contain_text("OperationNotFound")
    screenshot(operator, "console-failed-callback")
    row.get_by_role("button", name="Replay callback CB-early-1").click()
    expect(operator.get_by_role("status")).to_contain_text("Callback CB-early-1 replayed: SUCCESS.")
    expect(operator.get_by_role("row").filter(has_text="CB-early-1")).to_have_count(0)  # no longer failed

    operator.goto(base + CONSOLE + f"/payments/{reference}")
    expect(operator.locator(".facts")).to_contain_text("SUCCESS")
    expect(operator.locator(".timeline")).to_contain_text("upi_payment.callback by decentro-callback: SUCCESS")
    screenshot(operator, "console-payment")
    operator.get_by_role("navigation", name="Console").get_by_role("link", name="Event deliveries").click()
    expect(operator.get_by_role("row").filter(has_text=reference)).to_contain_text("payment.succeeded")
    operator.get_by_role("navigation", name="Console").get_by_role("link", name="Audit chain").click()
    expect(operator.locator(".verdict")).to_contain_text("The chain verifies")
    operator.get_by_role("navigation", name="Console").get_by_role("link", name="Overview").click()
    expect(operator.get_by_role("img", name="Payments by status over time")).to_be_visible()
    screenshot(operator, "console-overview", readme="console.png")
    for path in ("/", "/payments", "/callbacks", "/events", "/consents", "/audit"):
        operator.goto(base + CONSOLE + path)
        text = operator.locator("body").inner_text()
        assert not [secret for secret in (PAN, SYNTHETIC_NAME, AADHAAR, *CUSTOMER) if secret in text], path
    assert script_errors(operator) == [] and script_errors(visitor) == []


def assert_no_personal_data_logged(server: Any) -> None:
    log = server.log()
    assert "POST /api/kyc/pan" in log  # the log is the server's, and it did record the calls
    for secret in (PAN, INVALID_PAN, SYNTHETIC_NAME, AADHAAR, *CUSTOMER):
        assert secret not in log
