"""Imports every capability module that registers hooks or jobs, so the app, the CLI and the
job runner all see the same behaviour. Each capability adds its module here.

Job order does not depend on this list: ``api.sharing`` moves ``deliver_outbox`` last, so one
``consentry jobs run`` first queues the events that changes coming into force cause, then
delivers them.
"""

# ruff: noqa: F401
from api import (
    delivery,  # partners: the deliver_outbox job
    erasure,  # data-subject rights
    mailer,  # the send_mail job
    policy,  # consent: the policy_in_force job
    retention,  # dormancy, retention expiry, deadline flags
    rights,  # correction hooks
    sharing,  # partners: push hooks and the partner_changes_in_force job
)
