"""Beltrane Gateway: the older-style, form-encoded card acquirer (short name ``acquirer_b``).

One endpoint takes ``TRXTYPE=S|A|D|C|V|I`` with decimal-string amounts and answers numeric
``RESULT`` codes; follow-ups are synchronous and reference ``ORIGID``.
"""

from kassa.sandbox.acquirer_b.service import BeltraneService

__all__ = ["BeltraneService"]
