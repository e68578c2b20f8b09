"""`digest doctor`: every check that can fail before a send, each one line.

The configuration (checked by the caller, digest.ops.settings.check_config), the database
(reachable, at the newest migration), the SMTP relay (reachable, a valid certificate, the
login accepted; no mail sent), SPF, DKIM and DMARC of the sending domains, the MX of the
bounce domain, and `web.base_url` over HTTPS with the clock of its server. Every name goes
through one resolver (`dns.nameservers`). A check that cannot be made (DNS did not answer)
fails: what cannot be shown to work may not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dns.resolver
from sqlalchemy.exc import SQLAlchemyError

from digest.errors import DigestError
from digest.links import is_loopback
from digest.ops import resolve
from digest.ops.checks import Check, Verdict, failed, passed, txt_record, warned
from digest.ops.dkim import check_dkim
from digest.ops.dmarc import Authenticated, check_dmarc
from digest.ops.mx import check_mx
from digest.ops.settings import DoctorSettings
from digest.ops.smtp import check_smtp
from digest.ops.spf import check_spf
from digest.ops.web import check_web

SPF_TEMPLATE = "v=spf1 ip4:<the address mail leaves from> ~all"


@dataclass(frozen=True, slots=True)
class Diagnosis:
    checks: list[Check]

    @property
    def exit_code(self) -> int:
        """2 when the configuration is invalid, 1 when any check fails, else 0."""
        if any(c.failed and c.name == "config" for c in self.checks):
            return 2
        return 1 if any(c.failed for c in self.checks) else 0

    @property
    def failing(self) -> list[Check]:
        return [c for c in self.checks if c.verdict == Verdict.FAIL]

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.exit_code == 0,
            "checks": [c.as_json() for c in self.checks],
        }


def diagnose(settings: DoctorSettings, config_check: Check) -> Diagnosis:
    """Run every check (`config_check`: the caller's verdict on the configuration)."""
    resolver = resolve.make_resolver(settings.nameservers)
    checks = [config_check, check_database(settings.database_url)]
    checks += check_smtp(resolver, settings.smtp)
    spf = _guarded("spf", lambda: [_spf(resolver, settings)])
    checks += spf
    dkim = _guarded("dkim", lambda: check_dkim(resolver, settings.dkim_domain, settings.dkim_keys))
    checks += dkim
    auth = Authenticated(
        spf_domain=settings.envelope_domain,
        spf_passes=all(c.verdict == Verdict.PASS for c in spf),
        dkim_domain=settings.dkim_domain if settings.dkim_keys else None,
        dkim_passes=bool(settings.dkim_keys) and all(c.verdict == Verdict.PASS for c in dkim),
        sign_as=_sign_as(settings),
    )
    checks += _guarded("dmarc", lambda: [check_dmarc(resolver, settings.from_domain, auth)])
    checks += _guarded(
        "mx", lambda: [c for c in [check_mx(resolver, settings.return_path)] if c is not None]
    )
    checks += check_web(resolver, settings.base_url, clock_skew=settings.clock_skew)
    return Diagnosis(checks)


def _guarded(name: str, run: Callable[[], Sequence[Check]]) -> list[Check]:
    try:
        return list(run())
    except resolve.LookupFailed as exc:
        return [failed(name, str(exc), "check dns.nameservers, or the DNS servers of the domain")]


def _spf(resolver: dns.resolver.Resolver, settings: DoctorSettings) -> Check:
    """SPF must permit the relay; with a relay on this machine (a local MTA), this machine's
    own name, which the mail leaves from."""
    relay = settings.smtp.host
    if is_loopback(relay):
        relay = settings.this_host
        found = [a for a in resolve.addresses(resolver, relay) if not is_loopback(a)]
        if not found:
            return warned(
                "spf",
                f"the relay is this machine, and its name ({relay}) gives no public address: "
                f"SPF of {settings.envelope_domain} must permit the address mail leaves from",
                "give this machine a name in DNS (its FQDN) or set smtp.host to the relay's "
                f"name; publish {txt_record(settings.envelope_domain, SPF_TEMPLATE)}",
            )
        return check_spf(resolver, settings.envelope_domain, relay, found, settings.this_host)
    found = resolve.addresses(resolver, relay)
    if not found:
        return failed(
            "spf",
            f"{relay} has no address in DNS, so its SPF cannot be checked",
            f"publish an A record for {relay}",
        )
    return check_spf(resolver, settings.envelope_domain, relay, found, settings.this_host)


def _sign_as(settings: DoctorSettings) -> str | None:
    """The DKIM record that would sign as the From domain with the first configured key."""
    if not settings.dkim_keys:
        return None
    from digest.delivery.dkim import dns_record, load_key

    key = settings.dkim_keys[0]
    try:
        private = load_key(key.path, settings.from_domain, key.selector, key.key).key
    except DigestError:
        return None
    return dns_record(key.selector, settings.from_domain, private)


def check_database(url: str) -> Check:
    from digest.store.database import connect, current_revision, head_revision

    try:
        database = connect(url)
    except DigestError as exc:
        return failed("database", exc.message, "check database.url")
    try:
        current = current_revision(database)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return failed(
            "database",
            f"cannot open the database: {reason}",
            "check database.url and that the server runs",
        )
    finally:
        database.dispose()
    head = head_revision()
    if current != head:
        return failed(
            "database",
            f"the database is at migration {current or 'none'}, not {head}",
            "run `digest db upgrade`",
        )
    return passed("database", f"the database is reachable and at the newest migration ({head})")
