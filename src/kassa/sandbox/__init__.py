"""The simulated outside world: card acquirers, bank rails, 3-D Secure, a wallet and BNPL.

Everything here plays "someone else's system". It imports nothing from the rest of Kassa and
Kassa reaches it only over HTTP. Start it with ``kassa sandbox`` (see :mod:`kassa.sandbox.cli`)
and read ``docs/sandbox.md`` for each service's endpoints, credentials and test data.
"""
