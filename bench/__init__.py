"""Benchmarks (not imported by the server). Run ``python -m bench.ldap_bench``."""
