"""Merchant routing rules: create, read, list, delete, and the rules routing evaluates.

A rule may only name configured connectors, and only ones that take every currency and card
brand the rule is limited to, so a rule can never promise a payment to a PSP that refuses
it. Rules are read from PostgreSQL on every attempt (one indexed query in the attempt's own
transaction), so a change applies to the next payment in every process."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kassa.connectors.configuration import CARD_KINDS, ConnectorConfig, RoutingRule
from kassa.connectors.routing import repository
from kassa.connectors.routing.schemas import (
    MAX_RULES,
    MUTABLE,
    RuleCreate,
    RuleList,
    RuleUpdate,
    deleted_rule,
    rule_object,
)
from kassa.core import clock
from kassa.core.db import Connection, Database, Record
from kassa.core.errors import InvalidRequest, ResourceMissing
from kassa.core.http import idempotency
from kassa.core.http.idempotency import IdempotencyKey
from kassa.core.http.pagination import list_object
from kassa.core.http.params import parse
from kassa.core.ids import new_id

URL = "/v1/routing/rules"


def check_connectors(params: RuleCreate, connectors: Mapping[str, ConnectorConfig]) -> None:
    """A 400 naming the parameter when the rule names a connector that is not configured or
    does not take one of the rule's currencies or card brands."""
    for name, param in params.named():
        config = connectors.get(name)
        if config is None:
            known = ", ".join(sorted(connectors)) or "none"
            raise InvalidRequest(
                f"No connector named '{name}' is configured (configured: {known}).",
                param=param,
            )
        if config.kind not in CARD_KINDS:
            raise InvalidRequest(
                f"Connector '{name}' is not a card acquirer; routing rules choose among card "
                "acquirers.",
                param=param,
            )
        for code in params.currencies or ():
            if config.currencies and code not in config.currencies:
                raise InvalidRequest(
                    f"Connector '{name}' does not take payments in {code.upper()}.",
                    param=param,
                )
        for brand in params.card_brands or ():
            if config.brands and brand not in config.brands:
                raise InvalidRequest(
                    f"Connector '{name}' does not take {brand} cards.", param=param
                )


async def create_rule(
    db: Database,
    merchant_id: str,
    livemode: bool,
    params: RuleCreate,
    connectors: Mapping[str, ConnectorConfig],
    idem: IdempotencyKey | None = None,
) -> dict[str, Any]:
    """Store a routing rule for the merchant and mode; it applies from the next payment."""
    check_connectors(params, connectors)
    async with db.transaction() as conn:
        await idempotency.claim(conn, idem)
        # Serialises creations per merchant so the cap holds under concurrency.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('routing_rules:' || $1))", merchant_id
        )
        if await repository.count(conn, merchant_id, livemode) >= MAX_RULES:
            raise InvalidRequest(
                f"You have reached the maximum of {MAX_RULES} routing rules; delete one first.",
                param="priority",
            )
        row = await repository.insert(
            conn,
            {
                "merchant_id": merchant_id,
                "id": new_id("rr"),
                "livemode": livemode,
                "created_at": clock.now(),
                **params.model_dump(exclude_none=True),
            },
        )
        obj = rule_object(row)
        await idempotency.store_response(conn, idem, 200, obj)
    return obj


async def retrieve_rule(
    db: Database, merchant_id: str, livemode: bool, rule_id: str
) -> dict[str, Any]:
    """One routing rule (404 naming ``id`` if the merchant has no such rule in this mode)."""
    async with db.connection() as conn:
        row = await repository.get(conn, merchant_id, livemode, rule_id)
    if row is None:
        raise ResourceMissing("routing_rule", rule_id)
    return rule_object(row)


async def list_rules(
    db: Database, merchant_id: str, livemode: bool, params: RuleList
) -> dict[str, Any]:
    """The merchant's rules in this mode, newest first (Stripe list conventions)."""
    async with db.connection() as conn:
        rows = await repository.list_page(conn, merchant_id, livemode, params)
    page, has_more = params.page(rows)
    return list_object(URL, page, has_more, rule_object)


async def update_rule(
    db: Database,
    merchant_id: str,
    livemode: bool,
    rule_id: str,
    params: RuleUpdate,
    connectors: Mapping[str, ConnectorConfig],
    idem: IdempotencyKey | None = None,
) -> dict[str, Any]:
    """Change a rule; the changed rule is checked as a new one would be and applies from the
    next payment."""
    async with db.transaction() as conn:
        await idempotency.claim(conn, idem)
        row = await repository.get(conn, merchant_id, livemode, rule_id)
        if row is None:
            raise ResourceMissing("routing_rule", rule_id)
        rule = parse(RuleCreate, params.merged_with(row))
        check_connectors(rule, connectors)
        values = rule.model_dump()
        row = await repository.update(
            conn, merchant_id, livemode, rule_id, {k: values[k] for k in MUTABLE}
        )
        if row is None:  # deleted meanwhile
            raise ResourceMissing("routing_rule", rule_id)
        obj = rule_object(row)
        await idempotency.store_response(conn, idem, 200, obj)
    return obj


async def delete_rule(
    db: Database, merchant_id: str, livemode: bool, rule_id: str
) -> dict[str, Any]:
    """Delete a rule; payments already routed keep its id in their ``routing`` record."""
    async with db.transaction(single_statement=True) as conn:
        found = await repository.delete(conn, merchant_id, livemode, rule_id)
    if not found:
        raise ResourceMissing("routing_rule", rule_id)
    return deleted_rule(rule_id)


async def rules_in_order(db: Database, merchant_id: str, livemode: bool) -> list[dict[str, Any]]:
    """Every rule of the merchant and mode as API objects, in evaluation order."""
    async with db.connection() as conn:
        rows = await repository.in_priority_order(conn, merchant_id, livemode)
    return [rule_object(r) for r in rows]


def as_rule(row: Record) -> RoutingRule:
    """The routing engine's view of a stored rule."""
    return RoutingRule(
        id=row["id"],
        priority=row["priority"],
        currencies=frozenset(row["currencies"]) if row["currencies"] is not None else None,
        brands=frozenset(row["card_brands"]) if row["card_brands"] is not None else None,
        countries=frozenset(row["card_countries"]) if row["card_countries"] is not None else None,
        min_amount=row["min_amount"],
        max_amount=row["max_amount"],
        payment_method_types=(
            frozenset(row["payment_method_types"])
            if row["payment_method_types"] is not None
            else None
        ),
        connector=row["connector"],
        connectors=tuple(row["connectors"]) if row["connectors"] is not None else None,
        split=row["split"],
    )


async def rules_for(conn: Connection, merchant_id: str, livemode: bool) -> list[RoutingRule]:
    """The merchant's rules in evaluation order, read on the caller's connection."""
    return [as_rule(r) for r in await repository.in_priority_order(conn, merchant_id, livemode)]
