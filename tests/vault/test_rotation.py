"""``kassa vault rotate-kek`` end to end, on a database of its own (the session's API server
only knows the session KEK, so rotating the shared database would blind it)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest

from kassa.core import migrate
from kassa.core.crypto import Kek, Keyring, generate_key, wrapped_by
from kassa.core.db import Database
from kassa.core.keyring import keyring
from kassa.vault import service as vault
from kassa.vault.schemas import PaymentMethodCreate
from tests.factories import new_merchant
from tests.vault.conftest import caller, card

NUMBERS = ["4242424242424242", "5555555555554444", "378282246310005", "4000002760003184"]


@pytest.fixture(scope="module")
def rotation_dsn(pg_cluster, database_url) -> str:
    pg_cluster.create_database("vault_rotation")
    dsn = pg_cluster.dsn("vault_rotation")
    migrate.upgrade(dsn)
    return dsn


def _rotate(dsn: str, kek: str, kek_id: str, previous: str, batch_size: int = 2):
    env = {
        **os.environ,
        "KASSA_DATABASE_URL": dsn,
        "KASSA_KEK": kek,
        "KASSA_KEK_ID": kek_id,
        "KASSA_PREVIOUS_KEKS": previous,
    }
    return subprocess.run(
        [sys.executable, "-m", "kassa", "vault", "rotate-kek", "--json"]
        + ["--batch-size", str(batch_size)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


async def test_rotate_kek_rewraps_every_data_key(rotation_dsn):
    old = keyring().current
    db = await Database.connect(rotation_dsn, 1, 4)
    try:
        created: dict[str, str] = {}
        for _m in range(2):  # several merchants, several batches each
            mid = (await new_merchant(db)).merchant["id"]
            for i, number in enumerate(NUMBERS):
                extra = {"billing_details": {"name": f"Holder {i}"}} if i % 2 else {}
                params = PaymentMethodCreate.model_validate(card(number, cvc=None, **extra))
                pm = await vault.create_payment_method(db, caller(mid), params)
                created[pm["id"]] = number
        async with db.connection() as conn:
            before = {
                r["id"]: r for r in await conn.fetch("SELECT id, pan, pan_key FROM payment_methods")
            }
        assert {wrapped_by(bytes(r["pan_key"])) for r in before.values()} == {old.key_id}

        new_key = generate_key()
        previous = f"{old.key_id}:{base64.b64encode(old.key).decode()}"
        result = _rotate(rotation_dsn, new_key, "k2", previous)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report == {
            "kek_id": "k2",
            "rewrapped": len(created),
            "already_current": 0,
            "unknown_kek": {},
        }

        # Only the new KEK known: every number and billing record still opens.
        k2 = Kek.from_base64("k2", new_key)
        only_new = Keyring(k2, {"k2": k2}, keyring().index_key)
        async with db.connection() as conn:
            rows = await conn.fetch("SELECT * FROM payment_methods")
        assert len(rows) == len(created)
        for row in rows:
            assert row["kek_id"] == "k2"
            assert wrapped_by(bytes(row["pan_key"])) == "k2"
            assert bytes(row["pan"]) == bytes(before[row["id"]]["pan"])  # ciphertext untouched
            assert bytes(row["pan_key"]) != bytes(before[row["id"]]["pan_key"])
            pan = only_new.open_record(row["id"], bytes(row["pan_key"]), bytes(row["pan"]))
            assert pan.decode() == created[row["id"]]
            if row["billing_key"] is not None:
                assert wrapped_by(bytes(row["billing_key"])) == "k2"
                billing = only_new.open_record(
                    f"{row['id']}/billing_details",
                    bytes(row["billing_key"]),
                    bytes(row["billing_details"]),
                )
                assert b"Holder" in billing
        assert sum(r["billing_key"] is not None for r in rows) == len(created) // 2

        # Idempotent: a second run skips everything.
        again = _rotate(rotation_dsn, new_key, "k2", previous)
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["rewrapped"] == 0
        assert json.loads(again.stdout)["already_current"] == len(created)

        # A KEK that cannot unwrap what is stored: counted, untouched, exit status 1.
        blind = _rotate(rotation_dsn, generate_key(), "k3", "")
        assert blind.returncode == 1
        assert json.loads(blind.stdout)["unknown_kek"] == {"k2": len(created)}
        async with db.connection() as conn:
            assert await conn.fetchval(
                "SELECT count(*) FROM payment_methods WHERE kek_id = 'k2'"
            ) == len(created)

        human = subprocess.run(
            [sys.executable, "-m", "kassa", "vault", "rotate-kek"],
            env={
                **os.environ,
                "KASSA_DATABASE_URL": rotation_dsn,
                "KASSA_KEK": new_key,
                "KASSA_KEK_ID": "k2",
            },
            capture_output=True,
            text=True,
            check=True,
        )
        assert "0 re-wrapped" in human.stdout
        assert new_key not in human.stdout + human.stderr
    finally:
        await db.close()
