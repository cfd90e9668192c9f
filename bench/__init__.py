"""Benchmarks: the real app under uvicorn against plain reference endpoints, measured in one run.

``python -m bench`` (``make bench``) prints req/s, p50, p99 and the ratio to each scenario's
reference; ``--smoke`` runs tiny sizes in seconds (CI proves the bench still runs).
"""
