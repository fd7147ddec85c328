"""Captures, voids and refunds against both acquirers. Beltrane decides them in the answer;
Arvona only acknowledges them (``PENDING``) and confirms each by a signed notification, which
the receiver verifies with the connector itself."""

from __future__ import annotations

from kassa.connectors.base import (
    AuthorizeOutcome,
    Connector,
    EventKind,
    ModificationOutcome,
    ModificationResult,
    PaymentState,
    PspEvent,
)

from .support import Admin, WebhookReceiver, auth, modification

M = ModificationOutcome


async def authorized(connector: Connector, amount: int = 1000, capture: bool = False) -> str:
    result = await connector.authorize(auth(amount=amount, capture=capture))
    assert result.outcome in (AuthorizeOutcome.AUTHORIZED, AuthorizeOutcome.CAPTURED)
    assert result.psp_reference
    return result.psp_reference


def confirmed(
    kind: str,
    result: ModificationResult,
    reference: str,
    event: EventKind,
    receiver: WebhookReceiver,
    url: str,
) -> PspEvent | None:
    """The decision on a modification: Beltrane's answer, or Arvona's notification."""
    if kind == "acquirer_b":
        assert result.outcome is not M.PENDING
        return None
    assert result.outcome is M.PENDING
    assert result.psp_reference
    found = receiver.wait_event(
        url, lambda e: e.kind is event and e.operation_reference == reference
    )
    assert found.psp_reference == result.psp_reference
    return found


async def test_full_capture(
    connector: Connector, kind: str, admin: Admin, receiver: WebhookReceiver, hooked: str
) -> None:
    request = auth(amount=1500)
    psp = (await connector.authorize(request)).psp_reference
    assert psp
    capture = modification(psp, 1500, prefix="cap")
    result = await connector.capture(capture)
    event = confirmed(kind, result, capture.reference, EventKind.CAPTURE, receiver, hooked)
    if event is None:
        assert result.outcome is M.SUCCEEDED
        assert result.psp_reference
    else:
        assert event.success
        assert (event.amount, event.currency, event.reference) == (1500, "eur", request.reference)
        assert event.payment_psp_reference == psp
    record = admin.record(kind, request.reference)
    assert (record["captured"], record["closed"]) == (1500, True)
    status = await connector.status(request.reference)
    assert (status.state, status.amount_captured, status.psp_reference) == (
        PaymentState.CAPTURED,
        1500,
        psp,
    )


async def test_several_partial_captures(
    connector: Connector, kind: str, admin: Admin, receiver: WebhookReceiver, hooked: str
) -> None:
    request = auth(amount=1000)
    psp = (await connector.authorize(request)).psp_reference
    assert psp
    for amount in (300, 200):
        capture = modification(psp, amount, final=False, prefix="cap")
        result = await connector.capture(capture)
        event = confirmed(kind, result, capture.reference, EventKind.CAPTURE, receiver, hooked)
        assert result.outcome is M.SUCCEEDED or (event and event.success and event.amount == amount)
    final = modification(psp, 100, final=True, prefix="cap")
    result = await connector.capture(final)
    confirmed(kind, result, final.reference, EventKind.CAPTURE, receiver, hooked)
    record = admin.record(kind, request.reference)
    assert record["captured"] == 600
    assert [m["amount"] for m in record["modifications"] if m["status"] == "succeeded"] == [
        300,
        200,
        100,
    ]
    if kind == "acquirer_b":
        # final_capture closed the authorization: nothing more can be captured.
        assert record["closed"] is True
        more = await connector.capture(modification(psp, 50, prefix="cap"))
        assert more.outcome is M.FAILED
        assert more.message


async def test_capture_beyond_the_authorisation_fails(
    connector: Connector, kind: str, receiver: WebhookReceiver, hooked: str
) -> None:
    psp = await authorized(connector, 1000)
    capture = modification(psp, 1001, prefix="cap")
    result = await connector.capture(capture)
    event = confirmed(kind, result, capture.reference, EventKind.CAPTURE, receiver, hooked)
    if event is None:
        assert result.outcome is M.FAILED
        assert result.message
    else:
        assert not event.success
        assert event.reason == "Insufficient authorised amount remaining"


