"""Circuit breakers: the transitions, and their state shared through PostgreSQL by separate
``Breakers`` (as separate processes hold them), with probes claimed atomically."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from kassa.cli import app as cli
from kassa.connectors import breaker
from kassa.connectors.breaker import BreakerOpen, Breakers, Shared, State, Ticket
from kassa.connectors.configuration import BreakerConfig
from kassa.core import clock

CONFIG = BreakerConfig(failure_threshold=3, cool_down_s=30, probes=2, cache_s=0, min_calls=10)
NOW = datetime(2024, 6, 1, tzinfo=UTC)


def test_transitions():
    closed = Shared("x")
    opened = breaker.trip(closed, NOW, CONFIG, "3 failures")
    assert opened is not None
    assert (opened.state, opened.retry_at) == (State.OPEN, NOW + timedelta(seconds=30))
    assert breaker.trip(opened, NOW, CONFIG, "again") is None  # already open
    assert breaker.claim_probe(opened, NOW, CONFIG, timedelta(seconds=10)) is None  # cooling
    later = NOW + timedelta(seconds=31)
    half = breaker.claim_probe(opened, later, CONFIG, timedelta(seconds=10))
    assert half is not None
    assert (half.state, half.probes_left) == (State.HALF_OPEN, 1)
    second = breaker.claim_probe(half, later, CONFIG, timedelta(seconds=10))
    assert second is not None
    assert second.probes_left == 0
    assert breaker.claim_probe(second, later, CONFIG, timedelta(seconds=10)) is None
    # Probes whose processes died are given up after probe_until.
    stale = breaker.claim_probe(second, later + timedelta(seconds=11), CONFIG, timedelta(0))
    assert stale is not None
    ticket = Ticket("x", probe=True, generation=half.generation)
    reopened = breaker.report_probe(second, ticket, True, later, CONFIG, "timeout")
    assert reopened is not None
    assert reopened.state is State.OPEN
    closed_again = breaker.report_probe(second, ticket, False, later, CONFIG, "")
    assert closed_again is not None
    assert closed_again.state is State.CLOSED
    old = Ticket("x", probe=True, generation=half.generation - 1)
    assert breaker.report_probe(second, old, True, later, CONFIG, "late") is None


@pytest.fixture
def name():
    return f"t_{uuid.uuid4().hex[:10]}"


async def _state(db, name):
    async with db.connection() as conn:
        return (await breaker.read_all(conn)).get(name, Shared(name)).state


async def test_failures_in_one_process_open_the_breaker_for_all(db, name):
    api, worker = Breakers(db, {name: CONFIG}), Breakers(db, {name: CONFIG})
    for _ in range(2):
        await api.record(await api.admit(name), True, "not_sent")
    await api.record(await api.admit(name), False)  # a success resets the count
    async with db.connection() as conn:
        assert name not in await breaker.read_all(conn)  # nothing written while closed
    for _ in range(3):
        await api.record(await api.admit(name), True, "outcome_unknown")
    assert await _state(db, name) is State.OPEN
    with pytest.raises(BreakerOpen):
        await worker.admit(name)  # the other process sees it without counting anything


async def test_a_failure_ratio_opens_the_breaker(db, name):
    config = CONFIG.model_copy(update={"failure_threshold": 100, "failure_ratio": 0.5})
    b = Breakers(db, {name: config})
    for i in range(11):  # every other call fails; the 11th makes the window full enough
        await b.record(await b.admit(name), i % 2 == 0, "timeout")
    assert await _state(db, name) is State.OPEN


async def test_half_open_admits_only_the_configured_probes_across_processes(db, name):
    processes = [Breakers(db, {name: CONFIG}) for _ in range(6)]
    for _ in range(3):
        await processes[0].record(await processes[0].admit(name), True, "not_sent")
    assert await _state(db, name) is State.OPEN
    clock.advance(31)
    try:
        results = await asyncio.gather(*(p.admit(name) for p in processes), return_exceptions=True)
        tickets = [r for r in results if isinstance(r, Ticket)]
        assert len(tickets) == CONFIG.probes
        assert all(t.probe for t in tickets)
        assert sum(isinstance(r, BreakerOpen) for r in results) == len(processes) - CONFIG.probes
        assert await _state(db, name) is State.HALF_OPEN
        # One probe fails: open again for another cool-down.
        await processes[0].record(tickets[0], True, "timeout")
        assert await _state(db, name) is State.OPEN
        with pytest.raises(BreakerOpen):
            await processes[1].admit(name)
        clock.advance(31)
        probe = await processes[2].admit(name)
        assert probe.probe
        await processes[2].record(probe, False)
        assert await _state(db, name) is State.CLOSED
        assert not (await processes[3].admit(name)).probe
    finally:
        clock.reset()


async def test_an_operator_reset_closes_it(db, name):
    b = Breakers(db, {name: CONFIG})
    for _ in range(3):
        await b.record(await b.admit(name), True, "not_sent")
    status = await asyncio.to_thread(CliRunner().invoke, cli, ["connectors", "status", "--json"])
    assert status.exit_code == 0, status.output
    assert {r["connector"]: r["state"] for r in json.loads(status.output)}[name] == "open"
    reset = await asyncio.to_thread(CliRunner().invoke, cli, ["connectors", "reset", name])
    assert reset.exit_code == 0, reset.output
    assert await _state(db, name) is State.CLOSED
    assert not await breaker.reset_breaker(db, name)
    assert not (await b.admit(name)).probe


async def test_a_disabled_breaker_never_opens(db, name):
    b = Breakers(db, {name: CONFIG.model_copy(update={"enabled": False})})
    for _ in range(10):
        await b.record(await b.admit(name), True, "not_sent")
    assert await _state(db, name) is State.CLOSED
