"""PSP connectors: one interface (``base.Connector``), one folder per PSP, and routing."""
