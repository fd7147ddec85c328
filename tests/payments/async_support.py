"""Shared by the bank debit, wallet and BNPL tests: a sandbox service wired to the live API's
PSP inbox, the world clock, the inbox itself, and the shopper's browser."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from kassa.core.db import Database

DAY = 86_400


@contextmanager
def notifications_to_kassa(sandbox: dict[str, Any], api_url: str, service: str) -> Iterator[str]:
    """Send ``service``'s notifications to Kassa's ``/psp/{service}/webhooks`` meanwhile."""
    url = sandbox["services"][service]["base_url"]
    hook = f"{api_url}/psp/{service}/webhooks"
    httpx.put(f"{url}/admin/webhook-url", json={"url": hook}).raise_for_status()
    try:
        yield url
    finally:
        httpx.put(f"{url}/admin/webhook-url", json={"url": None}).raise_for_status()


def advance(sandbox: dict[str, Any], seconds: int) -> None:
    """Move the sandbox's world clock (one clock for every service) forward."""
    url = sandbox["services"]["bank"]["base_url"]
    httpx.post(f"{url}/admin/clock/advance", json={"seconds": seconds}).raise_for_status()


async def inbox_rows(db: Database, connector: str, reference: str) -> list[Any]:
    async with db.connection() as conn:
        return await conn.fetch(
            "SELECT event_id, kind, processed_at, outcome FROM psp_inbox "
            "WHERE connector = $1 AND event->>'reference' = $2 ORDER BY received_at",
            connector,
            reference,
        )


async def until_stored(db: Database, connector: str, reference: str, n: int = 1) -> None:
    """Wait for the provider's notifications about ``reference`` to reach the inbox."""
    deadline = time.monotonic() + 20
    while len(await inbox_rows(db, connector, reference)) < n:
        assert time.monotonic() < deadline, f"no {connector} notification for {reference}"
        await asyncio.sleep(0.05)


def shopper(page_url: str, form: dict[str, str]) -> httpx.Response:
    """Play the shopper's browser: the provider's page, the decision, then Kassa's return
    route, which answers with a redirect to the merchant."""
    with httpx.Client(timeout=10.0, trust_env=False) as browser:
        assert browser.get(page_url).status_code == 200
        answer = browser.post(page_url, data=form)
        assert answer.status_code == 303, answer.text
        return browser.get(answer.headers["location"])


def event_types_for(client: Any, object_id: str) -> list[str]:
    """The types of the events about ``object_id``, oldest first."""
    events = client.v1.events.list({"limit": 100}).data
    return [e.type for e in reversed(events) if e.data.object["id"] == object_id]


def pending_balance(client: Any, currency: str) -> int:
    return {b.currency: b.amount for b in client.v1.balance.retrieve().pending}.get(currency, 0)
