"""Imports every capability module that registers hooks or jobs, so the app, the CLI and the
job runner all see the same behaviour. Each capability adds one import line here."""

# ruff: noqa: F401
