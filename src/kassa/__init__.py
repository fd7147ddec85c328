"""Kassa: a self-hostable, Stripe-compatible payment platform."""
