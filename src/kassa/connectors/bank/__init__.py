"""Cindral Bank (kind ``bank``): ACH and SEPA direct debits. ``mapper`` speaks its wire format,
``webhooks`` its signed notifications, ``connector`` puts them behind ``MethodConnector``;
HTTP goes through ``connectors.jsonapi``."""

from kassa.connectors.bank.connector import BankConnector

__all__ = ["BankConnector"]
