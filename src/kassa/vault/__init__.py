"""The PCI zone: card numbers in, ``pm_…`` tokens out. See ``docs/vault.md``."""
