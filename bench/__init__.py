"""Benchmarks of superserver against its peers: ``python -m bench`` (bench/README.md)."""
