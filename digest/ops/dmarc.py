"""DMARC (RFC 7489) for the From domain: a record exists, and SPF or DKIM aligns with it.

The record is looked up at `_dmarc.<From domain>`, else at `_dmarc.<organisational
domain>` (the registrable domain under the public suffix list, which `publicsuffixlist`
ships, so nothing is fetched). A message passes DMARC when an authenticated identifier is
aligned with the From domain: the SPF-checked envelope domain or the DKIM `d=` domain,
equal to it (`aspf=s`/`adkim=s`) or of the same organisational domain (relaxed, the
default). Since 2024 Gmail and Yahoo want a record and an aligned pass from bulk senders.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import dns.resolver
from publicsuffixlist import PublicSuffixList

from digest.ops import resolve
from digest.ops.checks import Check, failed, passed, txt_record
from digest.ops.dkim import tags

NAME = "dmarc"
SUGGESTED = "v=DMARC1; p=none; adkim=r; aspf=r"


@functools.cache
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # about 0.15 s to read: once, and only when asked


def organisational(domain: str) -> str:
    """The registrable domain of `domain` (`news.example.co.uk` -> `example.co.uk`)."""
    domain = domain.lower().rstrip(".")
    return _suffixes().privatesuffix(domain) or domain


def aligned(identifier: str, from_domain: str, mode: str) -> bool:
    """RFC 7489 3.1: strict, the same domain; relaxed, the same organisational domain."""
    a, b = identifier.lower().rstrip("."), from_domain.lower().rstrip(".")
    return a == b if mode == "s" else organisational(a) == organisational(b)


@dataclass(frozen=True, slots=True)
class Policy:
    where: str  # the domain whose _dmarc record applies
    record: str
    tags: dict[str, str]
    policy: str  # p, or sp for a subdomain covered by its organisational domain's record

    def mode(self, tag: str) -> str:
        return "s" if self.tags.get(tag, "r").lower() == "s" else "r"


def find(resolver: dns.resolver.Resolver, domain: str) -> Policy | None:
    """The DMARC record that governs `domain` (its own, else its organisational domain's)."""
    org = organisational(domain)
    for where in dict.fromkeys([domain.lower(), org]):
        records = [r for r in resolve.txt(resolver, f"_dmarc.{where}") if _is_dmarc(r)]
        if len(records) == 1:
            found = tags(records[0])
            policy = found.get("p", "")
            if where != domain.lower():
                policy = found.get("sp", policy)
            return Policy(where, records[0], found, policy.lower())
    return None


def _is_dmarc(record: str) -> bool:
    return record.replace(" ", "").lower().startswith("v=dmarc1")


@dataclass(frozen=True, slots=True, kw_only=True)
class Authenticated:
    """What a receiver will have authenticated: the envelope domain when SPF passes, the
    signing domain when its DKIM record is right. `sign_as`: the DKIM record that would make
    DKIM align (our key published under the From domain), for the fix."""

    spf_domain: str
    spf_passes: bool
    dkim_domain: str | None
    dkim_passes: bool
    sign_as: str | None = None


def check_dmarc(resolver: dns.resolver.Resolver, from_domain: str, auth: Authenticated) -> Check:
    policy = find(resolver, from_domain)
    org = organisational(from_domain)
    if policy is None:
        return failed(
            NAME,
            f"neither {from_domain} nor {org} publishes a DMARC record; Gmail and Yahoo "
            "refuse or file bulk mail without one",
            f"publish {txt_record(f'_dmarc.{org}', SUGGESTED)}",
        )
    if policy.tags.get("p") is None:
        return failed(
            NAME,
            f"the DMARC record at _dmarc.{policy.where} has no p= tag, so receivers ignore it",
            f"publish {txt_record(f'_dmarc.{policy.where}', SUGGESTED)}",
        )
    aspf, adkim = policy.mode("aspf"), policy.mode("adkim")
    spf_aligned = auth.spf_passes and aligned(auth.spf_domain, from_domain, aspf)
    dkim_aligned = (
        auth.dkim_passes
        and auth.dkim_domain is not None
        and aligned(auth.dkim_domain, from_domain, adkim)
    )
    where = f"_dmarc.{policy.where} (p={policy.policy})"
    if spf_aligned or dkim_aligned:
        how = " and ".join(
            what
            for what, ok in (
                (f"SPF ({auth.spf_domain})", spf_aligned),
                (f"DKIM (d={auth.dkim_domain})", dkim_aligned),
            )
            if ok
        )
        return passed(NAME, f"DMARC at {where} aligns with {how} for From {from_domain}")
    return failed(
        NAME, _misaligned(from_domain, where, policy, auth), _fix(from_domain, policy, auth)
    )


def _misaligned(from_domain: str, where: str, policy: Policy, auth: Authenticated) -> str:
    spf = (
        f"SPF of {auth.spf_domain} "
        + ("passes but is not aligned" if auth.spf_passes else "does not pass")
        + f" (aspf={policy.mode('aspf')})"
    )
    if auth.dkim_domain is None:
        dkim = "nothing is DKIM-signed"
    else:
        dkim = (
            f"DKIM d={auth.dkim_domain} "
            + ("passes but is not aligned" if auth.dkim_passes else "does not pass")
            + f" (adkim={policy.mode('adkim')})"
        )
    outcome = {
        "reject": "receivers reject every message",
        "quarantine": "receivers file every message as spam",
    }.get(policy.policy, "the mail fails DMARC, and bulk mail that fails it is refused")
    return f"DMARC at {where} for From {from_domain}: {spf}, {dkim}: {outcome}"


def _fix(from_domain: str, policy: Policy, auth: Authenticated) -> str:
    relaxed = [
        (tag, identifier)
        for tag, identifier, ok in (
            ("aspf", auth.spf_domain, auth.spf_passes),
            ("adkim", auth.dkim_domain, auth.dkim_passes),
        )
        if ok
        and identifier is not None
        and policy.mode(tag) == "s"
        and aligned(identifier, from_domain, "r")
    ]
    if relaxed:  # strict alignment is what fails: relaxed would pass
        relaxed_tags = {**policy.tags, **{tag: "r" for tag, _ in relaxed}}
        loosened = "; ".join(f"{tag}={value}" for tag, value in relaxed_tags.items())
        return f"publish {txt_record(f'_dmarc.{policy.where}', loosened)} (relaxed alignment)"
    if auth.sign_as is not None:
        return f"sign as the From domain: set dkim.domain: {from_domain} and publish {auth.sign_as}"
    return (
        f"sign as the From domain: run `digest dkim keygen --domain {from_domain} --selector "
        "mail`, publish the record it prints and add its dkim: section to config.yaml (or set "
        f"bounces.return_path to an address at {from_domain} whose SPF permits the relay)"
    )
