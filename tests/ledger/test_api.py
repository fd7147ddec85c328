"""The operators' HTTP surface, on a live ``kassa api``: platform-admin keys only, Stripe list
objects and errors."""

from __future__ import annotations

import httpx

from kassa.core.db import Database
from kassa.ledger import service as ledger
from kassa.ledger.model import Batch, Transfer
from tests.factories import new_merchant
from tests.ledger.conftest import Book


async def test_operator_reads_accounts_transfers_and_history(db: Database, api_url, book: Book):
    admin = await new_merchant(db, platform_admin=True)
    key = admin.key("secret")
    results = await ledger.post_transfers(
        db,
        Batch(
            book.merchant_id,
            False,
            [
                Transfer.single("api1", book["bank"], book["wallet"], 700, "usd", "capture"),
                Transfer.pending("api2", book["wallet"], book["fees"], 200, "usd", "hold"),
                Transfer.single("api3", book["wallet"], book["bank"], 100, "usd", "refund"),
            ],
        ),
    )
    assert all(r.succeeded for r in results)
    async with httpx.AsyncClient(base_url=api_url, headers={"Authorization": f"Bearer {key}"}) as c:
        r = await c.get("/v1/ledger/accounts", params={"merchant": book.merchant_id, "limit": 2})
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["object"] == "list"
        assert page["has_more"] is True
        assert len(page["data"]) == 2
        nxt = await c.get(
            "/v1/ledger/accounts",
            params={"merchant": book.merchant_id, "starting_after": page["data"][-1]["id"]},
        )
        ids = [a["id"] for a in page["data"] + nxt.json()["data"]]
        assert sorted(ids) == sorted(book.ids.values())

        mine = {"merchant": book.merchant_id}
        r = await c.get(f"/v1/ledger/accounts/{book['wallet']}", params=mine)
        wallet = r.json()
        assert wallet["object"] == "ledger_account"
        assert wallet["balance"]["posted"] == 600
        assert wallet["balance"]["available"] == 400
        assert wallet["debits_must_not_exceed_credits"] is True

        r = await c.get(f"/v1/ledger/accounts/{book['wallet']}", params={**mine, "as_of": 1})
        assert r.json()["balance"]["posted"] == 0
        assert r.json()["balance_as_of"] == 1

        r = await c.get(
            f"/v1/ledger/accounts/{book['wallet']}/transfers", params={**mine, "limit": 2}
        )
        history = r.json()
        assert [e["id"] for e in history["data"]] == ["api3", "api2"]
        assert history["data"][0]["balance_after"]["posted"] == 600
        assert history["data"][0]["side"] == "debit"
        assert history["has_more"] is True

        r = await c.get("/v1/ledger/transfers/api2", params={"merchant": book.merchant_id})
        transfer = r.json()
        assert transfer["object"] == "ledger_transfer"
        assert transfer["type"] == "pending"
        assert transfer["status"] == "pending"
        assert transfer["amount"] == 200

        r = await c.get("/v1/ledger/transfers/api2")
        assert r.status_code == 400
        assert r.json()["error"]["param"] == "merchant"
        r = await c.get("/v1/ledger/transfers/nope", params={"merchant": book.merchant_id})
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "resource_missing"
        r = await c.get("/v1/ledger/accounts", params={**mine, "bogus": "1"})
        assert r.status_code == 400
        assert r.json()["error"]["type"] == "invalid_request_error"

    # Live keys see the live ledger only; merchants' own keys see nothing.
    live = admin.key("secret", livemode=True)
    async with httpx.AsyncClient(base_url=api_url) as c:
        r = await c.get(
            f"/v1/ledger/accounts/{book['wallet']}",
            params={"merchant": book.merchant_id},
            headers={"Authorization": f"Bearer {live}"},
        )
        assert r.status_code == 404
        plain = (await new_merchant(db)).key("secret")
        r = await c.get(
            "/v1/ledger/accounts",
            params={"merchant": book.merchant_id},
            headers={"Authorization": f"Bearer {plain}"},
        )
        assert r.status_code == 403
        assert r.json()["error"]["type"] == "invalid_request_error"
