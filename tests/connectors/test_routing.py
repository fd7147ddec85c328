"""Routing rules: ordered ``(currencies?, brands?) → connector`` with a default, candidates in
order, and connectors that cannot take a payment left out."""

from __future__ import annotations

import pytest

from kassa.connectors.configuration import (
    ConnectorConfig,
    RoutingConfig,
    RoutingRule,
    routing_for,
)
from kassa.connectors.routing import Router


def config(name: str, currencies: set[str] | None = None, brands: set[str] | None = None):
    return ConnectorConfig(
        name=name,
        kind="acquirer_a",
        base_url="http://127.0.0.1:1",
        credentials={},
        webhook_secret="s",
        currencies=frozenset(currencies or ()),
        brands=frozenset(brands or ()),
    )


def rule(connector: str, currencies: set[str] | None = None, brands: set[str] | None = None):
    return RoutingRule(
        connector=connector,
        currencies=frozenset(currencies) if currencies is not None else None,
        brands=frozenset(brands) if brands is not None else None,
    )


def test_first_matching_rule_wins_and_default_comes_last() -> None:
    router = Router(
        [rule("jp", currencies={"jpy"}), rule("amex_house", brands={"amex"}), rule("eu", {"eur"})],
        default="global",
    )
    assert router.route("jpy", "visa") == ["jp", "global"]
    assert router.route("eur", "amex") == ["amex_house", "eu", "global"]
    assert router.route("usd", "mastercard") == ["global"]


def test_both_conditions_must_hold() -> None:
    router = Router([rule("b", currencies={"usd"}, brands={"discover"})], default="a")
    assert router.route("usd", "discover") == ["b", "a"]
    assert router.route("usd", "visa") == ["a"]
    assert router.route("eur", "discover") == ["a"]


def test_matching_ignores_case_and_names_each_connector_once() -> None:
    router = Router([rule("a", {"EUR"}), rule("b", brands={"Visa"}), rule("a")], default="b")
    assert router.route("eur", "VISA") == ["a", "b"]


def test_no_default_and_no_match_is_no_candidate() -> None:
    assert Router([rule("a", {"eur"})]).route("usd", "visa") == []


def test_connectors_that_cannot_take_the_payment_are_skipped() -> None:
    connectors = {
        "a": config("a", {"eur", "usd"}, {"visa", "amex"}),
        "b": config("b", {"usd", "nzd"}, {"visa", "discover"}),
    }
    router = Router([rule("a"), rule("b")], default="a", connectors=connectors)
    assert router.route("usd", "visa") == ["a", "b"]
    assert router.route("nzd", "visa") == ["b"]
    assert router.route("usd", "amex") == ["a"]
    assert router.route("usd", "discover") == ["b"]
    assert router.route("gbp", "jcb") == []


def test_rules_may_only_name_configured_connectors() -> None:
    with pytest.raises(ValueError, match="unknown connectors"):
        Router([rule("nope")], default="a", connectors={"a": config("a")})


def test_from_config_keeps_the_order() -> None:
    routing = RoutingConfig.model_validate(
        {
            "rules": [
                {"currencies": ["jpy", "krw"], "connector": "b"},
                {"brands": ["amex"], "connector": "a"},
            ],
            "default": "a",
        }
    )
    router = Router.from_config(routing)
    assert router.route("jpy", "amex") == ["b", "a"]
    assert router.route("eur", "visa") == ["a"]


def test_routing_derived_from_connectors() -> None:
    """Without configured rules every connector able to take a payment is a candidate, in the
    order they are configured, the first being the default."""
    a = config("a", {"eur", "usd"}, {"visa", "amex"})
    b = config("b", {"usd", "nzd"}, {"visa", "discover"})
    router = Router.from_config(routing_for([a, b]), {"a": a, "b": b})
    assert router.route("usd", "visa") == ["a", "b"]
    assert router.route("nzd", "discover") == ["b"]
    assert router.route("eur", "discover") == []
