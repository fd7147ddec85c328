"""The error policy: defaults, the invariants no override can break, operators' overrides
in PostgreSQL (through ``kassa connectors errors``) and in the connectors file."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from typer.testing import CliRunner

from kassa.cli import app as cli
from kassa.connectors import policy
from kassa.connectors.configuration import ConfigurationError, parse_connectors
from kassa.connectors.policy import Action, ErrorPolicy, PolicyError


@pytest.mark.parametrize(
    ("code", "action"),
    [
        ("insufficient_funds", "cascade"),  # hard decline
        ("stolen_card", "retry"),
        ("timeout", "cascade"),  # maybe charged
        ("outcome_unknown", "cascade"),
        ("processing_error", "retry"),  # a PSP answer: resending replays it
        ("not_sent", "sometimes"),
        ("Bad Code", "stop"),
    ],
)
def test_overrides_that_could_cost_money_are_refused(code, action):
    with pytest.raises(PolicyError):
        policy.check(code, action)


async def test_defaults():
    p = ErrorPolicy(None)
    assert await p.action("a", "not_sent") == (Action.CASCADE, "not_sent")
    assert await p.action("a", "rate_limited") == (Action.RETRY, "rate_limited")
    assert await p.action("a", "timeout") == (Action.STOP, "timeout")
    assert await p.action("a", None, "processing_error") == (Action.CASCADE, "processing_error")
    # Decline code first, then failure code; a hard decline wins over anything.
    assert await p.action("a", "insufficient_funds", "card_declined") == (
        Action.STOP,
        "insufficient_funds",
    )
    assert await p.action("a", "issuer_unavailable", "card_declined") == (
        Action.CASCADE,
        "issuer_unavailable",
    )
    assert await p.action("a", "something_new") == (Action.STOP, "something_new")


def test_backoff_is_full_jitter_and_capped():
    assert policy.backoff(0, 0.1, 1.0, 0.0) == 0.0
    assert policy.backoff(1, 0.1, 1.0, 0.5) == pytest.approx(0.1)
    assert policy.backoff(10, 0.1, 1.0, 0.999) < 1.0


def test_the_connectors_file_takes_overrides_and_refuses_unsafe_ones():
    base = {"name": "a", "kind": "acquirer_a", "base_url": "http://x", "credentials": {},
            "webhook_secret": "s"}  # fmt: skip
    ok = parse_connectors({"connectors": [{**base, "errors": {"card_declined": "cascade"}}]})
    assert ok.connectors[0].errors == {"card_declined": "cascade"}
    with pytest.raises(ConfigurationError, match="hard decline"):
        parse_connectors({"connectors": [{**base, "errors": {"stolen_card": "cascade"}}]})


async def test_table_overrides_win_and_take_effect_without_a_restart(db):
    name = f"t_{uuid.uuid4().hex[:10]}"
    p = ErrorPolicy(db, {name: {"generic_decline": "cascade"}}, ttl_s=0)
    assert await p.action(name, "generic_decline") == (Action.CASCADE, "generic_decline")
    assert await p.action(name, "not_sent") == (Action.CASCADE, "not_sent")

    runner = CliRunner()

    def run(*args: str):
        return asyncio.to_thread(runner.invoke, cli, ["connectors", "errors", *args])

    result = await run("set", "not_sent", "stop", "--connector", name, "--note", "test")
    assert result.exit_code == 0, result.output
    result = await run("set", "generic_decline", "stop", "--connector", name)
    assert result.exit_code == 0, result.output
    assert await p.action(name, "not_sent") == (Action.STOP, "not_sent")
    assert await p.action(name, "generic_decline") == (Action.STOP, "generic_decline")

    refused = await run("set", "insufficient_funds", "cascade", "--connector", name)
    assert refused.exit_code == 2
    assert "hard decline" in refused.output

    listed = await run("list", "--json")
    rows = {(r["connector"], r["code"]): r["action"] for r in json.loads(listed.output)}
    assert rows[(name, "not_sent")] == "stop"

    assert (await run("delete", "not_sent", "--connector", name)).exit_code == 0
    assert (await run("delete", "not_sent", "--connector", name)).exit_code == 1
    assert (await run("delete", "generic_decline", "--connector", name)).exit_code == 0
    assert await p.action(name, "not_sent") == (Action.CASCADE, "not_sent")
    assert await p.action(name, "generic_decline") == (Action.CASCADE, "generic_decline")
