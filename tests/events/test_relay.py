"""The outbox relay to NATS JetStream, against a real nats-server: every event reaches every
durable consumer exactly once, across a relay killed with SIGKILL and restarted."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import nats
import orjson
import pytest

from kassa.config import get_settings
from kassa.core import clock
from kassa.core.embedded_pg import free_port
from kassa.events import service as events
from kassa.events.service import relay
from tests.events.conftest import emit

NATS_SERVER = shutil.which("nats-server") or next(
    (p for p in ("/usr/sbin/nats-server", "/usr/bin/nats-server") if Path(p).exists()), None
)
pytestmark = pytest.mark.skipif(
    NATS_SERVER is None, reason="nats-server is not installed (Debian: apt-get install nats-server)"
)


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory):
    assert NATS_SERVER is not None
    port = free_port()
    store = tmp_path_factory.mktemp("jetstream")
    proc = subprocess.Popen(
        [NATS_SERVER, "-js", "-sd", str(store), "-a", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("nats-server did not start") from None
            time.sleep(0.05)
    yield f"nats://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
async def consumer_name(db):
    name = f"test-relay-{uuid.uuid4().hex[:8]}"
    await events.register_consumer(db, name)
    yield name
    await events.unregister_consumer(db, name)


async def _queued(db, consumer: str) -> int:
    async with db.connection() as conn:
        return await conn.fetchval(
            "SELECT count(*) FROM event_outbox WHERE consumer = $1", consumer
        )


async def _drain(sub) -> list[str]:
    """Every message the durable consumer still has, acknowledged; their event ids."""
    ids: list[str] = []
    while True:
        try:
            msgs = await sub.fetch(100, timeout=0.5)
        except nats.errors.TimeoutError:
            return ids
        for m in msgs:
            ids.append(orjson.loads(m.data)["id"])
            await m.ack()


SHORT_LEASE = {"KASSA_RELAY_LEASE_SECONDS": "1"}


def _start_relay(database_url, nats_url, name, log):
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "kassa", "relay", "--nats-url", nats_url, "--name", name,
             "--batch", "10"],
            # A short lease, so the killed relay's batch is published again soon.
            env={**os.environ, "KASSA_DATABASE_URL": database_url, **SHORT_LEASE},
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip


async def test_every_event_reaches_each_durable_consumer_once_across_a_relay_restart(
    db, merchant, nats_url, consumer_name, database_url, tmp_path
):
    mid = merchant.merchant["id"]
    settings = get_settings()
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await relay.ensure_stream(js, settings)
        subject = f"{settings.relay_subject_prefix}.test.{mid}.>"
        first = await js.pull_subscribe(
            subject, durable=f"a{mid[-8:]}", stream=settings.relay_stream
        )
        second = await js.pull_subscribe(
            subject, durable=f"b{mid[-8:]}", stream=settings.relay_stream
        )

        ids = await emit(db, mid, "charge.succeeded", 300)
        proc = _start_relay(database_url, nats_url, consumer_name, tmp_path / "relay1.log")
        try:
            deadline = time.monotonic() + 30
            while await _queued(db, consumer_name) > 200:
                assert time.monotonic() < deadline, "the relay published nothing"
                await asyncio.sleep(0.02)
            proc.send_signal(signal.SIGKILL)  # mid-stream, between batches or inside one
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        left = await _queued(db, consumer_name)
        assert 0 < left < 300
        seen_early = await _drain(first)  # a consumer reads while the relay is down

        ids += await emit(db, mid, "customer.updated", 20)
        proc = _start_relay(database_url, nats_url, consumer_name, tmp_path / "relay2.log")
        try:
            deadline = time.monotonic() + 30
            while await _queued(db, consumer_name):
                assert time.monotonic() < deadline, "the restarted relay did not finish"
                await asyncio.sleep(0.05)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        assert proc.returncode == 0

        for got in (Counter(seen_early + await _drain(first)), Counter(await _drain(second))):
            assert set(got) == set(ids)
            assert max(got.values()) == 1
    finally:
        await nc.close()


async def test_a_batch_published_but_not_marked_is_dropped_as_a_duplicate(
    db, merchant, nats_url, consumer_name
):
    """The relay's crash window: JetStream has the messages, PostgreSQL still has them queued.
    Republished with the same Nats-Msg-Id, they are not stored twice."""
    mid = merchant.merchant["id"]
    settings = get_settings()
    ids = await emit(db, mid, "payout.paid", 5)
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await relay.ensure_stream(js, settings)
        subject = f"{settings.relay_subject_prefix}.test.{mid}.payout.paid"
        sub = await js.pull_subscribe(subject, durable=f"c{mid[-8:]}", stream=settings.relay_stream)
        rows = await relay.take(db, consumer_name)
        assert sorted(r["id"] for r in rows) == sorted(ids)
        assert await relay.publish(js, rows, settings) == 0  # ...and the relay dies here
        assert await relay.take(db, consumer_name) == []  # still leased
        clock.advance(settings.relay_lease_seconds + 1)
        again = await relay.take(db, consumer_name)
        assert await relay.publish(js, again, settings) == 5  # all recognised as duplicates
        await relay.acknowledge(db, consumer_name, again)
        assert await _queued(db, consumer_name) == 0
        assert sorted(await _drain(sub)) == sorted(ids)
    finally:
        await nc.close()
