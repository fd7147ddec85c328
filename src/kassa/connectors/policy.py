"""What the payment path does after a failed authorisation: retry, cascade or stop.

A policy is keyed by ``(connector, code)``. Codes are either the classes of connector errors
(``not_sent``, ``breaker_open``, ``rate_limited``, ``rejected``, ``outcome_unknown``,
``timeout``) or Stripe's decline vocabulary a PSP answered with (``processing_error``,
``issuer_unavailable``, ``insufficient_funds``…). Lookup order: the database table (edited with
``kassa connectors errors``) for the connector, then for ``*``; the connector's ``errors`` in
the connectors file; the defaults below; then ``stop``.

Two rules no override can break, because breaking them costs money:

- **After an unknown outcome nothing cascades**: the PSP may have charged, and a second PSP
  would charge again. ``outcome_unknown`` and ``timeout`` are ``retry`` (same reference, same
  PSP: its idempotency key makes that safe) or ``stop`` (the status inquiry resolves it).
- **Hard declines are never retried or cascaded**: the issuer said no about the card itself,
  and asking another acquirer is how card testing and issuer penalties start.

``retry`` for a decline means nothing useful (resending under the same reference replays the
same answer), so decline codes take ``cascade`` or ``stop`` only."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from enum import StrEnum

import httpx

from kassa.connectors import repository
from kassa.connectors.base import (
    ConnectorError,
    NotSent,
    OutcomeUnknown,
    RateLimited,
    Rejected,
)
from kassa.connectors.breaker import BreakerOpen, Breakers
from kassa.connectors.configuration import ConnectorConfig, RetryConfig
from kassa.core.db import Connection, Database


class Action(StrEnum):
    RETRY = "retry"  # resend under the same reference to the same PSP, with backoff
    CASCADE = "cascade"  # fail this attempt, open a new one at the next routing candidate
    STOP = "stop"  # finish the attempt with this answer


# Codes for failures that are not a PSP's answer about the card.
NOT_SENT = "not_sent"
BREAKER_OPEN = "breaker_open"
RATE_LIMITED = "rate_limited"
REJECTED = "rejected"
OUTCOME_UNKNOWN = "outcome_unknown"
TIMEOUT = "timeout"
# Certainly not charged: any action is safe.
UNSENT_CLASSES = frozenset({NOT_SENT, BREAKER_OPEN, RATE_LIMITED, REJECTED})
# Maybe charged: never cascade.
UNKNOWN_CLASSES = frozenset({OUTCOME_UNKNOWN, TIMEOUT})
ERROR_CLASSES = UNSENT_CLASSES | UNKNOWN_CLASSES

# The issuer refused the card itself; fixed, not editable.
HARD_DECLINES = frozenset(
    {
        "insufficient_funds",
        "lost_card",
        "stolen_card",
        "pickup_card",
        "fraudulent",
        "expired_card",
        "incorrect_cvc",
        "incorrect_number",
        "invalid_cvc",
        "invalid_number",
        "invalid_expiry_month",
        "invalid_expiry_year",
        "invalid_account",
        "restricted_card",
        "security_violation",
        "do_not_honor",
        "transaction_not_allowed",
        "revocation_of_authorization",
        "revocation_of_all_authorizations",
        "merchant_blacklist",
        "card_velocity_exceeded",
        "withdrawal_count_limit_exceeded",
        "invalid_pin",
        "pin_try_exceeded",
        "offline_pin_required",
        "online_or_offline_pin_required",
        "stop_payment_order",
        "new_account_information_available",
        "payment_intent_authentication_failure",
        "authentication_required",
    }
)

DEFAULTS: Mapping[str, Action] = {
    # Nothing reached the PSP: the next one may take it at once.
    NOT_SENT: Action.CASCADE,
    BREAKER_OPEN: Action.CASCADE,
    # Wait for Retry-After when it fits in the budget; otherwise the caller cascades.
    RATE_LIMITED: Action.RETRY,
    # The PSP refused the request itself (credentials, configuration): another may not.
    REJECTED: Action.CASCADE,
    # 5xx, resets: usually brief, and resending under our reference cannot charge twice.
    OUTCOME_UNKNOWN: Action.RETRY,
    # A timeout already cost a full read timeout; the inquiry schedule resolves it.
    TIMEOUT: Action.STOP,
    # The PSP (not the issuer) failed, or the issuer was unreachable: another route may work.
    "processing_error": Action.CASCADE,
    "issuer_unavailable": Action.CASCADE,
    "try_again_later": Action.CASCADE,
    "reenter_transaction": Action.CASCADE,
    "approve_with_id": Action.CASCADE,
    "card_declined": Action.STOP,
    "generic_decline": Action.STOP,
    "card_not_supported": Action.STOP,
    "currency_not_supported": Action.CASCADE,
    **dict.fromkeys(HARD_DECLINES, Action.STOP),
}

_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_CONNECTOR = re.compile(r"^(\*|[a-z][a-z0-9_]{0,39})$")


class PolicyError(ValueError):
    """An override that cannot be used; the message says why."""


def check(code: str, action: str, connector: str = "*") -> Action:
    """Validate one override and return its action (``PolicyError`` naming what is wrong)."""
    if not _CONNECTOR.match(connector):
        raise PolicyError(f"connector must be '*' or a connector name, not {connector!r}")
    if not _CODE.match(code):
        raise PolicyError(f"code must be lower-case letters, digits and _, not {code!r}")
    try:
        chosen = Action(action)
    except ValueError:
        raise PolicyError(f"action must be retry, cascade or stop, not {action!r}") from None
    if code in HARD_DECLINES and chosen is not Action.STOP:
        raise PolicyError(f"{code} is a hard decline: it is never retried or cascaded")
    if code in UNKNOWN_CLASSES and chosen is Action.CASCADE:
        raise PolicyError(f"{code}: the PSP may have charged, so it can never cascade")
    if code not in ERROR_CLASSES and chosen is Action.RETRY:
        raise PolicyError(f"{code} is a PSP answer: resending replays it; use cascade or stop")
    return chosen


def code_of(exc: ConnectorError) -> str:
    """The policy code for a connector error."""
    if isinstance(exc, BreakerOpen):
        return BREAKER_OPEN
    if isinstance(exc, NotSent):
        return NOT_SENT
    if isinstance(exc, RateLimited):
        return RATE_LIMITED
    if isinstance(exc, Rejected):
        return REJECTED
    if isinstance(exc, OutcomeUnknown) and isinstance(exc.__cause__, httpx.TimeoutException):
        return TIMEOUT
    if isinstance(exc, OutcomeUnknown):
        return OUTCOME_UNKNOWN
    # Any other connector error: treat as maybe-applied, the safe side.
    return OUTCOME_UNKNOWN


def _safe(code: str, action: Action) -> Action:
    """The invariants again, whatever a table row says (rows may predate a rule)."""
    if code in HARD_DECLINES:
        return Action.STOP
    if code in UNKNOWN_CLASSES and action is Action.CASCADE:
        return Action.STOP
    if code not in ERROR_CLASSES and action is Action.RETRY:
        return Action.CASCADE
    return action


class ErrorPolicy:
    """The policy in force for one process: code defaults, the connectors file's ``errors``
    and the operators' table, re-read every ``ttl_s`` seconds so an edit takes effect
    without a restart."""

    def __init__(
        self,
        db: Database | None,
        file_overrides: Mapping[str, Mapping[str, str]] | None = None,
        ttl_s: float = 5.0,
    ) -> None:
        self._db = db
        self._file = {
            name: {code: check(code, action, name) for code, action in rows.items()}
            for name, rows in (file_overrides or {}).items()
        }
        self._ttl = ttl_s
        self._table: dict[tuple[str, str], Action] = {}
        self._loaded_at = float("-inf")

    async def action(self, connector: str, *codes: str | None) -> tuple[Action, str]:
        """The action for the first of ``codes`` that has one (e.g. a decline code, then its
        failure code), and the code that decided it."""
        await self._refresh()
        present = [c for c in codes if c]
        for code in present:
            if code in HARD_DECLINES:
                return Action.STOP, code
        for code in present:
            found = (
                self._table.get((connector, code))
                or self._table.get(("*", code))
                or self._file.get(connector, {}).get(code)
                or DEFAULTS.get(code)
            )
            if found is not None:
                return _safe(code, found), code
        return Action.STOP, present[0] if present else "unknown"

    async def _refresh(self) -> None:
        if self._db is None or time.monotonic() - self._loaded_at < self._ttl:
            return
        self._loaded_at = time.monotonic()
        async with self._db.connection() as conn:
            rows = await list_overrides(conn)
        table = {}
        for row in rows:
            try:
                table[(row["connector"], row["code"])] = Action(row["action"])
            except ValueError:
                continue  # the table's CHECK makes this impossible; never fail a payment on it
        self._table = table


async def list_overrides(conn: Connection) -> list[dict[str, str]]:
    """Every operator override, by connector then code."""
    return [dict(r) for r in await repository.error_policy_overrides(conn)]


async def set_override(
    conn: Connection, connector: str, code: str, action: str, note: str | None = None
) -> Action:
    """Create or replace one override (validated with ``check``)."""
    chosen = check(code, action, connector)
    await repository.upsert_error_policy(conn, connector, code, chosen.value, note)
    return chosen


async def delete_override(conn: Connection, connector: str, code: str) -> bool:
    """Remove one override; True if there was one."""
    return await repository.delete_error_policy(conn, connector, code)


def backoff(attempt: int, base_s: float, cap_s: float, rand: float) -> float:
    """Full jitter: a uniform wait in ``[0, min(cap, base * 2**attempt))``; ``rand`` in [0, 1).
    Spreads retries of many payments that failed together instead of sending them in step."""
    return rand * min(cap_s, base_s * 2.0**attempt)


class Resilience:
    """What the payment path consults around each authorisation: the breakers, the error
    policy and each connector's retry budget. One per process."""

    def __init__(
        self,
        breakers: Breakers | None,
        policy: ErrorPolicy,
        retries: Mapping[str, RetryConfig] | None = None,
    ) -> None:
        self.breakers = breakers
        self.policy = policy
        self._retries = dict(retries or {})

    @classmethod
    def for_connectors(cls, db: Database, configs: Sequence[ConnectorConfig]) -> Resilience:
        """Breakers, policy and budgets for the configured connectors, sharing state through
        ``db`` with every other process."""
        return cls(
            Breakers(
                db,
                {c.name: c.breaker for c in configs},
                {c.name: c.timeouts.authorize for c in configs},
            ),
            ErrorPolicy(db, {c.name: c.errors for c in configs if c.errors}),
            {c.name: c.retries for c in configs},
        )

    def retries(self, connector: str) -> RetryConfig:
        return self._retries.get(connector) or RetryConfig()
