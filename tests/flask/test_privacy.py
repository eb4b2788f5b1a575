"""No answer and no log line carries the PAN, account number or name the caller sent."""

from __future__ import annotations

import logging

from flask_helpers import CONSENT, IFSC, NAME, payment

# The timeout (0408) before the 5xx (0503): after five straight failures the circuit breaker
# answers 503 itself, so this order meets every error path (504, then 503) once.
PANS = ["ABCDE1234F", "ABCDE0000F", "ABCDE0404F", "ABCDE0408F", "ABCDE0503F"]
ACCOUNTS = ["123456789011", "123456780000", "123456780503"]


def test_no_response_body_or_log_line_contains_the_documents_or_name_sent(client, caplog):
    caplog.set_level(logging.DEBUG)
    bodies = []
    for pan in PANS:
        bodies.append(client.post("/api/kyc/pan", json={"pan": pan, "name": NAME, "consent": CONSENT},
                                  environ_base={"REMOTE_ADDR": f"198.51.100.{len(bodies)}"}))
        bodies.append(client.post("/api/kyc/pan", json={"pan": pan, "name": NAME, "consent": {"given": False}}))
    for number in ACCOUNTS:
        bodies.append(client.post("/api/kyc/bank", json={"account_number": number, "ifsc": IFSC, "name": NAME,
                                                         "consent": CONSENT}))
    bad_ifsc = {"account_number": ACCOUNTS[0], "ifsc": "BAD", "consent": CONSENT}
    bodies.append(client.post("/api/kyc/bank", json=bad_ifsc))
    bodies.append(client.post("/api/payments", json=payment(10)))
    bodies.append(client.post("/api/payments", json=payment(5.03)))
    texts = [r.get_data(as_text=True) for r in bodies]
    assert {r.status_code for r in bodies} >= {200, 400, 503, 504}
    secrets = [*PANS, *ACCOUNTS, NAME, "Testa", "testa@example.com", "9876500011"]
    leaks = [(s, t) for s in secrets for t in texts if s in t]
    assert leaks == []
    assert caplog.records
    assert [s for s in secrets if s in caplog.text] == []
