"""Errors of the merchants domain."""

from __future__ import annotations

from kassa.core.errors import AuthenticationFailed


class InvalidApiKey(AuthenticationFailed):
    def __init__(self, display: str) -> None:
        super().__init__(f"Invalid API Key provided: {display}", code="api_key_invalid")


class ExpiredApiKey(AuthenticationFailed):
    def __init__(self, display: str) -> None:
        super().__init__(f"Expired API Key provided: {display}", code="api_key_expired")
