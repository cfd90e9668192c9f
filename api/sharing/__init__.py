"""Outsourcing partners (Art. 6): registry, grants, push through the outbox, pull, the ledger."""
