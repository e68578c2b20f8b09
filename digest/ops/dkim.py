"""The DKIM records in DNS against the keys `digest send` signs with.

A receiver verifies our signature with the key it finds at `selector._domainkey.domain`; a
record that is missing, revoked (`p=` empty) or holds another key (an old key, a key
generated twice) makes every signature fail, silently. So the public half of each
configured private key (RSA and Ed25519) is computed and compared with what DNS publishes,
the record's strings joined first (a 2048-bit RSA key does not fit in one).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import dns.resolver

from digest.delivery.dkim import dns_record, load_key, public_value
from digest.errors import ConfigError
from digest.ops import resolve
from digest.ops.checks import Check, failed, passed, warned
from digest.ops.settings import KeyFile

_SPACE = re.compile(r"\s+")


def tags(record: str) -> dict[str, str]:
    """A DKIM tag list (RFC 6376 3.2) as {tag: value}, whitespace around them dropped; the
    first of a repeated tag kept."""
    found: dict[str, str] = {}
    for part in record.split(";"):
        name, equals, value = part.partition("=")
        if equals:
            found.setdefault(name.strip().lower(), value.strip())
    return found


def check_dkim(
    resolver: dns.resolver.Resolver, domain: str | None, keys: Sequence[KeyFile]
) -> list[Check]:
    """One line per configured key: its record at `selector._domainkey.domain` carries the
    key's public half."""
    if domain is None or not keys:
        return [
            warned(
                "dkim",
                "messages are not DKIM-signed; Gmail and Yahoo want bulk mail signed",
                "run `digest dkim keygen --domain <your From domain> --selector mail`, publish "
                "the record it prints and add the dkim: section it shows to config.yaml",
            )
        ]
    return [_check_key(resolver, domain, key) for key in keys]


def _check_key(resolver: dns.resolver.Resolver, domain: str, key: KeyFile) -> Check:
    name = f"dkim {key.selector}"
    try:
        private = load_key(key.path, domain, key.selector, key.key).key
    except ConfigError as exc:
        return failed(name, exc.message, f"set {key.key} to the private key the record names")
    kind, value = public_value(private)
    at = f"{key.selector}._domainkey.{domain}"
    publish = f"publish {dns_record(key.selector, domain, private)}"
    records = [tags(r) for r in resolve.txt(resolver, at)]
    records = [r for r in records if "p" in r]
    if not records:
        return failed(
            name,
            f"there is no DKIM record at {at}, so no receiver can verify the signature",
            publish,
        )
    for record in records:
        published = _SPACE.sub("", record.get("p", ""))
        if published == value and record.get("k", "rsa").lower() == kind:
            return passed(name, f"{at} carries the public key of {key.key} ({kind})")
    if all(not _SPACE.sub("", r.get("p", "")) for r in records):
        return failed(name, f"the DKIM record at {at} is revoked (empty p=)", publish)
    return failed(
        name,
        f"the DKIM record at {at} carries another key than {key.key} ({key.path}): every "
        "signature fails",
        publish,
    )
