"""The docs page in Debian's Chromium: Swagger UI from the demo server itself, every documented
operation listed, and "Try it out" on the PAN route answering with the sandbox example."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PAGE_TIMEOUT_MS = 60_000  # a limit for a busy machine, not an expected duration


def test_the_docs_page_lists_every_operation_loads_nothing_from_elsewhere_and_tries_one(
        browser: Any, example_app_server: Any, tmp_path: Path) -> None:
    document = json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
    operations = sum(len(methods) for methods in document["paths"].values())
    page = browser.new_page()
    requested: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    # Anything the page's Content-Security-Policy blocks (a style, a script, an image) lands here.
    page.add_init_script("window.__violations = []; document.addEventListener('securitypolicyviolation', "
                         "e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));")
    try:
        answer = page.goto(example_app_server.base_url + "/api/docs", timeout=PAGE_TIMEOUT_MS)
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        page.wait_for_selector(".opblock", timeout=PAGE_TIMEOUT_MS)
        assert page.locator(".opblock").count() == operations
        pan = page.locator("#operations-KYC-verifyPan")
        pan.locator(".opblock-summary").click()
        pan.get_by_role("button", name="Try it out").click()
        pan.get_by_role("button", name="Execute").click()
        status = pan.locator(".live-responses-table .response .response-col_status").first
        status.wait_for(timeout=PAGE_TIMEOUT_MS)
        assert status.inner_text().strip() == "200"
        assert '"SUCCESS"' in pan.locator(".live-responses-table .microlight").first.inner_text()
        page.screenshot(path=str(tmp_path / "docs.png"), full_page=True)
        assert page.evaluate("window.__violations") == []
    finally:
        page.close()
    elsewhere = [url for url in requested if not url.startswith(example_app_server.base_url)]
    assert elsewhere == []  # Swagger UI's files come from the server (the docs extra), no CDN
    assert errors == []


def test_another_page_cannot_frame_the_docs_page(browser: Any, example_app_server: Any) -> None:
    page = browser.new_page()
    try:
        # A page of another origin (the same server under another host name) frames the docs.
        framing = example_app_server.base_url.replace("127.0.0.1", "localhost") + "/api/openapi.json"
        page.goto(framing, timeout=PAGE_TIMEOUT_MS)
        page.set_content(f'<iframe id="docs" onload="window.__loaded = true" '
                         f'src="{example_app_server.base_url}/api/docs"></iframe>')
        page.wait_for_function("window.__loaded === true", timeout=PAGE_TIMEOUT_MS)  # fires for a refused frame too
        assert page.frame_locator("#docs").locator("#swagger-ui").count() == 0
    finally:
        page.close()
