"""An authoritative DNS server on 127.0.0.1 for the tests (dnslib), UDP and TCP on one port.

The zone is a dict the test fills and changes: `txt`, `a`, `mx` add records, `remove`
drops a name's records of a type. A name with no records of any type is NXDOMAIN; a name
with others is an empty answer, as a real server gives. Nothing leaves the machine.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from dnslib import AAAA, MX, QTYPE, RCODE, RR, TXT, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from tests.support.smtp_server import free_port


class Zone:
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[Any]] = defaultdict(list)
        self.lock = threading.Lock()

    @staticmethod
    def _key(name: str, kind: str) -> tuple[str, str]:
        return name.lower().rstrip("."), kind

    def txt(self, name: str, *strings: str) -> None:
        """One TXT record of `strings` (several: a record split as DNS requires past 255)."""
        with self.lock:
            self.records[self._key(name, "TXT")].append(TXT([s.encode() for s in strings]))

    def a(self, name: str, address: str) -> None:
        kind, data = ("AAAA", AAAA(address)) if ":" in address else ("A", A(address))
        with self.lock:
            self.records[self._key(name, kind)].append(data)

    def mx(self, name: str, preference: int, host: str) -> None:
        with self.lock:
            self.records[self._key(name, "MX")].append(MX(host, preference))

    def remove(self, name: str, kind: str) -> None:
        with self.lock:
            self.records.pop(self._key(name, kind), None)

    def answer(self, name: str, kind: str) -> tuple[bool, list[Any]]:
        """(name exists, records of kind)."""
        key = self._key(name, kind)
        with self.lock:
            exists = any(n == key[0] and rows for (n, _), rows in self.records.items())
            return exists, list(self.records.get(key, []))


class _Resolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.asked: list[tuple[str, str]] = []

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        question = request.q
        name, kind = str(question.qname), QTYPE[question.qtype]
        self.asked.append((name.rstrip(".").lower(), kind))
        exists, records = self.zone.answer(name, kind)
        if not exists:
            reply.header.rcode = RCODE.NXDOMAIN
        for data in records:
            reply.add_answer(RR(question.qname, question.qtype, rdata=data, ttl=60))
        return reply


class DnsServer:
    """`with DnsServer() as dns:` then `dns.zone.txt(...)`; `dns.nameserver` is the
    `127.0.0.1:PORT` for `dns.nameservers`."""

    def __init__(self) -> None:
        self.zone = Zone()
        self.resolver = _Resolver(self.zone)
        self.port = free_port()
        quiet = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
        self.servers = [
            DNSServer(self.resolver, address="127.0.0.1", port=self.port, tcp=tcp, logger=quiet)
            for tcp in (False, True)
        ]

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def asked(self) -> list[tuple[str, str]]:
        return self.resolver.asked

    def __enter__(self) -> DnsServer:
        for server in self.servers:
            server.start_thread()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.servers:
            server.stop()
            server.server.server_close()
