"""Notifications the sandbox really sends, verified and parsed by the connectors: the events,
the acknowledgement each PSP needs, and refusal of anything forged, altered or replayed."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from kassa.connectors.base import Connector, EventKind, InvalidNotification, PspEvent

from .support import DISPUTED, Admin, WebhookReceiver, auth, modification, wait_for

K = EventKind


async def test_events_from_a_payments_life(
    connector: Connector, kind: str, admin: Admin, receiver: WebhookReceiver, hooked: str
) -> None:
    request = auth(amount=2000)
    psp = (await connector.authorize(request)).psp_reference
    assert psp
    capture = modification(psp, 2000, prefix="cap")
    captured = await connector.capture(capture)
    refund = modification(psp, 500, prefix="re")
    refunded = await connector.refund(refund)

    got = receiver.wait_event(hooked, lambda e: e.kind is K.REFUND)
    assert got.success
    assert got.reference == request.reference
    assert (got.psp_reference, got.payment_psp_reference) == (refunded.psp_reference, psp)
    assert (got.amount, got.currency) == (500, "eur")
    cap = receiver.wait_event(hooked, lambda e: e.kind is K.CAPTURE)
    assert (cap.psp_reference, cap.amount, cap.success) == (captured.psp_reference, 2000, True)
    assert cap.occurred_at is not None
    assert cap.occurred_at.tzinfo is UTC
    if kind == "acquirer_a":
        # Arvona also notifies the authorisation and echoes our operation references.
        authorised = receiver.wait_event(hooked, lambda e: e.kind is K.AUTHORISATION)
        assert (authorised.psp_reference, authorised.payment_psp_reference) == (psp, psp)
        assert (cap.operation_reference, got.operation_reference) == (
            capture.reference,
            refund.reference,
        )
    ids = [e.event_id for e in receiver.events(hooked)]
    assert len(set(ids)) == len(ids)

    # Our answer is exactly what the PSP needs: it marks every delivery delivered.
    def all_delivered() -> bool:
        log = admin.deliveries(kind, hooked)
        sent = {i for d in log for i in d["event_ids"]}
        return sent >= set(ids) and all(d["status"] == "delivered" for d in log)

    wait_for(all_delivered, what="every delivery acknowledged")


async def test_sale_notifies_a_capture(
    connector: Connector, kind: str, receiver: WebhookReceiver, hooked: str
) -> None:
    request = auth(amount=990, currency="jpy", capture=True)
    psp = (await connector.authorize(request)).psp_reference
    event = receiver.wait_event(hooked, lambda e: e.kind is K.CAPTURE)
    assert event.success
    assert event.payment_psp_reference == psp
    assert (event.amount, event.currency, event.reference) == (990, "jpy", request.reference)
    assert event.operation_reference == request.reference


async def test_chargeback_opened_and_decided(
    connector: Connector, kind: str, admin: Admin, receiver: WebhookReceiver, hooked: str
) -> None:
    request = auth(DISPUTED, amount=5000, capture=True)
    psp = (await connector.authorize(request)).psp_reference
    opened = receiver.wait_event(hooked, lambda e: e.kind is K.CHARGEBACK_OPENED)
    assert (opened.payment_psp_reference, opened.reference) == (psp, request.reference)
    assert (opened.amount, opened.currency, opened.reason) == (5000, "eur", "fraudulent")
    assert opened.dispute_due_by is not None
    assert opened.occurred_at is not None
    assert opened.dispute_due_by - opened.occurred_at == timedelta(days=7)
    # Defend it at the PSP directly (dispute handling is not part of the connector yet).
    dispute_id = opened.psp_reference
    creds = admin.services[kind]["credentials"]
    if kind == "acquirer_a":
        answer = admin.clients[kind].post(
            f"/v1/disputes/{dispute_id}/defend",
            json={"evidence": "winning_evidence"},
            headers={"x-api-key": creds["api_key"]},
        )
        assert answer.json()["disputeServiceResult"]["success"] is True
        expected = K.CHARGEBACK_WON
    else:
        answer = admin.clients[kind].post(
            "/disputes",
            data={"USER": creds["user"], "VENDOR": creds["vendor"], "PARTNER": creds["partner"],
                  "PWD": creds["password"], "DISPUTEID": dispute_id, "ACTION": "RESPOND",
                  "EVIDENCE": "losing_evidence"},
        )  # fmt: skip
        assert "RESULT=0" in answer.text
        expected = K.CHARGEBACK_LOST
    decided = receiver.wait_event(hooked, lambda e: e.kind is expected)
    assert (decided.psp_reference, decided.amount) == (dispute_id, 5000)
    assert decided.event_id != opened.event_id


async def test_settlement_report_announced(
    connector: Connector, kind: str, admin: Admin, receiver: WebhookReceiver, hooked: str
) -> None:
    await connector.authorize(auth(capture=True))
    now = datetime.fromtimestamp(admin.now(), UTC)
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    admin.advance((midnight - now).total_seconds() + 1)
    event = receiver.wait_event(hooked, lambda e: e.kind is K.SETTLEMENT)
    assert event.settlement_date == now.date()
    assert event.success
    assert event.psp_reference
    assert event.amount is None


def first_delivery(receiver: WebhookReceiver, url: str) -> tuple[bytes, dict[str, str]]:
    d = receiver.wait_delivery(url, lambda d: bool(d.events))
    return d.body, d.headers


async def test_arvona_rejects_altered_items(
    make_connector: Callable[..., Connector], admin: Admin, receiver: WebhookReceiver
) -> None:
    arvona = make_connector("acquirer_a")
    url = receiver.endpoint(arvona.parse_webhook)
    admin.webhook_url("acquirer_a", url)
    await arvona.authorize(auth(amount=1234))
    body, headers = first_delivery(receiver, url)
    assert arvona.parse_webhook(body, headers).ack.body == b"[accepted]"

    batch = orjson.loads(body)
    item = batch["notificationItems"][0]["NotificationRequestItem"]
    item["amount"]["value"] = 123_400  # someone adds two zeros
    with pytest.raises(InvalidNotification):
        arvona.parse_webhook(orjson.dumps(batch), headers)
    del item["additionalData"]["hmacSignature"]
    with pytest.raises(InvalidNotification):
        arvona.parse_webhook(orjson.dumps(batch), headers)
    with pytest.raises(InvalidNotification):
        arvona.parse_webhook(b"[accepted]", headers)


async def test_beltrane_rejects_altered_stale_or_unsigned_posts(
    make_connector: Callable[..., Connector], admin: Admin, receiver: WebhookReceiver
) -> None:
    beltrane = make_connector("acquirer_b")
    url = receiver.endpoint(beltrane.parse_webhook)
    admin.webhook_url("acquirer_b", url)
    await beltrane.authorize(auth(amount=1234, capture=True))
    body, headers = first_delivery(receiver, url)
    assert beltrane.parse_webhook(body, headers).events[0].amount == 1234

    with pytest.raises(InvalidNotification):
        beltrane.parse_webhook(body.replace(b"AMT=12.34", b"AMT=1234.00"), headers)
    with pytest.raises(InvalidNotification):
        beltrane.parse_webhook(body, {})
    # A genuine post replayed after the tolerance (300 s) is refused.
    late = make_connector("acquirer_b", now=lambda: admin.now() + 301)
    with pytest.raises(InvalidNotification, match="tolerance"):
        late.parse_webhook(body, headers)


async def test_unverified_notifications_are_not_acknowledged(
    kind: str, make_connector: Callable[..., Connector], admin: Admin, receiver: WebhookReceiver
) -> None:
    """With the wrong secret nothing verifies, nothing is acknowledged, and the PSP keeps the
    notification to send again."""
    wrong = "00" * 32 if kind == "acquirer_a" else "not-the-secret"
    connector = make_connector(kind, webhook_secret=wrong)
    url = receiver.endpoint(connector.parse_webhook)
    admin.webhook_url(kind, url)
    await connector.authorize(auth(capture=True))
    refused = receiver.wait_delivery(url, lambda d: d.status == 401)
    assert refused.events == ()
    assert refused.error
    pending = wait_for(
        lambda: [d for d in admin.deliveries(kind, url) if d["next_attempt_at"]],
        what="a retry scheduled",
    )
    assert pending[0]["status"] == "pending"
    assert re.match(r"http 401", pending[0]["attempts"][0]["result"])


def test_event_is_psp_neutral() -> None:
    """What the inbox stores knows nothing of either PSP's format."""
    fields = set(PspEvent.__dataclass_fields__)
    assert fields == {
        "event_id", "kind", "success", "psp_reference", "payment_psp_reference", "reference",
        "operation_reference", "amount", "currency", "reason", "occurred_at",
        "dispute_due_by", "settlement_date",
    }  # fmt: skip


def test_receiver_answers_like_the_connector(receiver: WebhookReceiver) -> None:
    r = httpx.post(f"http://127.0.0.1:{receiver.port}/nowhere", content=b"x", trust_env=False)
    assert r.status_code == 404
