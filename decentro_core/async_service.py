"""The guide's awaitable face: :class:`DecentroService`.

Each method runs the blocking implementation in a worker thread (``asyncio.to_thread``), so
an event loop is never blocked by network or database I/O and both faces behave identically.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from .service import BlockingDecentroService
from .settings import Settings

__all__ = ["DecentroService"]


class DecentroService:
    """``decentro = DecentroService()``; ``await decentro.verify_pan(pan, name)``.

    Takes the same arguments as :class:`BlockingDecentroService` (settings and ports), or an
    existing one as ``blocking=``.
    """

    def __init__(self, settings: Settings | None = None, *, blocking: BlockingDecentroService | None = None,
                 **ports: Any) -> None:
        self.blocking = blocking or BlockingDecentroService(settings, **ports)
        self.settings = self.blocking.settings

    async def _run(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(getattr(self.blocking, name), *args, **kwargs)

    async def verify_aadhaar_xml(self, xml_content: str | bytes, share_code: str, **options: Any) -> dict[str, Any]:
        return await self._run("verify_aadhaar_xml", xml_content, share_code, **options)  # type: ignore[no-any-return]

    async def verify_pan(self, pan: str, name: str | None = None, **options: Any) -> dict[str, Any]:
        return await self._run("verify_pan", pan, name, **options)  # type: ignore[no-any-return]

    async def verify_bank(self, account_number: str, ifsc: str, name: str | None = None,
                          **options: Any) -> dict[str, Any]:
        return await self._run("verify_bank", account_number, ifsc, name, **options)  # type: ignore[no-any-return]

    async def fetch_ckyc(self, pan: str, **options: Any) -> dict[str, Any]:
        return await self._run("fetch_ckyc", pan, **options)  # type: ignore[no-any-return]

    async def start_aadhaar_otp(self, aadhaar_number: str, **options: Any) -> dict[str, Any]:
        return await self._run("start_aadhaar_otp", aadhaar_number, **options)  # type: ignore[no-any-return]

    async def verify_aadhaar_otp(self, initiation_id: str, otp: str, **options: Any) -> dict[str, Any]:
        return await self._run("verify_aadhaar_otp", initiation_id, otp, **options)  # type: ignore[no-any-return]

    async def initiate_payment(self, payload: Mapping[str, Any], **options: Any) -> dict[str, Any]:
        return await self._run("initiate_payment", payload, **options)  # type: ignore[no-any-return]

    async def get_payment_status(self, reference_id: str, **options: Any) -> dict[str, Any]:
        return await self._run("get_payment_status", reference_id, **options)  # type: ignore[no-any-return]

    async def send_sms(self, phone: str, message: str, **options: Any) -> dict[str, Any]:
        return await self._run("send_sms", phone, message, **options)  # type: ignore[no-any-return]

    async def send_email(self, email: str, subject: str, body: str, **options: Any) -> dict[str, Any]:
        return await self._run("send_email", email, subject, body, **options)  # type: ignore[no-any-return]

    async def cache_kyc_result(self, user_id: str, kyc_type: str, result: Any, ttl: int = 86400) -> bool:
        return await self._run("cache_kyc_result", user_id, kyc_type, result, ttl)  # type: ignore[no-any-return]

    async def get_cached_kyc_result(self, user_id: str, kyc_type: str) -> Any:
        return await self._run("get_cached_kyc_result", user_id, kyc_type)

    def validate_webhook(self, payload: bytes | str | Mapping[str, Any], signature: str, secret: str) -> bool:
        """Pure computation, so not awaited: HMAC-SHA256 hex of the raw body, constant time."""
        return self.blocking.validate_webhook(payload, signature, secret)

    def close(self) -> None:
        self.blocking.close()
