"""The process's keyring, built once from settings (``KASSA_KEK``, ``KASSA_KEK_ID``,
``KASSA_PREVIOUS_KEKS`` for rotation, ``KASSA_INDEX_KEY``)."""

from __future__ import annotations

import base64
from functools import cache

from kassa.config import get_settings
from kassa.core.crypto import Kek, Keyring


@cache
def keyring() -> Keyring:
    settings = get_settings()
    if not settings.kek or not settings.index_key:
        raise RuntimeError(
            "KASSA_KEK and KASSA_INDEX_KEY must be set (`kassa up` generates them for local runs)"
        )
    current = Kek.from_base64(settings.kek_id, settings.kek)
    keks = {current.key_id: current}
    for item in filter(None, settings.previous_keks.split(",")):
        key_id, _, value = item.partition(":")
        keks[key_id] = Kek.from_base64(key_id, value)
    return Keyring(current, keks, base64.b64decode(settings.index_key))
