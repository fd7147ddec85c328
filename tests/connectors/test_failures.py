"""Real network faults, injected by the sandbox, mapped to the ``ConnectorError`` tree — and
the proof that a retry under the same reference after an unknown outcome never charges twice."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from kassa.connectors.base import (
    AuthorizeOutcome,
    Connector,
    ModificationOutcome,
    NotSent,
    OutcomeUnknown,
    PaymentState,
    RateLimited,
    Rejected,
)
from kassa.connectors.configuration import Timeouts

from .support import Admin, auth, modification, unique

SHORT = Timeouts(connect=1.0, authorize=0.5, modify=0.5, status=0.5)


@pytest.fixture
def impatient(kind: str, make_connector: Callable[..., Connector]) -> Connector:
    """A connector that gives up after half a second; the sandbox hangs for five."""
    return make_connector(kind, timeouts=SHORT)


def hang_next(admin: Admin, kind: str, *steps: str) -> None:
    admin.faults(kind, {"script": list(steps), "hang_s": 5})


async def test_timeout_after_apply_then_inquiry_and_retry_charge_once(
    impatient: Connector, kind: str, admin: Admin
) -> None:
    request = auth(amount=3100, capture=True)
    hang_next(admin, kind, "timeout")
    with pytest.raises(OutcomeUnknown) as caught:
        await impatient.authorize(request)
    assert caught.value.retryable
    assert caught.value.__cause__ is not None
    # The PSP applied it: the inquiry by our reference says so…
    status = await impatient.status(request.reference)
    assert (status.state, status.amount_captured) == (PaymentState.CAPTURED, 3100)
    # …and a retry under the same reference answers the original result, charging nothing more.
    retry = await impatient.authorize(request)
    assert (retry.outcome, retry.psp_reference) == (AuthorizeOutcome.CAPTURED, status.psp_reference)
    records = admin.records(kind, request.reference)
    assert [(r["id"], r["captured"]) for r in records] == [(status.psp_reference, 3100)]


async def test_capture_timeout_then_retry_captures_once(
    impatient: Connector, kind: str, admin: Admin
) -> None:
    request = auth(amount=1000)
    psp = (await impatient.authorize(request)).psp_reference
    assert psp
    capture = modification(psp, 400, final=False, prefix="cap")
    hang_next(admin, kind, "timeout")
    with pytest.raises(OutcomeUnknown):
        await impatient.capture(capture)
    retry = await impatient.capture(capture)
    assert retry.outcome in (ModificationOutcome.SUCCEEDED, ModificationOutcome.PENDING)
    record = admin.record(kind, request.reference)
    assert [(m["kind"], m["amount"], m["id"]) for m in record["modifications"]] == [
        ("capture", 400, retry.psp_reference)
    ]


async def test_refund_timeout_then_retry_refunds_once(
    impatient: Connector, kind: str, admin: Admin
) -> None:
    request = auth(amount=1000, capture=True)
    psp = (await impatient.authorize(request)).psp_reference
    assert psp
    refund = modification(psp, 1000, prefix="re")
    hang_next(admin, kind, "timeout")
    with pytest.raises(OutcomeUnknown):
        await impatient.refund(refund)
    await impatient.refund(refund)
    refunds = [m for m in admin.record(kind, request.reference)["modifications"]
               if m["kind"] == "refund"]  # fmt: skip
    assert [m["amount"] for m in refunds] == [1000]


@pytest.mark.parametrize("status", ["500", "502", "503"])
async def test_server_errors_are_unknown_outcomes(
    connector: Connector, kind: str, admin: Admin, status: str
) -> None:
    request = auth()
    hang_next(admin, kind, status)
    with pytest.raises(OutcomeUnknown, match=f"HTTP {status}"):
        await connector.authorize(request)
    # Not applied this time — and the inquiry (not a guess) is what says so.
    assert (await connector.status(request.reference)).state is PaymentState.NOT_FOUND
    assert (await connector.authorize(request)).outcome is AuthorizeOutcome.AUTHORIZED
    assert len(admin.records(kind, request.reference)) == 1


async def test_error_after_apply_is_resolved_by_inquiry(
    connector: Connector, kind: str, admin: Admin
) -> None:
    request = auth(amount=700)
    admin.faults(kind, {"script": ["500"], "error_after_apply": True})
    with pytest.raises(OutcomeUnknown):
        await connector.authorize(request)
    status = await connector.status(request.reference)
    assert (status.state, status.amount) == (PaymentState.AUTHORIZED, 700)
    assert len(admin.records(kind, request.reference)) == 1


async def test_connection_reset_is_an_unknown_outcome(
    connector: Connector, kind: str, admin: Admin
) -> None:
    hang_next(admin, kind, "reset")
    with pytest.raises(OutcomeUnknown, match="connection broke"):
        await connector.authorize(auth())


async def test_outage_is_an_unknown_outcome(connector: Connector, kind: str, admin: Admin) -> None:
    admin.faults(kind, {"outage": True, "outage_mode": "503"})
    with pytest.raises(OutcomeUnknown):
        await connector.authorize(auth())
    with pytest.raises(OutcomeUnknown):
        await connector.status(unique())


async def test_rate_limit_carries_retry_after(
    connector: Connector, kind: str, admin: Admin
) -> None:
    request = auth()
    hang_next(admin, kind, "429")
    with pytest.raises(RateLimited) as caught:
        await connector.authorize(request)
    assert caught.value.retry_after == 1.0
    assert caught.value.retryable
    assert admin.records(kind, request.reference) == []


async def test_connection_refused_is_not_sent(
    kind: str, make_connector: Callable[..., Connector]
) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nobody listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    connector = make_connector(kind, base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(NotSent) as caught:
        await connector.authorize(auth())
    assert caught.value.retryable
    assert caught.value.__cause__ is not None
    with pytest.raises(NotSent):
        await connector.capture(modification("X" * 12, 100))


async def test_wrong_credentials_are_rejected(
    kind: str, make_connector: Callable[..., Connector], configs: dict
) -> None:
    key = "api_key" if kind == "acquirer_a" else "password"
    credentials = {**configs[kind].credentials, key: "wrong"}
    connector = make_connector(kind, credentials=credentials)
    with pytest.raises(Rejected) as caught:
        await connector.authorize(auth())
    assert not caught.value.retryable


async def test_unknown_authorisation_is_rejected(connector: Connector) -> None:
    with pytest.raises(Rejected):
        await connector.capture(modification("UNKNOWN00001", 100))


async def test_status_of_a_reference_never_seen(connector: Connector) -> None:
    assert (await connector.status(unique())).state is PaymentState.NOT_FOUND


async def test_status_of_a_decline(connector: Connector) -> None:
    request = auth("4000000000009995")
    assert (await connector.authorize(request)).outcome is AuthorizeOutcome.DECLINED
    status = await connector.status(request.reference)
    assert (status.state, status.failure_code, status.decline_code) == (
        PaymentState.DECLINED,
        "card_declined",
        "insufficient_funds",
    )
