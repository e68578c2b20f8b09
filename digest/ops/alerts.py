"""Alerts to the owner (`owner.email`): one short mail when something needs a person.

The causes: a scheduled send failed (or paused) or was missed; an issue's run ended with
deferred or unknown deliveries; an issue's complaint rate passed 0.1 % or its bounce rate
2 % (digest.store.report defines both); `digest doctor`, run daily by the scheduler,
fails. Never more than one mail per cause and day: the (cause, UTC day) row is claimed in
the database before the mail goes (digest.store.alerts), so a cause that repeats, in one
process or in several, mails once; a mail that could not be sent releases its claim.

The mail goes through the configured relay (any `Mailer`: digest.delivery.mailer's
`SmtpMailer`), outside the newsletter's ledger and audience: no delivery row, no subscriber,
no unsubscribe link, `Auto-Submitted: auto-generated` (RFC 3834) so that no auto-reply
answers it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from digest.delivery.mailer import Mailer, MailError
from digest.ops.checks import Check
from digest.ops.settings import AlertSettings
from digest.store import alerts as claims
from digest.store.database import Database
from digest.store.report import IssueReport

log = logging.getLogger("digest.ops.alerts")

COMPLAINT_LIMIT = 0.001  # 0.1 %: Gmail's advice (its hard limit is 0.3 %)
BOUNCE_LIMIT = 0.02  # 2 %


class Alerts:
    """Decides, deduplicates and mails the owner's alerts. Every method returns whether a
    mail went out."""

    def __init__(
        self,
        settings: AlertSettings,
        database: Database,
        mailer: Mailer,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.mailer = mailer
        self.clock = clock or (lambda: datetime.now(UTC))

    # -- the causes -----------------------------------------------------------------------------

    def send_failed(self, frequency: str, reason: str) -> bool:
        return self.alert(
            f"send-failed:{frequency}",
            f"the {frequency} send failed",
            f"The scheduled {frequency} send failed: {reason}\n\n"
            "`digest status` shows where it stands; `digest send` resumes it once the cause "
            "is fixed.",
        )

    def missed(self, job: str, due: datetime) -> bool:
        return self.alert(
            f"missed:{job}",
            f"a scheduled run was missed ({job})",
            f"The run of {job} due {due.isoformat()} was missed (the scheduler was not "
            "running, or was busy past the grace time) and skipped.\n\n`digest send` sends "
            "the issue now; `digest status` shows the next run.",
        )

    def issue_checked(self, report: IssueReport) -> list[bool]:
        """After a run of the issue, or new bounces: the causes an issue's figures can be."""
        return [self.unsettled(report), *self.rates(report)]

    def unsettled(self, report: IssueReport) -> bool:
        deferred, unknown = report.count("deferred"), report.count("unknown")
        if not deferred and not unknown:
            return False
        return self.alert(
            f"unsettled:{report.key}",
            f"issue {report.key} ended with {deferred} deferred and {unknown} unknown deliveries",
            f"Issue {report.key} ({report.status}) has {deferred} deferred deliveries (tried "
            f"again later, until smtp.retry_hours) and {unknown} unknown ones (in flight when a "
            "send stopped: they may have arrived; `digest send --resend-unknown "
            f"{report.key}` sends them again).",
        )

    def rates(self, report: IssueReport) -> list[bool]:
        sent = []
        complaints = report.complaint_rate
        if complaints is not None and complaints > COMPLAINT_LIMIT:
            sent.append(
                self.alert(
                    f"complaints:{report.key}",
                    f"issue {report.key}: complaint rate {complaints:.2%}",
                    f"Issue {report.key}: {report.returned.get('complaint', 0)} complaints for "
                    f"{report.count('sent')} delivered messages, {complaints:.2%} (the limit is "
                    f"{COMPLAINT_LIMIT:.1%}; Gmail files senders above 0.3 % as spam). Are the "
                    "subscribers ones who asked, and is the unsubscribe link easy to find?",
                )
            )
        bounces = report.bounce_rate
        if bounces is not None and bounces > BOUNCE_LIMIT:
            sent.append(
                self.alert(
                    f"bounces:{report.key}",
                    f"issue {report.key}: bounce rate {bounces:.2%}",
                    f"Issue {report.key}: a bounce rate of {bounces:.2%} (the limit is "
                    f"{BOUNCE_LIMIT:.0%}): {report.returned.get('hard', 0)} hard and "
                    f"{report.returned.get('soft', 0)} soft bounces came back, and "
                    f"{report.count('bounced')} addresses were refused. An old or bought list? "
                    "`digest report` has the figures.",
                )
            )
        return sent

    def doctor(self, failing: Sequence[Check]) -> bool:
        if not failing:
            return False
        names = ",".join(sorted(c.name for c in failing))
        lines = "\n".join(
            f"- {c.name}: {c.summary}" + (f"\n  → {c.fix}" if c.fix else "") for c in failing
        )
        return self.alert(
            f"doctor:{names}",
            f"digest doctor fails: {names.replace(',', ', ')}",
            f"The daily `digest doctor` found:\n\n{lines}\n\nRun `digest doctor` to check "
            "again after fixing.",
        )

    # -- sending, once a day per cause ----------------------------------------------------------

    def alert(self, cause: str, subject: str, body: str) -> bool:
        now = self.clock()
        day = now.astimezone(UTC).date().isoformat()
        if not claims.claim(self.database, cause, day, subject, now):
            return False
        try:
            self.mailer.send(self.message(subject, body, now))
        except MailError as exc:
            claims.release(self.database, cause, day)
            log.error("the alert to %s (%s) could not be sent: %s", self.settings.owner, cause, exc)
            return False
        log.info("alerted %s: %s", self.settings.owner, subject)
        return True

    def message(self, subject: str, body: str, now: datetime) -> EmailMessage:
        s = self.settings
        message = EmailMessage()
        message["From"] = s.sender
        message["To"] = s.owner
        message["Subject"] = f"[digest] {s.title}: {subject}"
        message["Date"] = format_datetime(now)
        message["Message-ID"] = f"<alert.{secrets.token_hex(12)}@{s.domain}>"
        message["Auto-Submitted"] = "auto-generated"
        message["X-Auto-Response-Suppress"] = "All"
        text = body.strip() + "\n\n-- \ndigest, for " + s.title + "\n"
        message.set_content(text, charset="utf-8", cte="7bit" if text.isascii() else "base64")
        return message
