"""Imports every capability module that registers hooks or jobs, so the app, the CLI and the
job runner all see the same behaviour. Each capability adds one import line here."""

# ruff: noqa: F401
from api import policy  # issue 3: the policy_in_force job
from api import delivery  # issue 4: the deliver_outbox job
from api import erasure, mailer, retention, rights  # data-subject rights, dormancy, mail
from api import sharing  # issue 4: push hooks and the partner_changes_in_force job
