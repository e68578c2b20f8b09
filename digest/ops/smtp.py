"""The SMTP relay as `digest send` will meet it: reachable, its TLS certificate valid for its
name, the login accepted. No mail is sent: the session ends with QUIT after AUTH.

The connection goes to the address our resolver gives for `smtp.host` (digest.ops.resolve),
and the certificate is checked for `smtp.host` against the system's CAs or `smtp.ca_file`,
as the send does. A relay whose certificate does not verify is a failure even when
`smtp.verify_tls` is off, then a warning: the send would go on, but not safely.
"""

from __future__ import annotations

import asyncio
import contextlib

import dns.resolver

from digest.delivery.smtp import SMTPConnection, SMTPError, Stage, tls_context
from digest.links import is_loopback
from digest.ops import resolve
from digest.ops.checks import Check, failed, passed, warned
from digest.ops.settings import SmtpProbe


def check_smtp(resolver: dns.resolver.Resolver, probe: SmtpProbe) -> list[Check]:
    """Three lines: `smtp` (reachable, greets), `smtp tls`, `smtp auth`."""
    try:
        found = resolve.addresses(resolver, probe.host)
    except resolve.LookupFailed as exc:
        return [failed("smtp", f"smtp.host {probe.host}: {exc}")]
    if not found:
        return [
            failed(
                "smtp",
                f"smtp.host {probe.host} has no address in DNS",
                "set smtp.host to the relay's name, or publish its A record",
            )
        ]
    return asyncio.run(_probe(probe, found[0]))


async def _probe(probe: SmtpProbe, address: str) -> list[Check]:
    where = f"{probe.host}:{probe.port} ({address})"
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(address, probe.port), probe.timeout
        )
    except (OSError, TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        return [
            failed(
                "smtp",
                f"cannot connect to {where}: {reason}",
                "check smtp.host and smtp.port, and that no firewall stands between",
            )
        ]
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    tls = tls_context(probe.ca_file, True)  # always verified here (see the module's doc)
    connection = SMTPConnection(
        probe.host,
        probe.port,
        security=probe.security,  # type: ignore[arg-type]
        timeout=probe.timeout,
        tls=tls,
        address=address,
    )
    try:
        try:
            await connection.open()
        except SMTPError as exc:
            if _tls_failure(probe, exc):
                return [passed("smtp", f"{where} is reachable"), _tls_failed(probe, exc)]
            return [
                failed("smtp", f"{where}: {exc}", "check smtp.host, smtp.port and smtp.security")
            ]
        checks = [
            passed("smtp", f"{where} answers ({probe.security})"),
            _tls_passed(probe, connection),
        ]
        checks.append(await _login(probe, connection))
        return checks
    finally:
        await connection.close()


def _tls_failure(probe: SmtpProbe, exc: SMTPError) -> bool:
    return (exc.stage == Stage.CONNECT and probe.security == "tls") or exc.stage == Stage.STARTTLS


def _tls_failed(probe: SmtpProbe, exc: SMTPError) -> Check:
    summary = f"the TLS certificate of {probe.host} is not valid for it: {exc}"
    fix = (
        f"give {probe.host} a certificate for its name from a CA this host trusts (such as "
        "Let's Encrypt), or set smtp.ca_file to the CA that signed it"
    )
    if not probe.verify_tls:
        return warned(
            "smtp tls", summary + " (smtp.verify_tls is false: sends go on regardless)", fix
        )
    return failed("smtp tls", summary, fix)


def _tls_passed(probe: SmtpProbe, connection: SMTPConnection) -> Check:
    if probe.security != "none":
        return passed(
            "smtp tls", f"the TLS certificate of {probe.host} is valid for it ({probe.security})"
        )
    if is_loopback(probe.host):
        return passed("smtp tls", f"no TLS to the relay on this machine ({probe.host})")
    offered = " (it offers STARTTLS)" if connection.capabilities.has("STARTTLS") else ""
    return warned(
        "smtp tls",
        f"mail to {probe.host} crosses the network unencrypted{offered}",
        "set smtp.security: starttls (usually port 587) or tls (port 465)",
    )


async def _login(probe: SmtpProbe, connection: SMTPConnection) -> Check:
    if not probe.username:
        return passed("smtp auth", "no login configured (smtp.username is not set)")
    try:
        await connection.login(probe.username, probe.password or "")
    except SMTPError as exc:
        return failed(
            "smtp auth",
            f"{probe.host} refused the login of {probe.username}: {exc}",
            "check smtp.username and the password (DIGEST_SMTP__PASSWORD or smtp.password_file)",
        )
    return passed("smtp auth", f"{probe.host} accepted the login of {probe.username}")
