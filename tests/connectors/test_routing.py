"""The routing engine: platform rules in order with a default; merchant rules by priority with
conditions on currency, brand, card country, amount and payment method type; volume splits;
ranking by success rate over a sliding window, then estimated fee; exploration; and the
decision record kept on the charge."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from pydantic import ValidationError

from kassa.connectors.configuration import (
    ConnectorConfig,
    ConnectorsFile,
    FeeSchedule,
    RoutingConfig,
    RoutingRule,
    SuccessRateConfig,
    routing_for,
)
from kassa.connectors.routing import Router, RouteRequest, SuccessWindow


def config(
    name: str,
    currencies: set[str] | None = None,
    brands: set[str] | None = None,
    bps: int = 0,
    fixed_usd: str | None = None,
) -> ConnectorConfig:
    return ConnectorConfig(
        name=name,
        kind="acquirer_a",
        base_url="http://127.0.0.1:1",
        credentials={},
        webhook_secret="s",
        currencies=frozenset(currencies or ()),
        brands=frozenset(brands or ()),
        fees=FeeSchedule(
            percent_bps={"*": bps}, capture_fixed={"usd": fixed_usd} if fixed_usd else {}
        ),
    )


def rule(connector: str, currencies: set[str] | None = None, brands: set[str] | None = None):
    return RoutingRule(
        connector=connector,
        currencies=frozenset(currencies) if currencies is not None else None,
        brands=frozenset(brands) if brands is not None else None,
    )


def pay(
    currency: str = "usd",
    brand: str = "visa",
    amount: int = 1000,
    country: str | None = "US",
    payment_method_type: str = "card",
) -> RouteRequest:
    return RouteRequest(currency, brand, amount, country, payment_method_type)


def names(router: Router, currency: str, brand: str) -> list[str]:
    return router.route(pay(currency, brand)).candidates


# -- platform routing (the connectors file) --------------------------------------------------


def test_first_matching_rule_wins_and_default_comes_last() -> None:
    router = Router(
        [rule("jp", currencies={"jpy"}), rule("amex_house", brands={"amex"}), rule("eu", {"eur"})],
        default="global",
    )
    assert names(router, "jpy", "visa") == ["jp", "global"]
    assert names(router, "eur", "amex") == ["amex_house", "eu", "global"]
    decision = router.route(pay("usd", "mastercard"))
    assert (decision.candidates, decision.strategy, decision.rule) == (
        ["global"],
        "default",
        None,
    )
    assert decision.reason == "platform default connector global"
    assert router.route(pay("jpy")).rule == "platform:0"


def test_both_conditions_must_hold() -> None:
    router = Router([rule("b", currencies={"usd"}, brands={"discover"})], default="a")
    assert names(router, "usd", "discover") == ["b", "a"]
    assert names(router, "usd", "visa") == ["a"]
    assert names(router, "eur", "discover") == ["a"]


def test_matching_ignores_case_and_names_each_connector_once() -> None:
    router = Router([rule("a", {"EUR"}), rule("b", brands={"Visa"}), rule("a")], default="b")
    assert names(router, "eur", "VISA") == ["a", "b"]


def test_no_default_and_no_match_is_no_candidate() -> None:
    decision = Router([rule("a", {"eur"})]).route(pay("usd"))
    assert (decision.candidates, decision.connector, decision.strategy) == ([], None, "none")


def test_connectors_that_cannot_take_the_payment_are_skipped() -> None:
    connectors = {
        "a": config("a", {"eur", "usd"}, {"visa", "amex"}),
        "b": config("b", {"usd", "nzd"}, {"visa", "discover"}),
    }
    router = Router([rule("a"), rule("b")], default="a", connectors=connectors)
    assert names(router, "usd", "visa") == ["a", "b"]
    assert names(router, "nzd", "visa") == ["b"]
    assert names(router, "usd", "amex") == ["a"]
    assert names(router, "usd", "discover") == ["b"]
    assert names(router, "gbp", "jcb") == []


def test_rules_may_only_name_configured_connectors() -> None:
    with pytest.raises(ValueError, match="unknown connectors"):
        Router([rule("nope")], default="a", connectors={"a": config("a")})
    split = RoutingRule(split={"a": 50, "nope": 50})
    with pytest.raises(ValueError, match="unknown connectors"):
        Router([split], connectors={"a": config("a")})


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
    assert names(router, "jpy", "amex") == ["b", "a"]
    assert names(router, "eur", "visa") == ["a"]


def test_routing_derived_from_connectors() -> None:
    """Without configured rules every connector able to take a payment is a candidate, in the
    order they are configured, the first being the default."""
    a = config("a", {"eur", "usd"}, {"visa", "amex"})
    b = config("b", {"usd", "nzd"}, {"visa", "discover"})
    router = Router.from_config(routing_for([a, b]), {"a": a, "b": b})
    assert names(router, "usd", "visa") == ["a", "b"]
    assert names(router, "nzd", "discover") == ["b"]
    assert names(router, "eur", "discover") == []


def test_rule_actions_and_amounts_are_validated() -> None:
    bad: dict[str, Any]
    for bad in (
        {},
        {"connector": "a", "split": {"a": 50, "b": 50}},
        {"split": {"a": 70, "b": 20}},
        {"split": {"a": 100}},
        {"split": {"a": 110, "b": -10}},
        {"connectors": []},
        {"connector": "a", "min_amount": 500, "max_amount": 100},
        {"connector": "a", "min_amount": -1},
    ):
        with pytest.raises(ValidationError):
            RoutingRule.model_validate(bad)
    file = {
        "connectors": [config("a").model_dump(mode="json")],
        "routing": {"rules": [{"split": {"a": 50, "zz": 50}}]},
    }
    with pytest.raises(ValidationError, match="unknown connectors"):
        ConnectorsFile.model_validate(file)


# -- merchant rules --------------------------------------------------------------------------


def merchant_rule(priority: int, rid: str, **kw: Any) -> RoutingRule:
    return RoutingRule.model_validate({"id": rid, "priority": priority, **kw})


def two_acquirers(**kw: Any) -> Router:
    connectors = {
        "a": config("a", {"usd", "eur"}, {"visa", "amex"}, bps=120, fixed_usd="0.12"),
        "b": config("b", {"usd", "mxn"}, {"visa", "discover"}, bps=240, fixed_usd="0.25"),
    }
    return Router.from_config(routing_for(list(connectors.values())), connectors, **kw)


def test_merchant_rules_by_priority_then_platform_fallbacks() -> None:
    router = two_acquirers()
    rules = [
        merchant_rule(20, "rr_2", connector="a"),
        merchant_rule(10, "rr_1", currencies=["usd"], countries=["gb"], connector="b"),
    ]
    gb = router.route(pay(country="GB"), rules)
    assert (gb.candidates, gb.strategy, gb.rule) == (["b", "a"], "rule", "rr_1")
    assert gb.reason == "rule rr_1 (priority 10) sends it to b"
    us = router.route(pay(country="US"), rules)
    assert (us.candidates, us.rule) == (["a", "b"], "rr_2")


def test_each_condition_must_hold() -> None:
    router = two_acquirers()
    r = merchant_rule(
        1,
        "rr_x",
        currencies=["usd"],
        brands=["visa"],
        countries=["us"],
        min_amount=500,
        max_amount=5000,
        payment_method_types=["card"],
        connector="b",
    )
    assert router.route(pay(amount=500), [r]).rule == "rr_x"
    assert router.route(pay(amount=5000), [r]).rule == "rr_x"
    for miss in (
        pay(amount=499),
        pay(amount=5001),
        pay(country="DE"),
        pay(country=None),
        pay(currency="eur"),
        pay(brand="amex"),
        pay(payment_method_type="us_bank_account"),
    ):
        assert router.route(miss, [r]).rule != "rr_x", miss


def test_a_rule_whose_connectors_cannot_take_the_payment_falls_through() -> None:
    router = two_acquirers()
    only_b = merchant_rule(1, "rr_b", connector="b")
    decision = router.route(pay(currency="eur"), [only_b])  # b takes no EUR
    assert (decision.candidates, decision.strategy, decision.rule) == (
        ["a"],
        "default",
        "platform:0",
    )


# -- volume splits ---------------------------------------------------------------------------


def test_split_shares_are_exact_and_interleaved() -> None:
    router = two_acquirers()
    split = merchant_rule(1, "rr_s", split={"a": 70, "b": 30})
    picks = [router.route(pay(), [split]) for _ in range(1000)]
    assert Counter(d.connector for d in picks) == {"a": 700, "b": 300}
    # Smooth: never more than three of a in a row for 70/30.
    run = longest = 0
    for d in picks:
        run = run + 1 if d.connector == "a" else 0
        longest = max(longest, run)
    assert longest <= 3
    first = picks[0]
    assert first.strategy == "split"
    assert first.rule == "rr_s"
    assert set(first.candidates) == {"a", "b"}  # the other member stays as a fallback
    assert first.scores["a"]["weight"] == 70
    assert first.scores["b"]["weight"] == 30
    assert "volume split" in first.reason


def test_split_members_that_cannot_take_the_payment_are_left_out() -> None:
    router = two_acquirers()
    split = merchant_rule(1, "rr_s", split={"a": 70, "b": 30})
    assert {router.route(pay(currency="mxn"), [split]).connector for _ in range(20)} == {"b"}


def test_platform_split() -> None:
    connectors = {"a": config("a"), "b": config("b")}
    routing = RoutingConfig.model_validate({"rules": [{"split": {"a": 25, "b": 75}}]})
    router = Router.from_config(routing, connectors)
    picks = Counter(router.route(pay()).connector for _ in range(400))
    assert picks == {"a": 100, "b": 300}
    assert router.route(pay()).rule == "platform:0"


# -- success rate and cost -------------------------------------------------------------------


def feed(router: Router, name: str, ok: int, failed: int, country: str = "US") -> None:
    for _ in range(ok):
        router.record_outcome(name, "visa", country, "captured")
    for _ in range(failed):
        router.record_outcome(name, "visa", country, "declined")


def test_equal_success_rates_rank_the_cheaper_first() -> None:
    router = two_acquirers(rng=random.Random(1))
    ranked = merchant_rule(1, "rr_r", connectors=["b", "a"])
    router.settings = SuccessRateConfig(exploration=0)
    decision = router.route(pay(amount=10_000), [ranked])
    assert (decision.candidates, decision.strategy) == (["a", "b"], "cost")
    assert decision.scores["a"] == {"fee": 132, "success_rate": None, "attempts": 0}
    assert decision.scores["b"]["fee"] == 265
    assert "a is cheaper (fee 132 vs 265)" in decision.reason


def test_the_better_success_rate_wins_over_cost() -> None:
    router = two_acquirers(rng=random.Random(1))
    router.settings = SuccessRateConfig(exploration=0)
    feed(router, "a", ok=10, failed=10)
    feed(router, "b", ok=19, failed=1)
    ranked = merchant_rule(1, "rr_r", connectors=["a", "b"])
    decision = router.route(pay(), [ranked])
    assert (decision.candidates, decision.strategy) == (["b", "a"], "success_rate")
    assert decision.scores["a"]["success_rate"] == 0.5
    assert decision.scores["b"] == {"fee": 49, "success_rate": 0.95, "attempts": 20}
    assert "b has the best success rate (95% of 20 vs a 50% of 20)" in decision.reason
    # Other cards' history does not count: per (connector, brand, country).
    assert router.route(pay(country="DE"), [ranked]).candidates == ["a", "b"]


def test_rates_within_a_band_are_equal_and_unknown_ranks_as_best() -> None:
    router = two_acquirers(rng=random.Random(1))
    router.settings = SuccessRateConfig(exploration=0, band=0.1)
    feed(router, "a", ok=91, failed=9)  # 91 %
    feed(router, "b", ok=99, failed=1)  # 99 %: same 10-point band
    ranked = merchant_rule(1, "rr_r", connectors=["a", "b"])
    assert router.route(pay(), [ranked]).strategy == "cost"
    fresh = two_acquirers(rng=random.Random(1))
    fresh.settings = SuccessRateConfig(exploration=0)
    feed(fresh, "a", ok=9, failed=1)  # a known 90 %; b has no history yet
    assert fresh.route(pay(), [ranked]).candidates == ["b", "a"]


def test_exploration_sends_a_small_share_to_the_lower_ranked() -> None:
    router = two_acquirers(rng=random.Random(7))
    router.settings = SuccessRateConfig(exploration=0.1)
    feed(router, "a", ok=10, failed=10)
    feed(router, "b", ok=20, failed=0)
    ranked = merchant_rule(1, "rr_r", connectors=["a", "b"])
    decisions = [router.route(pay(), [ranked]) for _ in range(2000)]
    explored = [d for d in decisions if d.exploration]
    assert {d.connector for d in explored} == {"a"}
    assert 140 <= len(explored) <= 260  # 10 % of 2,000, seeded
    assert all(d.connector == "b" for d in decisions if not d.exploration)
    assert explored[0].reason.endswith("exploration: a tried instead of the best-ranked b")


def test_platform_success_rate_strategy() -> None:
    connectors = {"a": config("a", bps=100), "b": config("b", bps=200)}
    routing = RoutingConfig.model_validate(
        {
            "rules": [{"connector": "a"}, {"connector": "b"}],
            "strategy": "success_rate",
            "success_rate": {"exploration": 0},
        }
    )
    router = Router.from_config(routing, connectors)
    assert router.route(pay()).candidates == ["a", "b"]
    feed(router, "a", ok=0, failed=10)
    feed(router, "b", ok=10, failed=0)
    decision = router.route(pay())
    assert (decision.candidates, decision.strategy) == (["b", "a"], "success_rate")
    assert decision.reason.startswith("platform routing: b has the best success rate")


def test_only_authorisation_answers_count() -> None:
    router = two_acquirers()
    for outcome in ("authorized", "captured", "declined", "unknown", "not_sent", "requires_action"):
        router.record_outcome("a", "visa", "US", outcome)
    rate = router.window.rate("a", "visa", "us")
    assert (rate.attempts, rate.successes) == (3, 2)


def test_the_window_slides_by_attempts_and_by_time() -> None:
    now = [1000.0]
    window = SuccessWindow(attempts=5, seconds=60, min_attempts=3, now=lambda: now[0])
    for ok in (False, False, True, True, True, True):
        window.record("a", "visa", "US", ok)
    assert window.rate("a", "visa", "US").rate == 0.8  # the oldest fell out
    now[0] += 30
    window.record("a", "visa", "US", False)
    now[0] += 45  # the first five are now older than 60 s
    r = window.rate("a", "visa", "US")
    assert (r.attempts, r.successes, r.rate) == (1, 0, None)  # below min_attempts: unknown


def test_the_decision_record() -> None:
    router = two_acquirers()
    split = merchant_rule(1, "rr_s", split={"a": 70, "b": 30})
    record = router.route(pay(), [split]).record()
    assert record == {
        "connector": "a",
        "candidates": ["a", "b"],
        "strategy": "split",
        "rule": "rr_s",
        "exploration": False,
        "scores": {
            "a": {"fee": 24, "success_rate": None, "attempts": 0, "weight": 70},
            "b": {"fee": 49, "success_rate": None, "attempts": 0, "weight": 30},
        },
        "reason": "rule rr_s: volume split a 70/b 30; this payment's share went to a",
    }


def test_a_platform_connectors_set_is_ranked() -> None:
    connectors = {"a": config("a", bps=300), "b": config("b", bps=100)}
    routing = RoutingConfig.model_validate(
        {"rules": [{"connectors": ["a", "b"]}], "success_rate": {"exploration": 0}}
    )
    decision = Router.from_config(routing, connectors).route(pay())
    assert (decision.candidates, decision.strategy, decision.rule) == (
        ["b", "a"],
        "cost",
        "platform:0",
    )
