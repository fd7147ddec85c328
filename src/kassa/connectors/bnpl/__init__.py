"""Deferro (kind ``bnpl``): buy now, pay later with an approval redirect and deferred
settlement, Stripe's ``klarna`` payment method type. ``mapper`` speaks its wire format,
``webhooks`` its signed notifications, ``connector`` puts them behind ``MethodConnector``."""

from kassa.connectors.bnpl.connector import BnplConnector

__all__ = ["BnplConnector"]
