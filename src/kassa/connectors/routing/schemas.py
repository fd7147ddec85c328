"""Parameters and the API object of merchant routing rules (``/v1/routing/rules``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from kassa.core.errors import InvalidRequest
from kassa.core.http.pagination import ListParams
from kassa.core.http.params import OptionalStr, Params
from kassa.core.money import currency as parse_currency

# Stripe's ``card.brand`` values (and ``maestro``, which acquirers price apart).
CardBrand = Literal[
    "amex", "diners", "discover", "eftpos_au", "jcb", "maestro", "mastercard", "unionpay",
    "visa", "unknown",
]  # fmt: skip
PaymentMethodType = Literal[
    "card", "us_bank_account", "sepa_debit", "bacs_debit", "acss_debit", "link", "paypal",
    "klarna", "affirm", "afterpay_clearpay", "cashapp", "ideal", "bancontact", "sofort", "eps",
    "giropay", "p24", "alipay", "wechat_pay",
]  # fmt: skip
ConnectorName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
Country = Annotated[str, Field(pattern=r"^[A-Za-z]{2}$")]
Amount = Annotated[int, Field(ge=0, le=99_999_999_999)]
Weight = Annotated[int, Field(ge=1, le=100)]
MAX_RULES = 100  # per merchant and mode: every payment evaluates them


class RuleCreate(Params):
    """``POST /v1/routing/rules``: conditions (all optional, all must hold) and exactly one
    of ``connector``, ``connectors`` or ``split``."""

    priority: int = Field(ge=0, le=1_000_000)
    description: OptionalStr = Field(default=None, max_length=500)
    currencies: list[Annotated[str, Field(max_length=3)]] | None = Field(
        default=None, min_length=1, max_length=50
    )
    card_brands: list[CardBrand] | None = Field(default=None, min_length=1, max_length=20)
    card_countries: list[Country] | None = Field(default=None, min_length=1, max_length=250)
    min_amount: Amount | None = None
    max_amount: Amount | None = None
    payment_method_types: list[PaymentMethodType] | None = Field(
        default=None, min_length=1, max_length=20
    )
    connector: ConnectorName | None = None
    connectors: list[ConnectorName] | None = Field(default=None, min_length=2, max_length=10)
    split: dict[ConnectorName, Weight] | None = Field(default=None, min_length=2, max_length=10)

    @field_validator("currencies")
    @classmethod
    def _currencies(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for i, code in enumerate(value):
            parse_currency(code, param=f"currencies[{i}]")
        return sorted({c.lower() for c in value})

    @field_validator("card_countries")
    @classmethod
    def _countries(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else sorted({c.upper() for c in value})

    @field_validator("card_brands", "payment_method_types")
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else sorted(set(value))

    @field_validator("connectors")
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("connectors must not repeat a connector")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RuleCreate:
        actions = [a for a in ACTIONS if getattr(self, a) is not None]
        if not actions:
            raise InvalidRequest(
                "A routing rule needs one of: connector, connectors, split.", param="connector"
            )
        if len(actions) > 1:
            raise InvalidRequest(
                f"You may only specify one of these parameters: {', '.join(actions)}.",
                param=actions[1],
            )
        if self.split is not None and sum(self.split.values()) != 100:
            raise InvalidRequest(
                f"The split's weights must add up to 100 (they add up to "
                f"{sum(self.split.values())}).",
                param="split",
            )
        if (
            self.min_amount is not None
            and self.max_amount is not None
            and self.min_amount > self.max_amount
        ):
            raise InvalidRequest("max_amount must not be below min_amount.", param="max_amount")
        return self

    def named(self) -> list[tuple[str, str]]:
        """``(connector, param)`` for every connector the rule names."""
        if self.connector is not None:
            return [(self.connector, "connector")]
        if self.split is not None:
            return [(n, f"split[{n}]") for n in self.split]
        return [(n, f"connectors[{i}]") for i, n in enumerate(self.connectors or [])]


ACTIONS = ("connector", "connectors", "split")
# What an update may change: everything but the id, mode and creation time.
MUTABLE = (
    "priority", "description", "currencies", "card_brands", "card_countries", "min_amount",
    "max_amount", "payment_method_types", *ACTIONS,
)  # fmt: skip


class RuleUpdate(RuleCreate):
    """``POST /v1/routing/rules/{id}``: the parameters to change, each as on create. Naming an
    action (``connector``, ``connectors`` or ``split``) replaces the rule's action; the rule as
    a whole is then checked as a new one would be."""

    priority: int | None = Field(default=None, ge=0, le=1_000_000)  # type: ignore[assignment]

    @model_validator(mode="after")
    def _consistent(self) -> RuleUpdate:
        actions = [a for a in ACTIONS if getattr(self, a) is not None]
        if len(actions) > 1:
            raise InvalidRequest(
                f"You may only specify one of these parameters: {', '.join(actions)}.",
                param=actions[1],
            )
        return self

    def merged_with(self, row: Any) -> dict[str, Any]:
        """The rule ``row`` with these changes applied, as ``RuleCreate`` parameters."""
        current = {k: row[k] for k in MUTABLE if row[k] is not None}
        changes = self.model_dump(exclude_unset=True, exclude_none=True)
        if any(a in changes for a in ACTIONS):
            current = {k: v for k, v in current.items() if k not in ACTIONS}
        return {**current, **changes}


class RuleList(ListParams):
    pass


class RuleRetrieve(Params):
    pass


def rule_object(row: Any) -> dict[str, Any]:
    """The ``routing_rule`` object."""
    return {
        "id": row["id"],
        "object": "routing_rule",
        "created": int(row["created_at"].timestamp()),
        "livemode": row["livemode"],
        "priority": row["priority"],
        "description": row["description"],
        "currencies": row["currencies"],
        "card_brands": row["card_brands"],
        "card_countries": row["card_countries"],
        "min_amount": row["min_amount"],
        "max_amount": row["max_amount"],
        "payment_method_types": row["payment_method_types"],
        "connector": row["connector"],
        "connectors": row["connectors"],
        "split": row["split"],
    }


def deleted_rule(rule_id: str) -> dict[str, Any]:
    return {"id": rule_id, "object": "routing_rule", "deleted": True}
