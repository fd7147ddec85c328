"""The payments service: intents (``intents``), the PSP attempt saga (``attempts``), captures,
cancels and refunds, and the money they move (``money``). Re-exported here."""
