"""Cryptography and credentials: keys, envelope encryption, tokens, passwords, TOTP."""
