"""`web.base_url` as a subscriber's click meets it: resolved, over valid HTTPS, answered by
`digest serve` (its `/healthz`), and with a `Date` that agrees with this machine's clock.

The request goes to the address our resolver gives for the URL's host (digest.ops.resolve)
with the certificate checked for the host name, as a browser would.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import dns.resolver

from digest.links import is_loopback
from digest.ops import resolve
from digest.ops.checks import Check, failed, passed, warned

HEALTH = "/healthz"
TIMEOUT = 10.0


class _Pinned(http.client.HTTPSConnection):
    """HTTPS to a given address, the certificate checked for the URL's host."""

    def __init__(self, host: str, port: int, address: str, tls: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=TIMEOUT, context=tls)
        self.address = address
        self.tls = tls

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), TIMEOUT)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)


class _PinnedPlain(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str) -> None:
        super().__init__(host, port, timeout=TIMEOUT)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), TIMEOUT)


def check_web(
    resolver: dns.resolver.Resolver,
    base_url: str,
    *,
    clock_skew: float,
    now: datetime | None = None,
) -> list[Check]:
    """`web` (https, reachable, the public app answers) and `web clock` (no skew)."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    checks: list[Check] = []
    if not https:
        if not is_loopback(host):
            return [
                failed(
                    "web",
                    f"web.base_url {base_url} is not https://: unsubscribe links need HTTPS",
                    "serve the public app behind an HTTPS proxy and set web.base_url to its "
                    "https:// address",
                )
            ]
        checks.append(
            warned(
                "web",
                f"web.base_url {base_url} is plain http on this machine: fine for a trial, "
                "not for subscribers",
            )
        )
    try:
        found = resolve.addresses(resolver, host)
    except resolve.LookupFailed as exc:
        return [*checks, failed("web", f"web.base_url host {host}: {exc}")]
    if not found:
        return [
            *checks,
            failed(
                "web",
                f"web.base_url host {host} has no address in DNS",
                f"publish an A (or AAAA) record for {host} pointing at the HTTPS proxy",
            ),
        ]
    connection: http.client.HTTPConnection = (
        _Pinned(host, port, found[0], ssl.create_default_context())
        if https
        else _PinnedPlain(host, port, found[0])
    )
    url = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}{HEALTH}"
    try:
        connection.request(
            "GET", parts.path.rstrip("/") + HEALTH, headers={"User-Agent": "digest-doctor"}
        )
        response = connection.getresponse()
        body = response.read(200)
    except ssl.SSLCertVerificationError as exc:
        return [
            *checks,
            failed(
                "web",
                f"the certificate of {host} is not valid for it: {exc.verify_message}",
                f"give the HTTPS proxy a certificate for {host} from a public CA (such as Let's "
                "Encrypt)",
            ),
        ]
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return [
            *checks,
            failed(
                "web",
                f"{url} cannot be reached ({found[0]}): {reason}",
                "start `digest serve` and the HTTPS proxy in front of it (see the README)",
            ),
        ]
    finally:
        connection.close()
    if response.status != 200 or body.strip() != b"ok":
        checks.append(
            failed(
                "web",
                f"{url} answered {response.status}, not as `digest serve` does",
                f"point the proxy for {host} at `digest serve` (web.base_url must reach it)",
            )
        )
    elif https:
        checks.append(passed("web", f"{url} answers over valid HTTPS"))
    checks.append(_clock(response.getheader("Date"), host, clock_skew, now or datetime.now(UTC)))
    return checks


def _clock(date: str | None, host: str, tolerance: float, now: datetime) -> Check:
    try:
        theirs = parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):
        theirs = None
    if theirs is None or theirs.tzinfo is None:
        return warned(
            "web clock", f"{host} sent no usable Date header: its clock cannot be compared"
        )
    skew = (theirs - now).total_seconds()
    if abs(skew) > tolerance:
        direction = "ahead of" if skew > 0 else "behind"
        return failed(
            "web clock",
            f"the clock of {host} is {abs(skew):.0f} s {direction} this machine's (more than "
            f"{tolerance:.0f} s): confirmation links and schedules go wrong",
            "synchronise both clocks with NTP (systemd-timesyncd or chrony)",
        )
    return passed("web clock", f"the clock of {host} agrees with this machine's ({skew:+.0f} s)")
