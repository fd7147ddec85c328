"""Errors of the payments domain."""

from __future__ import annotations

from typing import Any

from kassa.core.errors import KassaError


class CardError(KassaError):
    """402 ``card_error``: the card was declined or could not be charged. Carries the intent
    (as it is after the failed attempt) the way Stripe's SDKs expect."""

    status = 402
    type = "card_error"

    def __init__(
        self,
        message: str,
        *,
        code: str,
        decline_code: str | None,
        intent: dict[str, Any],
        charge_id: str | None,
        payment_method: str | None,
    ) -> None:
        extra: dict[str, Any] = {"payment_intent": intent, "charge": charge_id}
        if decline_code:
            extra["decline_code"] = decline_code
        if payment_method:
            extra["payment_method"] = {"id": payment_method, "object": "payment_method"}
        super().__init__(message, code=code, extra=extra)
