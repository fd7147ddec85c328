"""Events: the outbox every state change writes to in its own transaction, ``/v1/events``,
webhook endpoints and their signed, retried delivery, and the relay to NATS JetStream
(docs/webhooks.md)."""
