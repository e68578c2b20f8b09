"""The one place that knows the order of the steps: sources -> posts -> issue -> ...

Commands, the web app and the scheduler call these functions; none of them re-implements a step.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from digest.config import Config
from digest.delivery.dkim import dkim_signer
from digest.delivery.engine import Composed, SmtpSettings, Stoppable, Summary
from digest.delivery.personalise import Headers, MessageTemplate, Personal, mailto
from digest.delivery.workers import deliver, process_count
from digest.errors import DigestError
from digest.excerpt import excerpt_for
from digest.i18n import supported
from digest.issue import newest_first, period_key, status_of
from digest.models import Candidate, Edition, Recipient, Rendered, SourceResult
from digest.render import render
from digest.sources import read_posts
from digest.store import Database, Issue, ledger
from digest.tokens import keyring, make_token


@dataclass(slots=True)
class Gathered:
    """Every post read, with its verdict and excerpt, plus what the sources reported."""

    candidates: list[Candidate] = field(default_factory=list)
    source: SourceResult = field(default_factory=SourceResult)

    @property
    def new(self) -> list[Candidate]:
        return [c for c in self.candidates if c.status == "new"]


def gather(
    config: Config,
    *,
    sent: Collection[str] = frozenset(),
    now: datetime | None = None,
    lookback_days: int | None = None,
) -> Gathered:
    """Read the sources and judge every post against what was sent and the current time."""
    now = now or datetime.now(UTC)
    source = read_posts(config)
    candidates = [
        Candidate(
            post=post,
            status=status_of(post, sent=sent, now=now, lookback_days=config.digest.lookback_days),
            excerpt=excerpt_for(post, config),
        )
        for post in newest_first(source.posts)
    ]
    return Gathered(candidates=candidates, source=source)


def next_edition(
    gathered: Gathered, config: Config, now: datetime | None = None, frequency: str | None = None
) -> Edition:
    """The edition the next send would make from what `gather` found."""
    now = now or datetime.now(UTC)
    return Edition(
        key=period_key(now, frequency or config.schedule.frequency, config.schedule_tz),
        date=now,
        posts=tuple(c.post for c in gathered.new),
    )


# -- sending ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Plan:
    """What `digest send` is about to do: resume an issue, or start one for an edition."""

    edition: Edition
    frequency: str
    issue: Issue | None = None  # None until created (and never created by a dry run)
    resumed: bool = False
    recovered_unknown: int = 0


PERIOD_DAYS = {"daily": 1, "weekly": 7, "monthly": 31}


class NothingToSend(Exception):
    """No unfinished issue and nothing new: the message says why (exit code 0)."""


def plan_send(
    config: Config,
    database: Database,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    frequency: str | None = None,
) -> Plan:
    """Resume the unfinished issue, else make an edition of the new posts (DESIGN.md §4).

    Each frequency is its own track: a monthly issue covers what no monthly issue covered.
    """
    now = now or datetime.now(UTC)
    frequency = frequency or config.schedule.frequency
    with database.session() as session:
        unfinished = ledger.unfinished_issue(session, frequency)
        if unfinished is not None:
            recovered = 0 if dry_run else ledger.recover(session, unfinished)
            return Plan(ledger.edition_of(unfinished), frequency, unfinished, True, recovered)
        sent = ledger.sent_post_ids(session, frequency)
    lookback = config.digest.lookback_days
    if lookback and frequency != config.schedule.frequency:
        lookback = max(lookback, PERIOD_DAYS[frequency] + 7)
    gathered = gather(config, sent=sent, now=now, lookback_days=lookback)
    if gathered.source.failures:
        raise DigestError(gathered.source.failures[0])
    if not gathered.new:
        raise NothingToSend("Nothing new since the last digest: nothing to send.")
    edition = next_edition(gathered, config, now, frequency)
    with database.session() as session:
        existing = ledger.issue_by_key(session, edition.key)
    if existing is not None:
        raise NothingToSend(
            f"The digest for {edition.key} was already sent; the {len(edition.posts)} new "
            "posts will be in the next one."
        )
    return Plan(edition, frequency)


def start_issue(config: Config, database: Database, plan: Plan) -> Issue:
    """Create the planned issue (or return the resumed one), rendering its default variant
    first so that a broken template fails before anything is recorded."""
    config.check_sendable()
    if plan.issue is not None:
        return plan.issue
    rendered = render(config, plan.edition)
    with database.session() as session:
        issue = ledger.create_issue(
            session,
            plan.edition,
            frequency=plan.frequency,
            default_frequency=config.schedule.frequency,
        )
        ledger.store_variant(session, issue, "", rendered)
    plan.issue = issue
    return issue


class Composer:
    """Builds each recipient's message: one rendering per (locale, category filter), cached
    in memory and, for a real issue, in the database so that a resumed send is identical."""

    def __init__(
        self,
        config: Config,
        edition: Edition,
        *,
        issue_id: int | None,
        database: Database | None,
        now: datetime | None = None,
    ) -> None:
        self.config = config
        self.edition = edition
        self.issue_id = issue_id
        self.database = database
        self.now = now
        self.keys = keyring(config)
        self.headers = Headers(
            sender=config.sender.from_,
            list_id=config.sender.list_id or _list_id(config),
            reply_to=config.sender.reply_to,
        )
        self.mailto = config.sender.unsubscribe_mailto or config.sender.address
        self.web = config.web.base_url
        self.domain = config.sender.domain
        self.signer = dkim_signer(config)
        self._rendered: dict[tuple[str, str], Rendered | None] = {}
        self._templates: dict[tuple[str, str, bool], MessageTemplate | None] = {}

    def template(
        self, locale: str, categories: tuple[str, ...] | None, eight_bit: bool = True
    ) -> MessageTemplate | None:
        key = (locale, ledger.filter_key(categories), eight_bit)
        if key not in self._templates:
            if key[:2] not in self._rendered:
                self._rendered[key[:2]] = self._load(locale, categories, key[1])
            rendered = self._rendered[key[:2]]
            self._templates[key] = (
                None
                if rendered is None
                else MessageTemplate(rendered, self.headers, eight_bit=eight_bit)
            )
        return self._templates[key]

    def _load(self, locale: str, categories: tuple[str, ...] | None, key: str) -> Rendered | None:
        posts = self.edition.posts
        if categories:
            wanted = set(categories)
            posts = tuple(p for p in posts if wanted & set(p.categories))
            if not posts:
                return None
        edition = replace(self.edition, posts=posts)
        if self.database is None or self.issue_id is None:
            return render(self.config, edition, locale)
        with self.database.session() as session:
            issue = session.get(Issue, self.issue_id)
            assert issue is not None
            rendered = ledger.stored_variant(session, issue, locale, key)
            if rendered is None:
                rendered = render(self.config, edition, locale)
                ledger.store_variant(session, issue, key, rendered)
        return rendered

    def __call__(
        self, recipient: Recipient, eight_bit: bool = True, wire: bool = False
    ) -> Composed | None:
        locale = supported(recipient.locale, self.config.site.locale)
        template = self.template(locale, recipient.categories, eight_bit)
        if template is None:
            return None
        issue_id = self.issue_id or 0
        unsubscribe = make_token(self.keys, "unsubscribe", recipient.subscriber_id, issue_id)
        preferences = make_token(self.keys, "preferences", recipient.subscriber_id, issue_id)
        message_id = f"<digest.{self.edition.key}.{recipient.subscriber_id}@{self.domain}>"
        timestamp = int(self.now.timestamp()) if self.now is not None else None
        message = template.build(
            Personal(
                email=recipient.email,
                name=recipient.name,
                message_id=message_id,
                date=self.now or datetime.now(UTC),
                unsubscribe_url=f"{self.web}/u/{unsubscribe}",
                preferences_url=f"{self.web}/p/{preferences}",
                mailto=mailto(self.mailto, unsubscribe),
            ),
            self.signer,
            timestamp,
            wire=wire,
        )
        return Composed(message, message_id)


def _list_id(config: Config) -> str:
    host = config.site.base_url.split("://", 1)[-1].split("/", 1)[0].split(":")[0]
    return f"{config.site.title} <digest.{host}>"


def audience_of(config: Config, database: Database, plan: Plan) -> list[Recipient]:
    """Who a dry run writes for: the queue of a resumed issue, else every active subscriber."""
    with database.session() as session:
        if plan.issue is not None:
            return ledger.pending_recipients(session, plan.issue)
        return ledger.audience_recipients(session, plan.frequency, config.schedule.frequency)


def smtp_settings(config: Config) -> SmtpSettings:
    config.check_sendable()
    smtp = config.smtp
    return SmtpSettings(
        host=smtp.host,
        port=smtp.port,
        security=smtp.security,
        username=smtp.username,
        password=config.smtp_password(),
        timeout=smtp.timeout,
        connections=smtp.connections,
        messages_per_connection=smtp.messages_per_connection,
        rate_per_second=smtp.rate_per_second,
        rate_per_hour=smtp.rate_per_hour,
        retries=smtp.retries,
        retry_delay=smtp.retry_delay,
        max_consecutive_failures=smtp.max_consecutive_failures,
        ca_file=str(config.path(smtp.ca_file)) if smtp.ca_file else None,
        verify_tls=smtp.verify_tls,
        envelope_from=config.sender.address,
    )


def make_composer(config: Config, database: Database, issue: Issue) -> Composer:
    """A composer for a real issue (module-level, so sending processes can be given it)."""
    return Composer(config, ledger.edition_of(issue), issue_id=issue.id, database=database)


def prepare_variants(config: Config, database: Database, issue: Issue) -> None:
    """Render every (locale, categories) variant the queue needs, before processes start."""
    composer = make_composer(config, database, issue)
    with database.session() as session:
        needs = ledger.queued_variants(session, issue)
    for locale, categories in needs:
        composer.template(supported(locale, config.site.locale), categories)


def run_send(
    config: Config,
    database: Database,
    issue: Issue,
    on_progress: Callable[[Summary], None] | None = None,
    *,
    cancel: Stoppable | None = None,
    processes: int | None = None,
) -> Summary:
    """Deliver the issue's queue; finish it, or pause it with the reason."""
    with database.session() as session:
        queued = ledger.remaining(session, issue)
    count = processes if processes is not None else process_count(config, queued)
    if count > 1:
        prepare_variants(config, database, issue)
    summary = deliver(
        config,
        database,
        issue,
        smtp_settings(config),
        make_composer,
        processes=count,
        on_progress=on_progress,
        cancel=cancel,
    )
    with database.session() as session:
        current = session.get(Issue, issue.id)
        assert current is not None
        if summary.paused:
            ledger.pause(session, current, summary.paused)
        elif ledger.remaining(session, current) == 0:
            ledger.finish(session, current)
    return summary
