"""Merchant accounts, their API keys and authentication."""
