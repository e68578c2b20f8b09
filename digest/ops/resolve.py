"""Names through the configured resolver (`dns.nameservers`), never the system's by accident.

`digest doctor` asks DNS for SPF, DKIM, DMARC and MX records and for the addresses of the
SMTP relay and of `web.base_url`'s host. All of it goes through one dnspython resolver
built here: the `host:port` name servers configured (the tests' authoritative server on
127.0.0.1), or the system's resolver when none is configured. A literal address or
`localhost` is answered without DNS.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import dns.exception
import dns.nameserver
import dns.resolver

from digest.links import is_loopback

LIFETIME = 5.0  # seconds for one lookup, retries included


class LookupFailed(Exception):
    """DNS did not answer (a timeout, SERVFAIL, no name server): not the same as "no record"."""


def nameserver(entry: str) -> tuple[str, int]:
    """`host:port` (`[::1]:53`, or a bare address for port 53) as (address, port)."""
    text = entry.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 53
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, 53


def make_resolver(nameservers: Sequence[str], lifetime: float = LIFETIME) -> dns.resolver.Resolver:
    """A resolver asking `nameservers` (`host:port`), or the system's when empty."""
    if not nameservers:
        resolver = dns.resolver.Resolver()
    else:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(*nameserver(entry)) for entry in nameservers
        ]
    resolver.lifetime = lifetime
    resolver.timeout = min(resolver.timeout, lifetime)
    return resolver


def query(resolver: dns.resolver.Resolver, name: str, kind: str) -> list[object]:
    """The records of `kind` at `name`; [] when there are none (NXDOMAIN or no answer)."""
    try:
        answer = resolver.resolve(name, kind, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.exception.DNSException, OSError) as exc:
        raise LookupFailed(f"the DNS lookup of {kind} {name} failed: {_describe(exc)}") from None
    return list(answer)


def txt(resolver: dns.resolver.Resolver, name: str) -> list[str]:
    """Every TXT record at `name`, each record's strings joined (a long record is published
    as several strings of at most 255 characters, RFC 7208 3.3, RFC 6376 3.6.2.2)."""
    return [
        b"".join(record.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
        for record in query(resolver, name, "TXT")
    ]


def addresses(resolver: dns.resolver.Resolver, host: str) -> list[str]:
    """The IPv4 and IPv6 addresses of `host` (an address literal is its own answer)."""
    bare = host.strip("[]")
    try:
        return [str(ipaddress.ip_address(bare))]
    except ValueError:
        pass
    if is_loopback(host):
        return ["127.0.0.1"]
    found = [str(r.address) for r in query(resolver, host, "A")]  # type: ignore[attr-defined]
    found += [str(r.address) for r in query(resolver, host, "AAAA")]  # type: ignore[attr-defined]
    return found


def mx(resolver: dns.resolver.Resolver, domain: str) -> list[tuple[int, str]]:
    """(preference, host) of the MX records of `domain`, lowest preference first."""
    rows = [
        (int(r.preference), r.exchange.to_text(omit_final_dot=True))  # type: ignore[attr-defined]
        for r in query(resolver, domain, "MX")
    ]
    return sorted(rows)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, dns.exception.Timeout):
        return "no answer in time"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = ["LookupFailed", "addresses", "make_resolver", "mx", "query", "txt"]
