"""The composition root: everything that happens after a change, and every scheduled job.

Read this module to know what the service does beyond answering a request. Domain services
publish one typed event after they commit; the subscribers below run in the order listed.
Jobs run in the order listed too: first the ones that bring changes into force or move data,
then mail, and delivery last, so one ``consentry jobs run`` delivers what the others queued.

Nothing below ``api/service`` imports this module.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from api.consent import policy
from api.consent.events import ConsentChanged
from api.core.clock import Clock, SystemClock
from api.core.settings import Settings
from api.members import announcements, dormancy, mail
from api.members.events import ProfileChanged
from api.platform.events import EventBus, Subscriber
from api.platform.jobs import Job
from api.platform.runtime import Runtime
from api.rights import correction, erasure, legal_disclosure, processing_record, retention
from api.security.keys import KeyRing
from api.sharing import audits, duties, push, queue, revocation

__all__ = ["SUBSCRIBERS", "JOBS", "PROMPT_JOBS", "build_runtime", "with_settings"]

SUBSCRIBERS: dict[type, tuple[Subscriber, ...]] = {
    # A profile edit: partners granted a changed field get ``member.updated`` (or, once a
    # correction lifts a restriction, the record they missed); then a pending inaccuracy
    # report whose fields are all edited completes and sends ``member.correction``.
    ProfileChanged: (push.on_profile_changed, correction.on_profile_changed),
    # A consent given: partners whose scope the member enters get ``member.shared``.
    # A withdrawal: partners that received fields no longer granted get ``member.revoked``
    # (pull and the delivery bridge already stop at once: they re-check the grant every time).
    ConsentChanged: (push.on_consent_changed, revocation.on_consent_changed),
}

JOBS: tuple[Job, ...] = (
    Job("policy_in_force", policy.record_in_force),
    Job("partner_changes_in_force", push.bring_changes_into_force),
    Job("sharing_catch_up", push.catch_up),
    Job("dormancy", dormancy.dormancy),
    Job("retention_expiry", retention.retention_expiry),
    Job("request_deadlines", retention.request_deadlines),
    Job("history_purge", erasure.history_purge),
    Job("legal_disclosure_reviews", legal_disclosure.reviews),
    Job("announcements", announcements.fan_out),
    Job("deletion_duties", duties.deletion_duties),
    Job("partner_audits", audits.mail_overdue),
    Job("processing_record", processing_record.job),
    Job("send_mail", mail.send_mail, exclusive=False),
    Job("deliver_outbox", queue.deliver_outbox, exclusive=False),
)

# The worker runs these on every wake (a NOTIFY at commit, or in-process) and at least every
# ``--poll`` seconds; the others, which scan, every ``--interval`` seconds.
PROMPT_JOBS: tuple[str, ...] = ("deliver_outbox", "send_mail")


def build_runtime(settings: Settings | None = None, clock: Clock | None = None,
                  keys: KeyRing | None = None) -> Runtime:
    """The runtime with this composition's subscribers (settings from the environment,
    the system clock and the configured keys unless given)."""
    settings = settings or Settings.from_env()
    return Runtime(settings, clock or SystemClock(), keys or KeyRing.load(settings),
                   EventBus(SUBSCRIBERS))


def with_settings(rt: Runtime, **changes: Any) -> Runtime:
    """The same runtime with some settings changed (a second process, a test variant)."""
    return dataclasses.replace(rt, settings=dataclasses.replace(rt.settings, **changes),
                               extras={})
