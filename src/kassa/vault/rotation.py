"""KEK rotation for the vault (``kassa vault rotate-kek``): re-wrap every payment method's data
keys under the current key-encryption key."""

from __future__ import annotations

from dataclasses import dataclass

from kassa.core.crypto import Keyring
from kassa.core.db import Database
from kassa.core.keyring import keyring
from kassa.vault import repository
from kassa.vault.sealing import under_current_kek


@dataclass(frozen=True)
class RotationReport:
    """What a ``rotate_kek`` run did."""

    kek_id: str
    rewrapped: int  # rows whose data keys it re-wrapped under ``kek_id``
    already_current: int  # rows already wrapped by ``kek_id`` when it started (skipped)
    unknown_kek: dict[str, int]  # rows wrapped by a KEK it was not given, by KEK id

    @property
    def ok(self) -> bool:
        return not self.unknown_kek


async def rotate_kek(
    db: Database, *, batch_size: int = 500, ring: Keyring | None = None
) -> RotationReport:
    """Re-wrap every payment method's data keys under the current KEK (``KASSA_KEK``,
    ``KASSA_KEK_ID``), unwrapping them with the previous ones (``KASSA_PREVIOUS_KEKS``).

    Ciphertexts are untouched, only the small wrapped keys change, so this is quick and safe
    while the API serves: each batch is one short transaction over one merchant's rows (no
    transaction spans two merchants). Idempotent: rows already wrapped by the current KEK are
    skipped, so an interrupted run is finished by running it again. Rows wrapped by a KEK it
    was not given are counted in ``unknown_kek`` and left alone."""
    ring = ring or keyring()
    current = ring.current.key_id
    previous = sorted(k for k in ring.all if k != current)
    async with db.connection() as conn:
        before = await repository.count_by_kek(conn)
        merchants = await repository.merchants_with_keys_not_under(conn, current)
    rewrapped = 0
    for merchant_id in merchants:
        while True:
            async with db.transaction() as conn:
                rows = await repository.lock_batch_wrapped_by(
                    conn, merchant_id, previous, batch_size
                )
                if rows:
                    await repository.rewrap(
                        conn,
                        merchant_id,
                        [r["id"] for r in rows],
                        [
                            # Redirect methods (paypal, klarna) seal no number.
                            None
                            if r["pan_key"] is None
                            else under_current_kek(bytes(r["pan_key"]), ring)
                            for r in rows
                        ],
                        [
                            None
                            if r["billing_key"] is None
                            else under_current_kek(bytes(r["billing_key"]), ring)
                            for r in rows
                        ],
                        current,
                    )
            rewrapped += len(rows)
            if len(rows) < batch_size:
                break
    async with db.connection() as conn:
        after = await repository.count_by_kek(conn)
    unknown = {k: n for k, n in sorted(after.items()) if k not in ring.all}
    return RotationReport(current, rewrapped, before.get(current, 0), unknown)
