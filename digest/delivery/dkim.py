"""DKIM signatures (RFC 6376, relaxed/relaxed) made fast: RSA-SHA256 and Ed25519-SHA256.

dkimpy's own RSA costs about 10 ms a message; here the private-key operation goes through
OpenSSL (`cryptography`, about 0.3 ms for RSA-2048, 0.03 ms for Ed25519), and the rest is
prepared once per issue: the body hash is fed the static parts of the message, canonicalised
once, with only the per-recipient slots canonicalised per message, and the signed header
fields that do not change between recipients are canonicalised once too
(digest.delivery.personalise). dkimpy verifies every signature in the tests.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from digest.delivery.settings import DkimSettings
from digest.errors import ConfigError, DigestError

SIGNED_HEADERS = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "reply-to",
    "mime-version",
    "content-type",
)
_WSP_RUN = re.compile(rb"[ \t]+")
_TRAILING_WSP = re.compile(rb"[ \t]+\r\n")
_FOLD = re.compile(rb"\r\n(?=[ \t])")


@dataclass(frozen=True, slots=True)
class DkimKey:
    domain: str
    selector: str
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

    @property
    def algorithm(self) -> str:
        return "ed25519-sha256" if isinstance(self.key, ed25519.Ed25519PrivateKey) else "rsa-sha256"

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            # RFC 8463: Ed25519 signs the SHA-256 hash of the canonicalised header data
            return self.key.sign(hashlib.sha256(data).digest())
        return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def load_key(path: Path, domain: str, selector: str, where: str) -> DkimKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror}.") from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {path} is not a PEM private key ({exc}).") from None
    if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise ConfigError(f"{where}: {path} must hold an RSA or Ed25519 key.")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 1024:
        raise ConfigError(f"{where}: {path} is a {key.key_size}-bit RSA key; use 2048 bits.")
    return DkimKey(domain, selector, key)


# -- canonicalisation (RFC 6376 section 3.4) ----------------------------------------------------


def relaxed_body(data: bytes, *, final: bool = True) -> bytes:
    """Relaxed body canonicalisation. A piece that is not `final` may end mid-line: its end
    is left alone (collapsed, not stripped); `final` also drops the trailing empty lines."""
    if b"\t" in data or b"  " in data:  # else no run of whitespace to collapse
        data = _WSP_RUN.sub(b" ", data)
    if b" \r\n" in data:  # runs are single spaces now
        data = _TRAILING_WSP.sub(b"\r\n", data)
    if final:
        data = data.rstrip(b" \t")
        data = data.rstrip(b"\r\n")
        return data + b"\r\n" if data else b""
    return data


def relaxed_header(line: bytes) -> bytes:
    """`Name: value` (possibly folded) -> `name:value` per the relaxed algorithm, no CRLF."""
    name, _, value = line.partition(b":")
    if b"\r\n" in value:
        value = _FOLD.sub(b"", value)
    if b"\t" in value or b"  " in value:
        value = _WSP_RUN.sub(b" ", value)
    return name.strip().lower() + b":" + value.strip(b" \t\r\n")


def header_fields(head: bytes) -> list[bytes]:
    """The header block split into fields (folded lines kept together, CRLF stripped)."""
    return [f for f in re.split(rb"\r\n(?![ \t])", head) if f]


# -- signing ------------------------------------------------------------------------------------


class Signer:
    """Signs messages with one or more keys (RSA and, as a second signature, Ed25519)."""

    def __init__(self, keys: Sequence[DkimKey], signed: Sequence[str] = SIGNED_HEADERS) -> None:
        self.keys = list(keys)
        self.signed = [name.lower() for name in signed]

    def signature_headers(
        self, head: bytes, body_hash: bytes, *, timestamp: int | None = None
    ) -> bytes:
        """DKIM-Signature header fields (with CRLF) for a header block and its body hash."""
        fields: dict[bytes, bytes] = {}
        for field in header_fields(head):
            name = field.split(b":", 1)[0].strip().lower()
            fields[name] = field  # the last instance is the one signed (RFC 6376 5.4.2)
        present = [n for n in self.signed if n.encode() in fields]
        canonical = b"".join(relaxed_header(fields[n.encode()]) + b"\r\n" for n in present)
        return self.signatures(canonical, present, body_hash, timestamp=timestamp)

    def signatures(
        self,
        canonical: bytes,
        present: Sequence[str],
        body_hash: bytes,
        *,
        timestamp: int | None = None,
    ) -> bytes:
        """DKIM-Signature header fields (with CRLF) for the signed header fields `present`
        (names, in `self.signed` order), already relaxed-canonicalised with their CRLFs into
        `canonical`, and the body hash."""
        bh = base64.b64encode(body_hash).decode()
        stamp = int(time.time()) if timestamp is None else timestamp
        out = []
        for key in self.keys:
            tags = (
                f"v=1; a={key.algorithm}; c=relaxed/relaxed; d={key.domain}; s={key.selector};\r\n"
                f"\tt={stamp}; h={':'.join(present)};\r\n\tbh={bh};\r\n\tb="
            )
            unsigned = b"DKIM-Signature: " + tags.encode()
            signature = key.sign(canonical + relaxed_header(unsigned))
            b64 = base64.b64encode(signature).decode()
            folded = "\r\n\t".join(b64[i : i + 72] for i in range(0, len(b64), 72))
            out.append(unsigned + folded.encode() + b"\r\n")
        return b"".join(out)

    def sign(self, message: bytes, *, timestamp: int | None = None) -> bytes:
        """Sign a whole message (the slow, general path: tests, test sends)."""
        head, _, body = message.partition(b"\r\n\r\n")
        body_hash = hashlib.sha256(relaxed_body(body)).digest()
        return self.signature_headers(head + b"\r\n", body_hash, timestamp=timestamp) + message


def dkim_signer(settings: DkimSettings | None) -> Signer | None:
    """The configured DKIM keys (RSA, plus Ed25519 as a second signature), or None."""
    if settings is None:
        return None
    keys = [load_key(settings.key_file, settings.domain, settings.selector, "dkim.key_file")]
    if settings.ed25519_key_file is not None and settings.ed25519_selector is not None:
        keys.append(
            load_key(
                settings.ed25519_key_file,
                settings.domain,
                settings.ed25519_selector,
                "dkim.ed25519_key_file",
            )
        )
    return Signer(keys)


# -- keys and DNS -------------------------------------------------------------------------------


def generate(kind: str = "rsa") -> rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey:
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_private_key(
    folder: Path, selector: str, key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
) -> Path:
    """Write `key` to `folder/<selector>.private.pem`, readable by its owner only (0600 from
    the start: the file is created with that mode, never widened) and never over an existing
    key, which may be the one a published DNS record names. DigestError says why it failed."""
    path = folder / f"{selector}.private.pem"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(private_pem(key))
    except FileExistsError:
        raise DigestError(f"{path} already exists; choose another --selector.") from None
    except OSError as exc:
        raise DigestError(f"{path}: cannot write the key: {exc.strerror}.") from None
    return path


def public_value(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> tuple[str, str]:
    """(k=, p=) for the DNS record: RSA as SubjectPublicKeyInfo, Ed25519 as the raw 32 bytes."""
    public = key.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return "ed25519", base64.b64encode(raw).decode()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "rsa", base64.b64encode(der).decode()


def txt_value(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> str:
    kind, value = public_value(key)
    return f"v=DKIM1; k={kind}; p={value}"


def dns_record(
    selector: str, domain: str, key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
) -> str:
    """A zone-file line; the value is split into quoted strings of at most 255 characters."""
    value = txt_value(key)
    chunks = " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))
    return f"{selector}._domainkey.{domain}. IN TXT ( {chunks} )"
