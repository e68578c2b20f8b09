"""Each recipient's message: the right variant, their signed links, their envelope sender.

An issue is rendered once per (locale, category filter) — cached in memory and, for a real
issue, stored in the database, so a resumed send sends exactly the same digest — and then
personalised per recipient by splicing values into prepared bytes (`personalise`).

Click links (`tracking.clicks`): with `aggregate` each post link is rewritten before rendering
to `/c/TOKEN` naming the issue and the link, the same for everyone; with `personal` it is
rendered as a placeholder (digest.models.click_url) that becomes, per recipient, a `/c/TOKEN`
naming their delivery as well (a message without a delivery, a `--to` test copy, gets the
aggregate token).
"""

from __future__ import annotations

import html
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from digest.delivery.dkim import dkim_signer
from digest.delivery.personalise import Headers, MessageTemplate, Personal, mailto
from digest.delivery.settings import ComposeSettings, SenderSettings
from digest.inbound.verp import bounce_address, unsubscribe_mailto
from digest.models import Edition, Post, Recipient, Rendered, click_url
from digest.render.i18n import supported
from digest.store import ledger
from digest.store import recipients as audience
from digest.store.database import Database
from digest.store.tables import Issue
from digest.tokens import ClickTokens, Keyring, make_click_token, make_token

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass(frozen=True, slots=True)
class Composed:
    message: bytes
    message_id: str
    envelope_from: str


def envelope_sender(
    sender: SenderSettings, recipient: Recipient, keys: Keyring, issue_id: int | None
) -> str:
    """The SMTP envelope sender (MAIL FROM, the Return-Path) of one recipient's message.

    With `bounces.return_path` set, a delivery of a real issue gets its own VERP address,
    `bounces+TOKEN@domain` naming subscriber, issue and delivery, so a bounce that comes back
    minutes later names the delivery it is about (docs/bounces.md). A message outside the
    ledger (a `--to` test copy, a dry run) has no delivery to name and uses the From address.
    """
    return_path = sender.return_path
    if return_path and issue_id and recipient.delivery_id and recipient.subscriber_id:
        return bounce_address(
            return_path, keys, recipient.subscriber_id, issue_id, recipient.delivery_id
        )
    return sender.address


def mailto_uri(
    sender: SenderSettings, keys: Keyring, recipient: Recipient, issue_id: int | None, token: str
) -> str:
    """The List-Unsubscribe `mailto:`: `sender.unsubscribe_mailto` when set, else with
    `bounces.return_path` an address carrying an `unsubscribe` VERP token (so `digest
    bounces` recognises the request even when a client drops the subject), else From."""
    if sender.unsubscribe_mailto:
        return mailto(sender.unsubscribe_mailto, token)
    return_path = sender.return_path
    if return_path and recipient.subscriber_id:
        return unsubscribe_mailto(
            return_path, keys, recipient.subscriber_id, issue_id or None, token
        )
    return mailto(sender.address, token)


