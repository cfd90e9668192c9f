"""Consent (Art. 1, 3, 8): purposes, policy versions, consent events with signed receipts, cookie choices."""
