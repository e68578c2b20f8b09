"""Where bounces go: the MX of `bounces.return_path`'s domain, when one is set."""

from __future__ import annotations

import dns.resolver

from digest.ops import resolve
from digest.ops.checks import Check, failed, passed, warned


def check_mx(resolver: dns.resolver.Resolver, return_path: str | None) -> Check | None:
    """None without `bounces.return_path` (bounces then go to the From address's mailbox)."""
    if return_path is None:
        return None
    domain = return_path.rpartition("@")[2].lower()
    hosts = resolve.mx(resolver, domain)
    if hosts:
        names = ", ".join(f"{host} ({preference})" for preference, host in hosts)
        if any(host in ("", ".") for _, host in hosts):
            return failed(
                "mx",
                f"{domain} publishes a null MX (RFC 7505): it takes no mail, so bounces to "
                f"{return_path} are lost",
                f"publish {domain}. IN MX 10 <the host of the bounce mailbox>., or set "
                "bounces.return_path to an address whose domain takes mail",
            )
        return passed("mx", f"bounces to {return_path} go to {names}")
    if resolve.addresses(resolver, domain):
        return warned(
            "mx",
            f"{domain} has no MX record; bounces to {return_path} go to its address record",
            f"publish {domain}. IN MX 10 <the host of the bounce mailbox>.",
        )
    return failed(
        "mx",
        f"{domain} has no MX record and no address: bounces to {return_path} cannot arrive",
        f"publish {domain}. IN MX 10 <the host of the bounce mailbox>.",
    )
