"""SPF of the envelope domain, evaluated as a receiver does (RFC 7208) with pyspf.

pyspf is the reference implementation the RFC's test suite came with: include and
redirect, macros, the limit of ten DNS-querying terms (4.6.4) and of two void lookups. It
is asked twice: once for each address the relay sends from (the verdict a receiver would
reach for our mail), and once in its "list" mode, which matches no address and so walks the
whole record (a record over the limit is `permerror` for every receiver that walks that far,
whoever sent). Its DNS goes through our resolver (digest.ops.resolve): pyspf looks names up
through one module-level function, replaced here by one that asks the resolver the current
check set (a context variable), or pyspf's own when none is set.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

import dns.resolver
import spf as pyspf

from digest.ops import resolve
from digest.ops.checks import Check, failed, passed, txt_record

NAME = "spf"
MAX_RECORD = 450  # a flattened record longer than this is not offered (UDP answer size)

_resolver: ContextVar[dns.resolver.Resolver | None] = ContextVar("spf_resolver", default=None)
_system_lookup = pyspf.DNSLookup


def _lookup(name: str, qtype: str, strict: Any = True, timeout: float = 30) -> list[Any]:
    """pyspf's DNS interface: [((name, type), value)], [] for no record, TempError when DNS
    fails."""
    resolver = _resolver.get()
    if resolver is None:
        return list(_system_lookup(name, qtype, strict, timeout))
    try:
        records = resolve.query(resolver, name, qtype)
    except resolve.LookupFailed as exc:
        raise pyspf.TempError(f"DNS {exc}") from None
    found: list[Any] = []
    for record in records:
        data: Any = record
        if qtype in ("A", "AAAA"):
            found.append(((name, qtype), data.address))
        elif qtype == "MX":
            found.append(((name, qtype), (data.preference, data.exchange)))
        elif qtype == "PTR":
            found.append(((name, qtype), data.target.to_text(True)))
        elif qtype in ("TXT", "SPF"):
            found.append(((name, qtype), data.strings))
    return found


pyspf.DNSLookup = _lookup


class _Query(pyspf.query):  # type: ignore[misc]
    """pyspf's query, its list mode mended: on Python 3's `ipaddress` it asks a network for
    an `.ip` it does not have (pyspf 2.0.14) and fails on the first ip4: term."""

    def cidrmatch(self, ipaddrs: Any, n: int) -> bool:
        if isinstance(self.iplist, bool):
            return bool(super().cidrmatch(ipaddrs, n))
        for address in ipaddrs:
            try:
                self.iplist.append(ipaddress.ip_network(address).supernet(new_prefix=n))
            except ValueError as exc:
                raise pyspf.PermError(str(exc)) from None
        return False


def is_spf(record: str) -> bool:
    return record.lower() == "v=spf1" or record.lower().startswith("v=spf1 ")


def check_spf(
    resolver: dns.resolver.Resolver,
    domain: str,
    relay: str,
    addresses: Sequence[str],
    helo: str,
) -> Check:
    """Whether the SPF of `domain` (the envelope sender's) permits `relay` at each of its
    `addresses`, within RFC 7208's lookup limits; a failure names the record to publish."""
    token = _resolver.set(resolver)
    try:
        return _check(resolver, domain, relay, list(addresses), helo)
    finally:
        _resolver.reset(token)


def _check(
    resolver: dns.resolver.Resolver, domain: str, relay: str, addresses: list[str], helo: str
) -> Check:
    records = [r for r in resolve.txt(resolver, domain) if is_spf(r)]
    if not records:
        return failed(
            NAME,
            f"{domain} publishes no SPF record, so receivers cannot tell that {relay} may "
            f"send its mail",
            f"publish {txt_record(domain, with_addresses('v=spf1 ~all', addresses))}",
        )
    if len(records) > 1:
        return failed(
            NAME,
            f"{domain} publishes {len(records)} SPF records; receivers take that as an error "
            "(RFC 7208 4.5: permerror)",
            f"keep one: publish {txt_record(domain, with_addresses(records[0], addresses))} "
            "and remove the others",
        )
    record = records[0]
    sender = f"postmaster@{domain}"
    walk = _Query(i="list", s=sender, h=helo, strict=True)
    result, _, explanation = walk.check()
    if result == "temperror":
        return failed(NAME, f"the SPF of {domain} could not be read: {explanation}")
    if result == "permerror":
        if "lookups" in explanation.lower():
            return failed(
                NAME,
                f"the SPF of {domain} needs more than 10 DNS lookups (RFC 7208 4.6.4), so "
                "receivers that evaluate it to the end fail it (permerror)",
                _flatten(domain, sender, helo, addresses),
            )
        return failed(
            NAME,
            f"the SPF record of {domain} is invalid: {explanation} ({record!r})",
            f"publish {txt_record(domain, with_addresses('v=spf1 ~all', addresses))}",
        )
    refused: list[str] = []
    for address in addresses:
        verdict, _, _ = _Query(i=address, s=sender, h=helo, strict=True).check()
        if verdict != "pass":
            refused.append(f"{address}: {verdict}")
    if refused:
        return failed(
            NAME,
            f"the SPF of {domain} does not permit the relay {relay} ({'; '.join(refused)})",
            f"publish {txt_record(domain, with_addresses(record, addresses))}",
        )
    return passed(
        NAME,
        f"the SPF of {domain} permits the relay {relay} ({', '.join(addresses)}), using "
        f"{walk.lookups} of the 10 DNS lookups allowed",
    )


def with_addresses(record: str, addresses: Sequence[str]) -> str:
    """`record` with an ip4:/ip6: mechanism for each of `addresses` it lacks, placed before
    its `all` or `redirect=` (which would end the evaluation first)."""
    terms = record.split()
    added = [_mechanism(a) for a in addresses if _mechanism(a) not in terms]
    at = next(
        (
            n
            for n, term in enumerate(terms)
            if term.lstrip("+-~?").lower() == "all" or term.lower().startswith("redirect=")
        ),
        len(terms),
    )
    return " ".join(terms[:at] + added + terms[at:])


def _mechanism(address: str) -> str:
    ip = ipaddress.ip_address(address)
    return f"ip{ip.version}:{ip}"


def _flatten(domain: str, sender: str, helo: str, addresses: Sequence[str]) -> str:
    """The record with every include and redirect replaced by the addresses they stand for,
    as pyspf's list mode collects them (lax: it goes on past the limit), when it is short
    enough to publish; else what to do."""
    walk = _Query(i="list", s=sender, h=helo, strict=False)
    walk.check()
    networks = [
        f"ip{n.version}:{n.with_prefixlen if n.num_addresses > 1 else n.network_address}"
        for n in walk.iplist or []
    ]
    mechanisms = list(dict.fromkeys([_mechanism(a) for a in addresses] + networks))
    flat = "v=spf1 " + " ".join(mechanisms) + " ~all"
    if len(flat) <= MAX_RECORD:
        return f"publish {txt_record(domain, flat)} (the includes replaced by their addresses)"
    return (
        f"publish {txt_record(domain, with_addresses('v=spf1 ~all', addresses))} for this "
        "relay, and remove the includes of services that no longer send for "
        f"{domain} until it needs at most 10 lookups"
    )
