"""Members: records and profile, sign-in and sessions, dormancy and the vault, notifications and mail."""