async def test_void(
    connector: Connector, kind: str, admin: Admin, receiver: WebhookReceiver, hooked: str
) -> None:
    request = auth(amount=800)
    psp = (await connector.authorize(request)).psp_reference
    assert psp
    void = modification(psp, 800, prefix="void")
    result = await connector.void(void)
    event = confirmed(kind, result, void.reference, EventKind.CANCEL, receiver, hooked)
    if event is None:
        assert result.outcome is M.SUCCEEDED
    else:
        assert event.success
        assert event.payment_psp_reference == psp
    assert admin.record(kind, request.reference)["status"] == "cancelled"
    assert (await connector.status(request.reference)).state is PaymentState.VOIDED


async def test_full_refund(
    connector: Connector, kind: str, admin: Admin, receiver: WebhookReceiver, hooked: str
) -> None:
    request = auth(amount=1200, capture=True)
    psp = (await connector.authorize(request)).psp_reference
    assert psp
    refund = modification(psp, 1200, prefix="re")
    result = await connector.refund(refund)
    event = confirmed(kind, result, refund.reference, EventKind.REFUND, receiver, hooked)
    if event is None:
        assert result.outcome is M.SUCCEEDED
        assert result.psp_reference
    else:
        assert event.success
        assert (event.amount, event.currency) == (1200, "eur")
    assert admin.record(kind, request.reference)["refunded"] == 1200
    status = await connector.status(request.reference)
    assert (status.amount_captured, status.amount_refunded) == (1200, 1200)


async def test_several_partial_refunds_then_too_much(
    connector: Connector, kind: str, admin: Admin, receiver: WebhookReceiver, hooked: str
) -> None:
    request = auth(amount=1000, capture=True)
    psp = (await connector.authorize(request)).psp_reference
    assert psp
    for amount in (250, 350):
        refund = modification(psp, amount, prefix="re")
        result = await connector.refund(refund)
        event = confirmed(kind, result, refund.reference, EventKind.REFUND, receiver, hooked)
        assert result.outcome is M.SUCCEEDED or (event and event.success)
    too_much = modification(psp, 401, prefix="re")
    result = await connector.refund(too_much)
    event = confirmed(kind, result, too_much.reference, EventKind.REFUND, receiver, hooked)
    if event is None:
        assert result.outcome is M.FAILED
    else:
        assert not event.success
        assert event.reason == "Refund amount exceeds the captured amount"
    assert admin.record(kind, request.reference)["refunded"] == 600
    assert (await connector.status(request.reference)).amount_refunded == 600


async def test_kwd_partial_capture_and_refund_are_exact(
    connector: Connector, kind: str, admin: Admin, receiver: WebhookReceiver, hooked: str
) -> None:
    """One fils (0.001 KD) at a time: nothing is rounded on the way to a 3-decimal PSP."""
    request = auth(amount=1050, currency="kwd")
    psp = (await connector.authorize(request)).psp_reference
    assert psp
    capture = modification(psp, 1049, "kwd", prefix="cap")
    confirmed(kind, await connector.capture(capture), capture.reference, EventKind.CAPTURE,
              receiver, hooked)  # fmt: skip
    refund = modification(psp, 1, "kwd", prefix="re")
    event = confirmed(kind, await connector.refund(refund), refund.reference, EventKind.REFUND,
                      receiver, hooked)  # fmt: skip
    if event is not None:
        assert (event.amount, event.currency) == (1, "kwd")
    record = admin.record(kind, request.reference)
    assert (record["captured"], record["refunded"]) == (1049, 1)
    status = await connector.status(request.reference)
    assert (status.amount, status.amount_captured, status.amount_refunded) == (1050, 1049, 1)
