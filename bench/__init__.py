"""Benchmark drivers for `make bench` (`python -m bench`)."""
