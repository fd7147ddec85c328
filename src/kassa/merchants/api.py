"""``/v1/account``: the calling merchant's own account."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from kassa.core.http.context import Caller
from kassa.core.http.params import Params, parse
from kassa.core.http.routing import StripeRouter
from kassa.merchants import service

router = StripeRouter("/v1/account", resource="account", tag="account")


class AccountRetrieve(Params):
    pass


@router.get("", query=AccountRetrieve)
async def retrieve_account(request: Request, c: Caller) -> dict[str, Any]:
    """Retrieve the calling merchant's account."""
    parse(AccountRetrieve, c.params)
    account = await service.get_merchant(request.app.state.db, c.merchant_id)
    account.pop("api_keys", None)
    return account
