"""Events: the outbox every state change writes to in its own transaction, and ``/v1/events``."""
