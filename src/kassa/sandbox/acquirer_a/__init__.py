"""Arvona Checkout: the JSON card acquirer (short name ``acquirer_a``).

Authorisations answer at once; captures, refunds and cancels answer ``received`` and are
confirmed later by batched notifications, each item signed with HMAC-SHA256.
"""

from kassa.sandbox.acquirer_a.service import ArvonaService

__all__ = ["ArvonaService"]
