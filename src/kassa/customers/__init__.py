"""Customers, with their personal data encrypted at rest."""
