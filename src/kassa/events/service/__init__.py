"""The events domain's services. Other domains call ``emit`` (inside their own transaction);
everything else here serves the events and webhook endpoint routes, the worker and the CLI.

- ``outbox``: emit, list and retrieve events, retention, outbox consumers
- ``endpoints``: webhook endpoint CRUD, secret rotation, replay, the delivery log
- ``delivery``: dispatch, claim, send and record deliveries (``deliver_due``, ``Pump``)
- ``relay``: the NATS JetStream relay
"""

from kassa.events.service.outbox import (
    RETENTION,
    emit,
    emit_many,
    list_events,
    prune,
    register_consumer,
    retrieve_event,
    unregister_consumer,
)

__all__ = [
    "RETENTION",
    "emit",
    "emit_many",
    "list_events",
    "prune",
    "register_consumer",
    "retrieve_event",
    "unregister_consumer",
]
