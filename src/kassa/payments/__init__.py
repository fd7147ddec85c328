"""Payment intents, their attempts (charges) and refunds: the payment path of DESIGN.md §4."""
