"""Purslane (kind ``wallet``): a wallet with redirect approval, Stripe's ``paypal`` payment
method type. ``mapper`` speaks its wire format, ``webhooks`` its signed notifications,
``connector`` puts them behind ``MethodConnector``."""

from kassa.connectors.wallet.connector import WalletConnector

__all__ = ["WalletConnector"]
