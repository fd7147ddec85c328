"""Cindral Bank: ACH and SEPA direct debits and payouts to bank accounts.

A debit stays ``processing`` for ``debit_processing_s`` of world time, then ``settled`` or
``returned`` with a rail-specific code; some test accounts settle first and are returned
later (``late_return_s``). A payout is ``in_transit`` for ``payout_arrival_s``, then ``paid``
or ``failed``. The test account number chooses the outcome; any other valid account settles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kassa.sandbox.clock import DAY, iso
from kassa.sandbox.httpserver import ApiError, Handler, Request, Response
from kassa.sandbox.idempotency import idempotent
from kassa.sandbox.ids import IdFactory
from kassa.sandbox.service import Service
from kassa.sandbox.webhooks import SignedJsonFormat
from kassa.sandbox.world import World

API_KEY = "cindral_test_sk_Q4m7Zp2LxW"
WEBHOOK_SECRET = "cindral_whsec_0f5e7a93c2d14b68"
TEST_ROUTING_NUMBER = "110000000"
MAX_AMOUNT = 10**11


@dataclass(frozen=True)
class Behaviour:
    """What the bank does with a test account."""

    description: str
    return_code: str | None = None  # returned instead of settling
    late_return_code: str | None = None  # settles, then returned after late_return_s
    payout_failure: str | None = None  # payouts to the account fail with this code


ACH_ACCOUNTS: dict[str, Behaviour] = {
    "000123456789": Behaviour("settles; payouts are paid"),
    "000222222227": Behaviour("debit returned R01 insufficient funds", "R01"),
    "000111111113": Behaviour("debit returned R02 account closed", "R02", None, "account_closed"),
    "000111111116": Behaviour("debit returned R03 no account", "R03", None, "no_account"),
    "000444444440": Behaviour(
        "debit returned R04 invalid account number", "R04", None, "invalid_account_number"
    ),
    "000333333335": Behaviour("debit settles, then returned R10 unauthorized", None, "R10"),
}
SEPA_ACCOUNTS: dict[str, Behaviour] = {
    "DE89370400440532013000": Behaviour("settles; payouts are paid"),
    "DE62370400440532013001": Behaviour("debit returned AM04 insufficient funds", "AM04"),
    "DE35370400440532013002": Behaviour(
        "debit returned AC04 account closed", "AC04", None, "account_closed"
    ),
    "DE08370400440532013003": Behaviour(
        "debit returned AC01 incorrect account number", "AC01", None, "invalid_account_number"
    ),
    "DE78370400440532013004": Behaviour("debit returned MD01 no mandate", "MD01"),
    "DE51370400440532013005": Behaviour("debit settles, then returned MD06 refund request", None,
                                        "MD06"),
}  # fmt: skip
RETURN_REASONS = {
    "R01": "insufficient_funds",
    "R02": "account_closed",
    "R03": "no_account",
    "R04": "invalid_account_number",
    "R10": "debit_not_authorized",
    "AM04": "insufficient_funds",
    "AC04": "account_closed",
    "AC01": "invalid_account_number",
    "MD01": "no_mandate",
    "MD06": "refund_requested",
}
_PLAIN = Behaviour("settles; payouts are paid")
RAIL_CURRENCY = {"ach": "USD", "sepa": "EUR"}


def aba_valid(routing: str) -> bool:
    """Return True if ``routing`` is a 9-digit ABA routing number with a valid checksum."""
    if len(routing) != 9 or not routing.isdigit():
        return False
    weights = (3, 7, 1) * 3
    return sum(int(d) * w for d, w in zip(routing, weights, strict=True)) % 10 == 0


def iban_valid(iban: str) -> bool:
    """Return True if ``iban`` passes the ISO 13616 mod-97 check."""
    if not 15 <= len(iban) <= 34 or not iban[:2].isalpha() or not iban.isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


@dataclass(eq=False)
class Transfer:
    """A debit pulled from, or a payout pushed to, a bank account."""

    id: str
    kind: str  # debit | payout
    rail: str
    amount: int
    currency: str
    account: dict[str, str]
    account_key: str
    reference: str
    description: str
    status: str
    created_at: float
    expected_at: float
    behaviour: Behaviour
    completed_at: float | None = None
    failure_code: str | None = None
    returned_after_settlement: bool = False

    def to_json(self) -> dict[str, Any]:
        """Return the transfer as the API shows it."""
        data: dict[str, Any] = {
            "id": self.id,
            "object": self.kind,
            "rail": self.rail,
            "amount": self.amount,
            "currency": self.currency,
            "account": self.account,
            "reference": self.reference,
            "description": self.description,
            "status": self.status,
            "created_at": iso(self.created_at),
        }
        if self.kind == "debit":
            data["expected_settlement_at"] = iso(self.expected_at)
            data["settled_at"] = iso(self.completed_at) if self.completed_at else None
            data["return_code"] = self.failure_code
            data["return_reason"] = RETURN_REASONS.get(self.failure_code or "")
            data["returned_after_settlement"] = self.returned_after_settlement
        else:
            data["expected_arrival_at"] = iso(self.expected_at)
            data["arrived_at"] = iso(self.completed_at) if self.completed_at else None
            data["failure_code"] = self.failure_code
        return data


def _error(status: int, code: str, message: str, param: str | None = None) -> ApiError:
    body = {"error": {"code": code, "message": message, "param": param}}
    return ApiError(Response.json(body, status))


class BankService(Service):
    """Cindral Bank (short name ``bank``)."""

    name = "bank"
    title = "Cindral Bank (ACH/SEPA debits and payouts)"
    default_settings = {
        "debit_processing_s": 3 * DAY,
        "late_return_s": 5 * DAY,
        "payout_arrival_s": 1 * DAY,
    }

    def __init__(self, world: World) -> None:
        super().__init__(world, SignedJsonFormat("cindral-signature", WEBHOOK_SECRET))
        self._debit_ids = IdFactory(f"{world.seed}/bank/debit", 14, prefix="dd_")
        self._payout_ids = IdFactory(f"{world.seed}/bank/payout", 14, prefix="po_")
        self._event_ids = IdFactory(f"{world.seed}/bank/event", 16, prefix="evt_")
        self.transfers: dict[str, Transfer] = {}
        self.by_reference: dict[str, list[Transfer]] = {}
        r = self.router
        r.add("POST", "/v1/debits", self._guard(lambda q, _: self._create(q, "debit")))
        r.add("POST", "/v1/payouts", self._guard(lambda q, _: self._create(q, "payout")))
        r.add("GET", "/v1/debits", self._keyed(lambda q, _: self._list(q, "debit")))
        r.add("GET", "/v1/payouts", self._keyed(lambda q, _: self._list(q, "payout")))
        r.add("GET", "/v1/debits/{id}", self._keyed(lambda _, p: self._get(p["id"], "debit")))
        r.add("GET", "/v1/payouts/{id}", self._keyed(lambda _, p: self._get(p["id"], "payout")))

    def credentials(self) -> dict[str, str]:
        """Bearer API key."""
        return {"api_key": API_KEY}

    def webhook_secret(self) -> str:
        """The secret behind ``Cindral-Signature``."""
        return WEBHOOK_SECRET

    def records(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        """Debits and payouts, newest first (``reference`` filters)."""
        ref = query.get("reference")
        source = self.by_reference.get(ref, []) if ref is not None else self.transfers.values()
        return [t.to_json() for t in reversed(list(source))]

    # HTTP plumbing

    def _keyed(self, handler: Handler) -> Handler:
        def run(request: Request, params: dict[str, str]) -> Response:
            if request.headers.get("authorization") != f"Bearer {API_KEY}":
                raise _error(401, "unauthorized", "missing or wrong bearer API key")
            return handler(request, params)

        return run

    def _guard(self, handler: Handler) -> Handler:
        return self._keyed(
            idempotent(
                self.idempotency,
                "idempotency-key",
                handler,
                lambda: (
                    _error(
                        400, "idempotency_error", "Idempotency-Key reused with a different request"
                    ).response
                ),
                lambda r: r.with_header("idempotent-replayed", "true"),
            )
        )

    # transfers

    def _create(self, request: Request, kind: str) -> Response:
        body = self.json_body(request, _error(400, "invalid_json", "body must be JSON").response)
        rail = body.get("rail")
        if rail not in RAIL_CURRENCY:
            raise _error(400, "invalid_rail", "rail must be 'ach' or 'sepa'", "rail")
        amount = body.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount < MAX_AMOUNT:
            raise _error(400, "invalid_amount", "amount must be a positive integer", "amount")
        currency = body.get("currency")
        if currency != RAIL_CURRENCY[rail]:
            raise _error(
                400, "invalid_currency", f"{rail} moves {RAIL_CURRENCY[rail]} only", "currency"
            )
        reference = body.get("reference")
        if not isinstance(reference, str) or not 0 < len(reference) <= 80:
            raise _error(400, "invalid_reference", "reference must be 1-80 characters", "reference")
        account, key, behaviour = self._account(rail, body.get("account"))
        now = self.clock.now()
        delay = self.settings["debit_processing_s" if kind == "debit" else "payout_arrival_s"]
        transfer = Transfer(
            id=(self._debit_ids if kind == "debit" else self._payout_ids).next(),
            kind=kind,
            rail=rail,
            amount=amount,
            currency=currency,
            account=account,
            account_key=key,
            reference=reference,
            description=str(body.get("description", ""))[:140],
            status="processing" if kind == "debit" else "in_transit",
            created_at=now,
            expected_at=now + delay,
            behaviour=behaviour,
        )
        self.transfers[transfer.id] = transfer
        self.by_reference.setdefault(reference, []).append(transfer)
        self.scheduler.at(transfer.expected_at, lambda: self._complete(transfer), kind)
        return Response.json(transfer.to_json(), 201)

    def _account(self, rail: str, raw: Any) -> tuple[dict[str, str], str, Behaviour]:
        if not isinstance(raw, dict):
            raise _error(400, "invalid_account", "account is required", "account")
        if rail == "ach":
            routing = str(raw.get("routing_number", ""))
            number = str(raw.get("account_number", ""))
            if not aba_valid(routing):
                raise _error(
                    400, "invalid_routing_number", "not a valid ABA routing number",
                    "account.routing_number",
                )  # fmt: skip
            if not number.isdigit() or not 4 <= len(number) <= 17:
                raise _error(
                    400, "invalid_account_number", "account_number must be 4-17 digits",
                    "account.account_number",
                )  # fmt: skip
            shown = {"routing_number": routing, "account_last4": number[-4:]}
            return shown, f"{routing}/{number}", ACH_ACCOUNTS.get(number, _PLAIN)
        iban = str(raw.get("iban", "")).replace(" ", "").upper()
        if not iban_valid(iban):
            raise _error(400, "invalid_iban", "not a valid IBAN", "account.iban")
        return {"iban_last4": iban[-4:], "country": iban[:2]}, iban, SEPA_ACCOUNTS.get(iban, _PLAIN)

    def _complete(self, transfer: Transfer) -> None:
        now = self.clock.now()
        b = transfer.behaviour
        if transfer.kind == "payout":
            transfer.completed_at = now
            if b.payout_failure:
                transfer.status, transfer.failure_code = "failed", b.payout_failure
                self._emit("payout.failed", transfer)
            else:
                transfer.status = "paid"
                self._emit("payout.paid", transfer)
        elif b.return_code:
            transfer.status, transfer.failure_code = "returned", b.return_code
            self._emit("debit.returned", transfer)
        else:
            transfer.status, transfer.completed_at = "settled", now
            self._emit("debit.settled", transfer)
            if b.late_return_code:
                self.scheduler.after(
                    self.settings["late_return_s"], lambda: self._late_return(transfer), "return"
                )

    def _late_return(self, transfer: Transfer) -> None:
        transfer.status = "returned"
        transfer.failure_code = transfer.behaviour.late_return_code
        transfer.returned_after_settlement = True
        self._emit("debit.returned", transfer)

    def _emit(self, event_type: str, transfer: Transfer) -> None:
        if self.webhooks.enabled:
            event_id = self._event_ids.next()
            self.webhooks.emit(
                event_id,
                {
                    "id": event_id,
                    "type": event_type,
                    "created": int(self.clock.now()),
                    "data": transfer.to_json(),
                },
            )

    def _get(self, transfer_id: str, kind: str) -> Response:
        transfer = self.transfers.get(transfer_id)
        if transfer is None or transfer.kind != kind:
            raise _error(404, "not_found", f"no {kind} {transfer_id}")
        return Response.json(transfer.to_json())

    def _list(self, request: Request, kind: str) -> Response:
        reference = request.query().get("reference")
        if not reference:
            raise _error(400, "missing_reference", "query parameter reference is required")
        found = [t.to_json() for t in self.by_reference.get(reference, []) if t.kind == kind]
        return Response.json({"data": found})
