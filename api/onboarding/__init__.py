"""Onboarding members in bulk from another system (``consentry import members``):
:mod:`formats` reads the file, :mod:`rows` judges each row, :mod:`importer` writes them."""