class Composer:
    """Builds each recipient's message; `None` when none of the issue's posts are in the
    recipient's categories (the delivery is then skipped)."""

    def __init__(
        self,
        settings: ComposeSettings,
        edition: Edition,
        *,
        issue_id: int | None,
        database: Database | None,
        now: datetime | None = None,
        test_copies: bool = False,
    ) -> None:
        self.settings = settings
        self.test_copies = test_copies
        self.edition = edition
        self.issue_id = issue_id
        self.database = database
        self.now = now
        self.keys = settings.keys
        sender = settings.sender
        # the longest link a recipient can get, as it appears in the HTML part
        most = 2**63 - 1
        longest = make_token(self.keys, "preferences", most, most, "x" * 16)
        click = make_click_token(self.keys, most, most, most)
        self.headers = Headers(
            sender=sender.header,
            list_id=sender.list_id,
            reply_to=sender.reply_to,
            link_room=max(
                len(html.escape(f"{settings.web_base_url}/{path}").encode())
                for path in (f"p/{longest}", f"c/{click}")
            ),
        )
        self.web = settings.web_base_url
        self.domain = sender.domain
        self.signer = dkim_signer(settings.dkim)
        self._rendered: dict[tuple[str, str], Rendered | None] = {}
        self._templates: dict[tuple[str, str, bool], MessageTemplate | None] = {}
        self._clicks = ClickTokens(self.keys, issue_id) if issue_id else None

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
        edition = replace(self.edition, posts=self._tracked(posts))
        if self.database is None or self.issue_id is None:
            from digest.render.edition import render  # Jinja, MJML, premailer: only to render

            return render(self.settings.render, edition, locale)
        issue_id, settings = self.issue_id, self.settings.render

        def stored(session: Session) -> Rendered:
            issue = session.get(Issue, issue_id)
            assert issue is not None
            rendered = ledger.stored_variant(session, issue, locale, key)
            if rendered is None:  # a sending process reads the variants stored before it
                from digest.render.edition import render

                rendered = ledger.keep_variant(
                    session, issue, key, render(settings, edition, locale)
                )
            return rendered

        # run again if the database goes in the middle (a restart as a worker starts): the
        # second run finds the variant the first may have stored
        return self.database.run_session(stored)

    def _tracked(self, posts: tuple[Post, ...]) -> tuple[Post, ...]:
        """With `tracking.clicks` on, each post's link goes through `/c/TOKEN`, naming the
        issue and the post's index among the issue's posts (whatever the variant's filter).
        In aggregate mode that is the same bytes for every recipient, so the budget
        (digest.render.budget) measures them as sent and DKIM signs them like any other text;
        with `personal` the link is a placeholder for the recipient's own token, which the
        budget counts at its longest and `personalise` fills in. Only post links change:
        never the unsubscribe, preferences or archive links, nor List-Unsubscribe."""
        if self.settings.clicks == "off" or not self.issue_id:
            return posts
        index = {post.id: number for number, post in enumerate(self.edition.posts)}
        if self.settings.clicks == "personal":
            return tuple(replace(post, url=click_url(index[post.id])) for post in posts)
        return tuple(
            replace(
                post,
                url=f"{self.web}/c/{make_click_token(self.keys, self.issue_id, index[post.id])}",
            )
            for post in posts
        )

    def __call__(
        self, recipient: Recipient, eight_bit: bool = True, wire: bool = False
    ) -> Composed | None:
        locale = supported(recipient.locale, self.settings.render.site.locale)
        template = self.template(locale, recipient.categories, eight_bit)
        if template is None:
            return None
        issue_id = self.issue_id or 0
        who, bound = recipient.subscriber_id, recipient.token_key
        unsubscribe = make_token(self.keys, "unsubscribe", who, issue_id, bound)
        preferences = make_token(self.keys, "preferences", who, issue_id, bound)
        message_id = f"<digest.{self.edition.key}.{recipient.subscriber_id}@{self.domain}>"
        if self.test_copies:  # each `--to` copy is a message of its own, never a duplicate
            message_id = f"<digest.{self.edition.key}.test.{secrets.token_hex(8)}@{self.domain}>"
        timestamp = int(self.now.timestamp()) if self.now is not None else None
        click_urls = None
        if template.links:
            assert self._clicks is not None  # links are tracked only for a real issue
            tokens = self._clicks.links(template.links, recipient.delivery_id or None)
            click_urls = {link: f"{self.web}/c/{token}" for link, token in tokens.items()}
        message = template.build(
            Personal(
                email=recipient.email,
                name=recipient.name,
                message_id=message_id,
                date=self.now or datetime.now(UTC),
                unsubscribe_url=f"{self.web}/u/{unsubscribe}",
                preferences_url=f"{self.web}/p/{preferences}",
                mailto=mailto_uri(
                    self.settings.sender, self.keys, recipient, self.issue_id, unsubscribe
                ),
                click_urls=click_urls,
            ),
            self.signer,
            timestamp,
            wire=wire,
        )
        sender = envelope_sender(self.settings.sender, recipient, self.keys, self.issue_id)
        return Composed(message, message_id, sender)


def make_composer(settings: ComposeSettings, database: Database, issue_id: int) -> Composer:
    """A composer for a real issue (module-level, so sending processes can be given it)."""

    def read(session: Session) -> Edition:
        issue = session.get(Issue, issue_id)
        assert issue is not None
        return ledger.edition_of(issue)

    edition = database.run_session(read)  # a restart as a worker starts is waited out
    return Composer(settings, edition, issue_id=issue_id, database=database)


def prepare_variants(settings: ComposeSettings, database: Database, issue_id: int) -> None:
    """Render every variant the issue still needs, before sending processes start, so they
    read stored variants instead of racing to render and store the same one."""
    load_variants(make_composer(settings, database, issue_id), database, issue_id)


def load_variants(composer: Composer, database: Database, issue_id: int) -> None:
    """Load into `composer` every variant the issue's queue needs (rendered and stored first
    when missing), so that composing those messages reads no database: one that goes away in
    the middle of a send holds up no message on the wire."""

    def read(session: Session) -> list[tuple[str | None, tuple[str, ...] | None]]:
        issue = session.get(Issue, issue_id)
        assert issue is not None
        return audience.queued_variants(session, issue)

    needs = database.run_session(read)
    for locale, categories in needs:
        composer.template(supported(locale, composer.settings.render.site.locale), categories)
