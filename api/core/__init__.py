"""Foundations every layer may use: settings, the error tree, the clock, input validation, ordered ids."""
