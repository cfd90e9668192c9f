"""The platform the domains run on: runtime, stores, scheduled jobs, audit trail, rate limits."""
