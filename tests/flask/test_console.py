"""The operator console: off unless configured, refused without the host's check, paginated,
free of personal data, and a replay that needs the session's form token."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from flask_helpers import CONSENT, NAME, PAN, callback, kyc, payment, signed_post

from decentro_core.errors import ConfigurationError
from decentro_core.ports import OperationRecord

SECRET = {"SECRET_KEY": "console-test-secret"}
PREFIX = "/decentro/console"


@pytest.fixture
def console(make_app):
    allowed = {"yes": True}
    app = make_app(config=SECRET, operator=lambda: allowed["yes"])
    app.allowed = allowed
    return app


def _token(client, path=PREFIX + "/callbacks?state=failed") -> str:
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def test_without_operator_there_is_no_console(make_app):
    app = make_app(config=SECRET)
    assert app.test_client().get(PREFIX + "/").status_code == 404
    assert not any(rule.rule.startswith(PREFIX) for rule in app.url_map.iter_rules())


@pytest.mark.parametrize("check", [lambda: False, lambda: None, lambda: "yes", lambda: 1 / 0])
def test_a_visitor_the_check_refuses_gets_a_404_and_no_data(make_app, check):
    app = make_app(config=SECRET, operator=check)
    client = app.test_client()
    client.post("/api/payments", json=payment(30))
    for path in ("/", "/payments", "/callbacks", "/events", "/audit", "/consents"):
        response = client.get(PREFIX + path)
        assert response.status_code == 404 and b"payment" not in response.data.lower()
    assert client.post(PREFIX + "/callbacks/x/replay").status_code == 404
    assert client.post(PREFIX + "/events/x/replay").status_code == 404


def test_the_console_needs_a_secret_key_and_sane_settings(make_app):
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        make_app(operator=lambda: True)
    with pytest.raises(ConfigurationError, match="DECENTRO_CONSOLE_PAGE_SIZE"):
        make_app(config=SECRET, operator=lambda: True, DECENTRO_CONSOLE_PAGE_SIZE=0)
    with pytest.raises(ConfigurationError, match="callable"):
        make_app(config=SECRET, operator=True)


def test_payments_show_statuses_and_a_timeline_without_personal_data(console):
    client = console.test_client()
    client.post("/api/kyc/pan", json=kyc(name=NAME, user_id="asha@example.com"))
    reference = client.post("/api/payments", json=payment(30, user_id="asha@example.com")).get_json()["data"][
        "reference_id"]
    signed_post(client, callback(reference))
    pages = {path: client.get(PREFIX + path) for path in
             ("/", "/payments", f"/payments/{reference}", "/callbacks", "/events", "/audit", "/consents")}
    assert {p: r.status_code for p, r in pages.items()} == dict.fromkeys(pages, 200)
    listing = pages["/payments"].get_data(as_text=True)
    assert reference in listing and "SUCCESS" in listing and "as******om" in listing
    detail = pages[f"/payments/{reference}"].get_data(as_text=True)
    assert "upi_payment.callback" in detail and "decentro-callback" in detail
    assert "<svg" in pages["/"].get_data(as_text=True) and "1 SUCCESS" in pages["/"].get_data(as_text=True)
    assert "The chain verifies" in pages["/audit"].get_data(as_text=True)
    assert "sealed" in pages["/consents"].get_data(as_text=True)
    for response in pages.values():
        text = response.get_data(as_text=True)
        assert response.headers["Cache-Control"] == "no-store" and "script-src" not in response.headers[
            "Content-Security-Policy"]
        for secret in (PAN, NAME, "asha@example.com", "testa@example.com", "9876500011", "127.0.0.1",
                       CONSENT["text"], "mem:"):  # "mem:": a token of the memory vault, sealed data
            assert secret not in text


def test_every_list_is_a_keyset_page(make_app, service):
    app = make_app(config=SECRET, operator=lambda: True, DECENTRO_CONSOLE_PAGE_SIZE=2, service=service)
    records = service.ports.records
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for n in range(5):
        records.save_operation(OperationRecord(f"ref-{n}", "upi_payment", "PENDING", at, at))
    client = app.test_client()
    first = client.get(PREFIX + "/payments").get_data(as_text=True)
    assert "ref-4" in first and "ref-3" in first and "ref-2" not in first
    older = re.search(r'href="([^"]+before=\d+)"', first).group(1).replace("&amp;", "&")
    second = client.get(older).get_data(as_text=True)
    assert "ref-2" in second and "ref-1" in second and "ref-4" not in second
    assert client.get(PREFIX + "/payments?before=x").status_code == 400
    assert client.get(PREFIX + "/callbacks?state=nope").status_code == 400


def test_a_failed_callback_is_replayed_only_with_the_form_token(console):
    client, service = console.test_client(), console.extensions["decentro"].service
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert signed_post(client, callback("early-ref")).status_code == 200  # before the payment exists
    assert "OperationNotFound" in client.get(PREFIX + "/callbacks?state=failed").get_data(as_text=True)
    service.ports.records.save_operation(OperationRecord("early-ref", "upi_payment", "PENDING", at, at))
    key = next(service.ports.records.webhook_events()).dedupe_key
    refused = client.post(f"{PREFIX}/callbacks/{key}/replay", data={"csrf_token": "forged"})
    assert refused.status_code == 400 and service.ports.records.get_operation("early-ref").status == "PENDING"
    with console.test_client() as other:  # another session's token does not work either
        stolen = _token(other)
    assert client.post(f"{PREFIX}/callbacks/{key}/replay", data={"csrf_token": stolen}).status_code == 400
    token = _token(client)
    done = client.post(f"{PREFIX}/callbacks/{key}/replay", data={"csrf_token": token, "state": "failed"},
                       follow_redirects=True)
    assert done.status_code == 200 and f"Callback {key} replayed: SUCCESS." in done.get_data(as_text=True)
    assert service.ports.records.get_operation("early-ref").status == "SUCCESS"
    assert client.post(f"{PREFIX}/callbacks/unknown/replay", data={"csrf_token": token}).status_code == 404


def test_the_plot_stacks_statuses_per_hour_over_at_least_a_day():
    from datetime import timedelta

    from flask_decentro.console import status_plot

    at = datetime(2026, 1, 1, 9, 15, tzinfo=timezone.utc)
    rows = [OperationRecord(f"r{n}", "upi_payment", status, at + timedelta(hours=hours), at)
            for n, (status, hours) in enumerate([("SUCCESS", 0), ("SUCCESS", 0), ("FAILURE", 0), ("PENDING", 2)])]
    svg = str(status_plot(rows))
    assert svg.count("<rect") == 3  # 09:00 SUCCESS and FAILURE, 11:00 PENDING
    assert "01 Jan 09:00: 2 SUCCESS" in svg and "01 Jan 11:00: 1 PENDING" in svg
    assert "4 payments by hour: 2 SUCCESS, 1 PENDING, 1 FAILURE" in svg
    assert "31 Dec 12:00" in svg  # 24 hourly slots end with the newest payment's hour
    assert "style=" not in svg  # the console's CSP allows no inline style
    assert "No payments yet" in str(status_plot([]))


def test_event_deliveries_list_the_outbox_and_replay_a_failing_one(console):
    client, service = console.test_client(), console.extensions["decentro"].service
    broken = {"yes": True}

    def ledger(event):
        if broken["yes"]:
            raise RuntimeError("ledger unavailable")

    service.events.on("payment.*", ledger, name="ledger")
    reference = client.post("/api/payments", json=payment(30)).get_json()["data"]["reference_id"]
    signed_post(client, callback(reference))
    retrying = client.get(PREFIX + "/events?state=retrying").get_data(as_text=True)
    assert "payment.succeeded" in retrying and reference in retrying and "RuntimeError" in retrying
    assert 'PENDING → <span class="status s-success">SUCCESS</span>' in retrying
    key = f"{reference}:payment.succeeded"
    token = _token(client, PREFIX + "/events?state=retrying")
    assert client.post(f"{PREFIX}/events/{key}/replay", data={"csrf_token": "forged"}).status_code == 400
    broken["yes"] = False
    done = client.post(f"{PREFIX}/events/{key}/replay", data={"csrf_token": token}, follow_redirects=True)
    assert f"Event {key} replayed: delivered." in done.get_data(as_text=True)
    assert service.ports.records.outbox.get(key).state == "delivered"
    assert "ledger" in client.get(PREFIX + "/events?state=delivered").get_data(as_text=True)
    assert client.get(PREFIX + "/events?state=nope").status_code == 400
    assert client.post(f"{PREFIX}/events/unknown/replay", data={"csrf_token": token}).status_code == 404


def test_replaying_an_event_no_handler_here_takes_says_so_instead_of_failing(console):
    client, service = console.test_client(), console.extensions["decentro"].service
    reference = client.post("/api/payments", json=payment(30)).get_json()["data"]["reference_id"]
    signed_post(client, callback(reference))
    key = f"{reference}:payment.succeeded"
    assert service.ports.records.outbox.get(key).state == "pending"  # nobody here listens to it
    token = "form-token-of-this-session"
    with client.session_transaction() as session:  # the pending event's row has no form to read it from
        session["decentro_console_csrf"] = token
    answer = client.post(f"{PREFIX}/events/{key}/replay", data={"csrf_token": token}, follow_redirects=True)
    assert answer.status_code == 200 and "no handler here takes payment.succeeded" in answer.get_data(as_text=True)
    assert service.ports.records.outbox.get(key).state == "pending"  # nothing was changed
