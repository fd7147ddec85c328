"""Webhook delivery against real HTTP receivers that verify every request with the stripe SDK:
signatures and rotation, retries through a simulated multi-day outage (the clock is moved,
nothing is mocked), dead letters and replay, poison pills, SSRF rules, concurrency limits."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import httpx

from kassa.config import get_settings
from kassa.core import clock
from kassa.events.service.delivery import deliver_due
from tests.events.conftest import deliver_all, emit
from tests.events.receiver import Receiver
from tests.factories import stripe_client

HOUR = 3600.0


def _endpoint(api_url, key, url, events=("*",), **extra):
    params: Any = {"url": url, "enabled_events": list(events), **extra}
    return stripe_client(api_url, key).v1.webhook_endpoints.create(params)


def _get(api_url, key, path, **params):
    r = httpx.get(api_url + path, params=params, headers={"Authorization": f"Bearer {key}"})
    r.raise_for_status()
    return r.json()


def _post(api_url, key, path, **data):
    return httpx.post(api_url + path, data=data, headers={"Authorization": f"Bearer {key}"})


async def _statuses(db, endpoint_id):
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT status, count(*) AS n FROM webhook_deliveries WHERE endpoint_id = $1 "
            "GROUP BY status",
            endpoint_id,
        )
    return {r["status"]: r["n"] for r in rows}


async def test_deliveries_are_signed_logged_and_filtered_by_type(db, api_url, merchant, receivers):
    key, mid = merchant.key("secret"), merchant.merchant["id"]
    receiver = Receiver().start()
    receivers.append(receiver)
    we = _endpoint(api_url, key, receiver.url, ["charge.succeeded", "charge.refunded"])
    receiver.secrets = [we.secret]

    wanted = await emit(db, mid, "charge.succeeded", 3)
    await emit(db, mid, "customer.updated", 2)  # not subscribed
    await emit(db, mid, "charge.succeeded", 1, livemode=True)  # the other mode
    assert await deliver_all(db) == 3
    assert sorted(receiver.ids()) == sorted(wanted)
    assert receiver.rejected == []
    delivered = receiver.events[0]
    assert delivered["object"] == "event"
    assert delivered["type"] == "charge.succeeded"
    assert delivered["pending_webhooks"] == 1
    assert delivered["data"]["object"]["object"] == "charge"

    client = stripe_client(api_url, key)
    assert client.v1.events.retrieve(wanted[0]).pending_webhooks == 0
    log = _get(api_url, key, f"/v1/webhook_endpoints/{we.id}/delivery_attempts")
    assert len(log["data"]) == 3
    entry = log["data"][0]
    assert entry["object"] == "webhook_delivery_attempt"
    assert (entry["attempt"], entry["response_status"], entry["succeeded"]) == (1, 200, True)
    assert entry["response_body"] == '{"received": true}'
    assert entry["latency_ms"] >= 0
    deliveries = _get(api_url, key, f"/v1/webhook_endpoints/{we.id}/deliveries", event=wanted[1])
    assert [d["status"] for d in deliveries["data"]] == ["succeeded"]

    # Replaying one event through the API sends it again, under the same event id.
    retried = _post(api_url, key, f"/v1/events/{wanted[1]}/retry")
    assert retried.status_code == 200
    assert retried.json()["pending_webhooks"] == 1
    assert await deliver_all(db) == 1
    assert receiver.counts()[wanted[1]] == 2


async def test_rotation_signs_with_both_secrets_until_the_old_one_expires(
    db, api_url, merchant, receivers
):
    key, mid = merchant.key("secret"), merchant.merchant["id"]
    receiver = Receiver().start()
    receivers.append(receiver)
    we = _endpoint(api_url, key, receiver.url)
    old = we.secret
    rotated = _post(api_url, key, f"/v1/webhook_endpoints/{we.id}/rotate_secret", expires_in=3600)
    new = rotated.json()["secret"]
    assert new != old
    assert "secret" not in _get(api_url, key, f"/v1/webhook_endpoints/{we.id}")

    receiver.secrets = [old, new]  # every delivery must verify with each
    during = await emit(db, mid, n=2)
    await deliver_all(db)
    assert sorted(receiver.ids()) == sorted(during)
    assert all(h.count("v1=") == 2 for h in receiver.headers)
    assert receiver.rejected == []

    clock.advance(3601)
    receiver.secrets = [new]
    after = await emit(db, mid)
    await deliver_all(db)
    assert receiver.ids()[-1] == after[0]
    assert receiver.headers[-1].count("v1=") == 1
    receiver.secrets = [old]  # the expired secret no longer verifies
    await emit(db, mid)
    await deliver_all(db)
    assert len(receiver.rejected) == 1


async def test_a_receiver_down_for_two_days_gets_every_event_afterwards(
    db, api_url, merchant, receivers
):
    key, mid = merchant.key("secret"), merchant.merchant["id"]
    receiver = Receiver().start()
    receivers.append(receiver)
    we = _endpoint(api_url, key, receiver.url)
    receiver.secrets = [we.secret]
    receiver.status = 503
    ids = await emit(db, mid, n=10)
    attempts = 0
    for _ in range(12):  # 2 days in 4-hour steps, the receiver failing throughout
        attempts += await deliver_all(db)
        clock.advance(4 * HOUR)
    assert receiver.ids() == []
    assert attempts > 10  # retried, not given up
    assert await _statuses(db, we.id) == {"pending": 10}
    log = _get(api_url, key, f"/v1/webhook_endpoints/{we.id}/delivery_attempts", limit=100)
    assert {e["response_status"] for e in log["data"]} == {503}
    assert all(e["error"] == "HTTP 503" for e in log["data"])
    retrieved = stripe_client(api_url, key).v1.events.retrieve(ids[0])
    assert retrieved.pending_webhooks == 1

    receiver.status = 200
    clock.advance(get_settings().webhook_backoff_cap_seconds)
    await deliver_all(db)
    assert sorted(set(receiver.ids())) == sorted(ids)
    assert await _statuses(db, we.id) == {"succeeded": 10}
    assert receiver.rejected == []
    endpoint = stripe_client(api_url, key).v1.webhook_endpoints.retrieve(we.id)
    assert endpoint.status == "enabled"


async def test_a_receiver_that_never_recovers_ends_in_dead_letters_then_replay(
    db, api_url, merchant, receivers, database_url
):
    key, mid = merchant.key("secret"), merchant.merchant["id"]
    receiver = Receiver().start()
    watcher = Receiver().start()
    receivers += [receiver, watcher]
    we = _endpoint(api_url, key, receiver.url, ["charge.succeeded"])
    watch = _endpoint(api_url, key, watcher.url, ["webhook_endpoint.disabled"])
    receiver.secrets, watcher.secrets = [we.secret], [watch.secret]
    receiver.stop()  # connection refused from now on
    ids = await emit(db, mid, n=5)
    for _ in range(14):  # 3.5 days in 6-hour steps
        await deliver_all(db)
        clock.advance(6 * HOUR)
    await deliver_all(db)
    assert await _statuses(db, we.id) == {"dead": 5}
    dead = _get(api_url, key, f"/v1/webhook_endpoints/{we.id}/deliveries", status="dead")
    assert {d["event"] for d in dead["data"]} == set(ids)
    assert {d["dead_reason"] for d in dead["data"]} <= {"retries_exhausted", "endpoint_disabled"}
    # Failing for 3 days disabled the endpoint and told the merchant through its other endpoint.
    client = stripe_client(api_url, key)
    assert client.v1.webhook_endpoints.retrieve(we.id).status == "disabled"
    told = [e for e in watcher.events if e["type"] == "webhook_endpoint.disabled"]
    assert [e["data"]["object"]["id"] for e in told] == [we.id]
    assert client.v1.events.list({"type": "webhook_endpoint.disabled"}).data[0].id == told[0]["id"]

    # Back up: re-enable, replay the dead letters through the API, every event arrives.
    receiver.start()
    refused = _post(api_url, key, f"/v1/webhook_endpoints/{we.id}/replay")
    assert refused.status_code == 400  # still disabled
    client.v1.webhook_endpoints.update(we.id, {"disabled": False})
    replayed = _post(api_url, key, f"/v1/webhook_endpoints/{we.id}/replay")
    assert replayed.json()["replayed"] == 5
    await deliver_all(db)
    assert sorted(receiver.ids()) == sorted(ids)
    assert receiver.rejected == []

    # The CLI replays one event again.
    out = subprocess.run(
        [sys.executable, "-m", "kassa", "webhooks", "replay", we.id, "--event", ids[0], "--json"],
        env={**os.environ, "KASSA_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"replayed": 1' in out.stdout
    await deliver_all(db)
    assert receiver.counts()[ids[0]] == 2


async def test_a_poison_pill_is_parked_and_blocks_nothing(db, api_url, merchant, receivers):
    key, mid = merchant.key("secret"), merchant.merchant["id"]
    good, bad = Receiver().start(), Receiver().start()
    receivers += [good, bad]
    healthy = _endpoint(api_url, key, good.url)
    broken = _endpoint(api_url, key, bad.url)
    good.secrets = [healthy.secret]
    # Kassa cannot process the broken endpoint's deliveries: its sealed secrets are corrupt.
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE webhook_endpoints SET secrets = 'garbage'::bytea WHERE id = $1", broken.id
        )
    ids = await emit(db, mid, n=4)
    await deliver_all(db)
    assert sorted(good.ids()) == sorted(ids)  # not held up by the poison
    for _ in range(5):
        clock.advance(HOUR)
        await deliver_all(db)
    assert await _statuses(db, broken.id) == {"parked": 4}
    parked = _get(api_url, key, f"/v1/webhook_endpoints/{broken.id}/deliveries", status="parked")
    assert all(d["last_error"].startswith("kassa: ") for d in parked["data"])
    assert all(d["dead_reason"] == "processing_error" for d in parked["data"])
    assert bad.ids() == []


async def test_a_delivery_whose_worker_vanished_is_sent_again_and_then_parked(
    db, api_url, merchant, receivers
):
    """A worker killed mid-request leaves its lease; the delivery is sent again when the lease
    ends. One that kills every worker taking it is parked after a few tries."""
    from kassa.events.service import delivery

    key, mid = merchant.key("secret"), merchant.merchant["id"]
    receiver = Receiver().start()
    receivers.append(receiver)
    we = _endpoint(api_url, key, receiver.url)
    receiver.secrets = [we.secret]
    [event_id] = await emit(db, mid)
    await delivery.dispatch(db)
    lease = get_settings().webhook_lease_seconds
    for _ in range(get_settings().webhook_max_crashes):
        claimed = [r for r in await delivery.claim(db, 100) if r["event_id"] == event_id]
        assert len(claimed) == 1  # ...and the worker dies before recording anything
        clock.advance(lease + 1)
    await deliver_all(db)
    assert await _statuses(db, we.id) == {"parked": 1}
    assert receiver.ids() == []
    replay = _post(api_url, key, f"/v1/webhook_endpoints/{we.id}/replay")
    assert replay.json()["replayed"] == 1
    await deliver_all(db)
    assert receiver.ids() == [event_id]


async def test_live_mode_never_reaches_private_addresses_unless_allowed(
    db, api_url, merchant, receivers, monkeypatch
):
    key, mid = merchant.key("secret", livemode=True), merchant.merchant["id"]
    receiver = Receiver().start()
    receivers.append(receiver)
    # A name, so it passes the check when saved and is caught when resolved at delivery.
    we = _endpoint(api_url, key, f"http://localhost:{receiver.port}/hooks")
    receiver.secrets = [we.secret]
    [event_id] = await emit(db, mid, livemode=True)
    await deliver_all(db)
    assert receiver.ids() == []
    log = _get(api_url, key, f"/v1/webhook_endpoints/{we.id}/delivery_attempts")
    assert log["data"][0]["error"].startswith("blocked: localhost resolves to")
    assert log["data"][0]["response_status"] is None

    monkeypatch.setenv("KASSA_WEBHOOKS_ALLOW_PRIVATE", "true")
    get_settings.cache_clear()
    try:
        clock.advance(get_settings().webhook_backoff_cap_seconds)
        await deliver_all(db)
    finally:
        monkeypatch.delenv("KASSA_WEBHOOKS_ALLOW_PRIVATE")
        get_settings.cache_clear()
    assert receiver.ids() == [event_id]


async def test_each_endpoint_has_a_concurrency_limit(db, api_url, merchant, receivers):
    key, mid = merchant.key("secret"), merchant.merchant["id"]
    slow, fast = Receiver(delay=0.2).start(), Receiver().start()
    receivers += [slow, fast]
    slow_we = _endpoint(api_url, key, slow.url, ["charge.succeeded"])
    fast_we = _endpoint(api_url, key, fast.url, ["customer.updated"])
    slow.secrets, fast.secrets = [slow_we.secret], [fast_we.secret]
    await emit(db, mid, "charge.succeeded", 20)
    await emit(db, mid, "customer.updated", 3)
    limit = get_settings().webhook_endpoint_concurrency
    assert await deliver_due(db, limit=100) == limit + 3
    assert len(fast.ids()) == 3  # the other endpoint was not starved by the backlog
    await deliver_all(db)
    assert len(set(slow.ids())) == 20
    assert 1 < slow.max_concurrent <= limit
