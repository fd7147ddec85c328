"""``/v1/account``: the calling merchant's own account."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from kassa.core.http import openapi
from kassa.core.http.context import Caller, caller
from kassa.core.http.responses import JSON
from kassa.merchants import service

router = APIRouter(tags=["account"])


@router.get("/v1/account", openapi_extra=openapi.errors_only())
async def retrieve_account(request: Request, c: Caller = Depends(caller("account"))) -> JSON:
    account = await service.get_merchant(request.app.state.db, c.merchant_id)
    account.pop("api_keys", None)
    return JSON(account)
