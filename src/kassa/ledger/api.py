"""``/v1/ledger`` routes: read-only, for platform-admin keys (operators)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from kassa.core.http import openapi
from kassa.core.http.context import Caller, caller
from kassa.core.http.params import parse
from kassa.core.http.responses import JSON
from kassa.ledger.schemas import AccountList, AccountRetrieve, AccountTransfers, TransferRetrieve
from kassa.ledger.service import operator

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])
_auth = caller("ledger", admin=True)


@router.get("/accounts", openapi_extra=openapi.query(AccountList))
async def list_accounts(request: Request, c: Caller = Depends(_auth)) -> JSON:
    params = parse(AccountList, c.params)
    return JSON(await operator.list_accounts(request.app.state.db, c.livemode, params))


@router.get("/accounts/{account_id}", openapi_extra=openapi.query(AccountRetrieve))
async def retrieve_account(account_id: str, request: Request, c: Caller = Depends(_auth)) -> JSON:
    params = parse(AccountRetrieve, c.params)
    return JSON(
        await operator.retrieve_account(
            request.app.state.db, params.merchant, c.livemode, account_id, params.as_of
        )
    )


@router.get("/accounts/{account_id}/transfers", openapi_extra=openapi.query(AccountTransfers))
async def account_transfers(account_id: str, request: Request, c: Caller = Depends(_auth)) -> JSON:
    params = parse(AccountTransfers, c.params)
    return JSON(
        await operator.account_transfers(request.app.state.db, c.livemode, account_id, params)
    )


@router.get("/transfers/{transfer_id}", openapi_extra=openapi.query(TransferRetrieve))
async def retrieve_transfer(transfer_id: str, request: Request, c: Caller = Depends(_auth)) -> JSON:
    params = parse(TransferRetrieve, c.params)
    return JSON(
        await operator.retrieve_transfer(
            request.app.state.db, c.livemode, params.merchant, transfer_id
        )
    )
