"""Decentro from FastAPI: the same core, wiring and webhook processor the Flask extension uses.

Nothing here is Flask-specific or copied from the extension: ``build(settings)`` gives the
service and its webhook processor; :class:`~decentro_core.DecentroService` is the awaitable
face; errors carry their HTTP status. The signed-in user comes from ``X-User-Id`` to keep the
example short: use your own authentication dependency instead.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from decentro_adapters.bootstrap import build
from decentro_core import DecentroError, DecentroService, Settings, ValidationError
from decentro_core.validation import loads_json

__all__ = ["create_app"]


class ConsentBody(BaseModel):
    given: bool
    text: str
    purpose: str


class PanBody(BaseModel):
    pan: str
    name: str | None = None
    consent: ConsentBody


async def current_user(x_user_id: Annotated[str | None, Header()] = None) -> str:
    """Stand-in for the host application's authentication."""
    if not x_user_id:
        raise HTTPException(status_code=401, detail="Sign in first")
    return x_user_id


User = Annotated[str, Depends(current_user)]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application; ``settings`` default to the environment (mock mode when unset)."""
    system = build(settings)
    decentro = DecentroService(blocking=system.service)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        decentro.close()
        system.close()

    api = FastAPI(title="Decentro on FastAPI", lifespan=lifespan)

    @api.exception_handler(DecentroError)
    async def decentro_error(_: Request, exc: DecentroError) -> JSONResponse:
        # The library's own messages and field names: never the submitted values.
        return JSONResponse({"status": "FAILURE", "error": exc.to_dict()}, status_code=exc.http_status)

    @api.exception_handler(RequestValidationError)
    async def shape_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default answer echoes the input (a PAN, a name): name the fields only.
        fields = {".".join(str(p) for p in error["loc"][1:]) or "_body": [error["msg"]] for error in exc.errors()}
        error = {"code": "VALIDATION_ERROR", "message": "Invalid input", "fields": fields}
        return JSONResponse({"status": "FAILURE", "error": error}, status_code=400)

    @api.post("/kyc/pan")
    async def verify_pan(body: PanBody, user: User) -> dict[str, Any]:
        return await decentro.verify_pan(body.pan, body.name, user_id=user, consent=body.consent.model_dump())

    @api.post("/payments")
    async def create_payment(request: Request, user: User) -> dict[str, Any]:
        payload = await _bounded_json(request, 16 * 1024)
        key = request.headers.get("Idempotency-Key")
        return await decentro.initiate_payment(payload, user_id=user, idempotency_key=key)

    @api.get("/payments/{reference_id}")
    async def payment_status(reference_id: str, user: User) -> dict[str, Any]:
        return await decentro.get_payment_status(reference_id, user_id=user)

    @api.post("/webhooks/decentro")
    async def receive_callback(request: Request) -> Response:
        # The signature covers the exact bytes: read them raw, and no more than the limit + 1.
        limit, raw = system.webhooks.max_bytes, bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit:
                break
        client = request.client.host if request.client else None
        ack = await decentro.receive_callback(bytes(raw[: limit + 1]), request.headers, remote_addr=client)
        return Response(json.dumps(dict(ack.body)), status_code=ack.http_status, media_type="application/json")

    return api


async def _bounded_json(request: Request, limit: int) -> dict[str, Any]:
    """A JSON object of at most ``limit`` bytes, or a 400/413 (never a 500)."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise ValidationError({"_body": [f"Larger than {limit} bytes"]})
    try:
        body = loads_json(raw)  # a key given twice raises DuplicateKey: 400 DUPLICATE_KEY
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise ValidationError({"_body": ["Send a JSON object"]})
    return body

