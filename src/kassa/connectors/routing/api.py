"""``/v1/routing/rules``: a merchant's routing rules (a Kassa extension; Stripe has none)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from kassa.connectors.routing import service
from kassa.connectors.routing.schemas import RuleCreate, RuleList, RuleRetrieve, RuleUpdate
from kassa.core.http.context import Caller
from kassa.core.http.params import parse
from kassa.core.http.routing import StripeRouter

router = StripeRouter("/v1/routing/rules", resource="routing_rules", tag="routing")


@router.post("", body=RuleCreate)
async def create(request: Request, c: Caller) -> dict[str, Any]:
    """Create a routing rule: conditions, a priority, and a connector, connectors or a split."""
    params = parse(RuleCreate, c.params)
    return await service.create_rule(
        request.app.state.db,
        c.merchant_id,
        c.livemode,
        params,
        request.app.state.connectors.configs,
        c.idempotency,
    )


@router.get("", query=RuleList)
async def list_(request: Request, c: Caller) -> dict[str, Any]:
    """List routing rules, newest first."""
    params = parse(RuleList, c.params)
    return await service.list_rules(request.app.state.db, c.merchant_id, c.livemode, params)


@router.get("/{rule_id}", query=RuleRetrieve)
async def retrieve(request: Request, c: Caller) -> dict[str, Any]:
    """Retrieve a routing rule."""
    parse(RuleRetrieve, c.params)
    rule_id = request.path_params["rule_id"]
    return await service.retrieve_rule(request.app.state.db, c.merchant_id, c.livemode, rule_id)


@router.post("/{rule_id}", body=RuleUpdate)
async def update(request: Request, c: Caller) -> dict[str, Any]:
    """Change a routing rule's priority, conditions or action."""
    params = parse(RuleUpdate, c.params)
    return await service.update_rule(
        request.app.state.db,
        c.merchant_id,
        c.livemode,
        request.path_params["rule_id"],
        params,
        request.app.state.connectors.configs,
        c.idempotency,
    )


@router.delete("/{rule_id}")
async def delete(request: Request, c: Caller) -> dict[str, Any]:
    """Delete a routing rule; the next payment is routed without it."""
    parse(RuleRetrieve, c.params)
    rule_id = request.path_params["rule_id"]
    return await service.delete_rule(request.app.state.db, c.merchant_id, c.livemode, rule_id)
