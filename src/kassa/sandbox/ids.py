"""Identifiers in each service's own style, deterministic for a given seed."""

from __future__ import annotations

import math
import random

BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"


class IdFactory:
    """Makes unique, random-looking ids of a fixed width from a seeded walk.

    Id ``n`` is ``start + n * step`` modulo ``len(alphabet) ** width`` with ``step`` coprime
    to the modulus, so no id repeats within the modulus and the sequence depends only on the
    seed.
    """

    def __init__(self, seed: str, width: int, alphabet: str = BASE36, prefix: str = "") -> None:
        rng = random.Random(seed)
        self._alphabet = alphabet
        self._width = width
        self._prefix = prefix
        self._modulus = len(alphabet) ** width
        self._value = rng.randrange(self._modulus)
        step = rng.randrange(self._modulus // 3, self._modulus)
        while math.gcd(step, self._modulus) != 1:
            step += 1
        self._step = step

    def next(self) -> str:
        """Return the next id."""
        self._value = (self._value + self._step) % self._modulus
        n = self._value
        base = len(self._alphabet)
        chars = []
        for _ in range(self._width):
            n, r = divmod(n, base)
            chars.append(self._alphabet[r])
        return self._prefix + "".join(reversed(chars))
