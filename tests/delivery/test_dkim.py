"""DKIM: every signature verifies with dkimpy; tampering breaks it; keygen's DNS record."""

from __future__ import annotations

import re
from pathlib import Path

import dkim as dkimpy
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.cli import main
from digest.config.load import load_config
from digest.config.sending import dkim_settings, sender_settings, smtp_settings
from digest.config.stages import render_settings
from digest.delivery import dkim
from tests.issues.test_send import add_subscribers, write_config
from tests.support import paths
from tests.support.smtp_server import SMTPServer

ROOT = paths.ROOT


def keygen(config: Path, out: Path, *args: str) -> tuple[Path, str]:
    result = CliRunner().invoke(
        main, ["--config", str(config), "dkim", "keygen", "--out", str(out), *args]
    )
    assert result.exit_code == 0, result.output
    record = result.stdout.strip()
    selector = record.split("._domainkey.", 1)[0]
    return out / f"{selector}.private.pem", record


def resolver(*records: str) -> object:
    """A dnsfunc for dkimpy answering from zone-file lines like keygen prints."""
    table = {}
    for record in records:
        name = record.split(" ", 1)[0].encode()
        value = "".join(re.findall(r'"([^"]*)"', record)).encode()
        table[name] = value

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return table.get(name if name.endswith(b".") else name + b".")

    return lookup


def verifies(data: bytes, idx: int, dns: object) -> bool:
    try:
        return bool(dkimpy.DKIM(data).verify(idx=idx, dnsfunc=dns))
    except dkimpy.ValidationError:
        return False


def test_keygen_record_matches_the_key(tmp_path: Path) -> None:
    config = write_config(tmp_path, "sqlite://", 25)
    for args in ([], ["--ed25519"]):
        key_file, record = keygen(config, tmp_path / "keys", *args)
        assert record.startswith(
            f"{key_file.name.split('.')[0]}._domainkey.blog.example.com. IN TXT"
        )
        assert all(len(chunk) <= 255 for chunk in re.findall(r'"([^"]*)"', record))
        private = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        value = "".join(re.findall(r'"([^"]*)"', record))
        assert value == dkim.txt_value(private)  # type: ignore[arg-type]
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    again = CliRunner().invoke(
        main,
        [
            "--config",
            str(config),
            "dkim",
            "keygen",
            "--out",
            str(tmp_path / "keys"),
            "--selector",
            key_file.name.split(".")[0],
        ],
    )
    assert again.exit_code == 1 and "already exists" in again.output


@pytest.fixture
def signed_mail(tmp_path: Path, database_url: str) -> tuple[list[bytes], object]:
    config_path = write_config(tmp_path, database_url, 25)
    rsa_file, rsa_record = keygen(config_path, tmp_path / "keys", "--selector", "r1")
    ed_file, ed_record = keygen(config_path, tmp_path / "keys", "--selector", "e1", "--ed25519")
    with SMTPServer() as server:
        path = write_config(tmp_path, database_url, server.port)
        path.write_text(
            path.read_text("utf-8") + f"dkim:\n  domain: blog.example.com\n  selector: r1\n"
            f"  key_file: {rsa_file}\n  ed25519_selector: e1\n  ed25519_key_file: {ed_file}\n",
            "utf-8",
        )
        config = load_config(path)
        add_subscribers(config, 6)  # names 读者0..5, both locales
        result = CliRunner().invoke(main, ["--config", str(path), "send", "--yes"])
        assert result.exit_code == 0, result.output
    return [m.data for m in server.mailbox.messages], resolver(rsa_record, ed_record)


def test_every_signed_message_verifies_with_dkimpy(signed_mail: tuple[list[bytes], object]) -> None:
    messages, dns = signed_mail
    assert len(messages) == 6
    for data in messages:
        assert data.count(b"DKIM-Signature:") == 2
        checker = dkimpy.DKIM(data)
        assert checker.verify(idx=0, dnsfunc=dns) is True
        assert checker.verify(idx=1, dnsfunc=dns) is True
        header = data.split(b"\r\n\r\n", 1)[0]
        assert (
            b"h=from:to:subject:date:message-id:list-id:list-unsubscribe:list-unsubscribe-post"
            in header
        )
        assert b"=?utf-8?" in header  # a Chinese subject and names are in there, encoded


@pytest.mark.parametrize(
    ("pattern", "replacement"),
    [
        (rb"Subject: [^\r]*", b"Subject: =?utf-8?q?changed?="),
        (rb"List-Unsubscribe: <https://[^>]*>", b"List-Unsubscribe: <https://evil.example/u/x>"),
        (rb"\r\nTo: [^\r]*", b"\r\nTo: someone.else@example.com"),
        (rb"List-Unsubscribe-Post: [^\r]*", b"List-Unsubscribe-Post: nothing"),
    ],
)
def test_altering_a_signed_header_fails_verification(
    signed_mail: tuple[list[bytes], object], pattern: bytes, replacement: bytes
) -> None:
    messages, dns = signed_mail
    tampered = re.sub(pattern, replacement, messages[0], count=1)
    assert tampered != messages[0]
    assert verifies(messages[0], 0, dns) and verifies(messages[0], 1, dns)
    assert not verifies(tampered, 0, dns) and not verifies(tampered, 1, dns)


def test_altering_the_body_fails_verification(signed_mail: tuple[list[bytes], object]) -> None:
    messages, dns = signed_mail
    tampered = messages[0].replace(b"INCOMING TRANSMISSION", b"INCOMING TRANSMISSIOX", 1)
    assert tampered != messages[0]
    assert not verifies(tampered, 0, dns) and not verifies(tampered, 1, dns)


def test_canonicalisation_matches_dkimpy() -> None:
    from dkim.canonicalization import Relaxed

    body = b"a  b\t \r\n\r\n  c \r\nd\r\n\r\n\r\n"
    assert dkim.relaxed_body(body) == Relaxed.canonicalize_body(body)
    headers = [(b"Subject", b" =?utf-8?q?x?=\r\n \t y  "), (b"To", b"  A  <a@b.c>  ")]
    for name, value in headers:
        [(cname, cvalue)] = Relaxed.canonicalize_headers([(name, value)])
        assert dkim.relaxed_header(name + b":" + value) == cname + b":" + cvalue.rstrip(b"\r\n")


def test_the_confirmation_mail_is_signed_too(tmp_path: Path) -> None:
    from digest.delivery.mailer import SmtpMailer, confirmation_message

    config_path = write_config(tmp_path, "sqlite://", 25)
    key_file, record = keygen(config_path, tmp_path / "keys", "--selector", "c1")
    with SMTPServer() as server:
        path = write_config(tmp_path, f"sqlite:///{tmp_path / 'd.sqlite3'}", server.port)
        path.write_text(
            path.read_text("utf-8")
            + f"dkim:\n  domain: blog.example.com\n  selector: c1\n  key_file: {key_file}\n",
            "utf-8",
        )
        config = load_config(path)
        message = confirmation_message(
            render_settings(config),
            sender_settings(config),
            email="li.na@example.com",
            name="李娜",
            locale="zh",
            confirm_url="https://news.example.com/c/x",
        )
        SmtpMailer(smtp_settings(config), sender_settings(config), dkim_settings(config)).send(
            message
        )
    [received] = server.mailbox.messages
    assert verifies(received.data, 0, resolver(record))


_WHITESPACE_BYTES = st.lists(
    st.sampled_from([b" ", b"\t", b"\r\n", b"a", b"b:", b"\r", b"\n", b"  ", b"\r\n\t", b"\r\n "]),
    max_size=30,
).map(b"".join)


@settings(max_examples=500)
@given(_WHITESPACE_BYTES, st.booleans())
def test_the_canonicalisation_shortcuts_change_nothing(data: bytes, final: bool) -> None:
    """relaxed_body and relaxed_header skip their regular expressions when there is nothing
    for them to do: the same bytes as applying them all (what test_canonicalisation_matches_
    dkimpy checks against dkimpy)."""
    plain = re.sub(rb"[ \t]+\r\n", b"\r\n", re.sub(rb"[ \t]+", b" ", data))
    if final:
        plain = plain.rstrip(b" \t").rstrip(b"\r\n")
        plain = plain + b"\r\n" if plain else b""
    assert dkim.relaxed_body(data, final=final) == plain
    value = re.sub(rb"[ \t]+", b" ", re.sub(rb"\r\n(?=[ \t])", b"", data)).strip(b" \t\r\n")
    assert dkim.relaxed_header(b"X-Name:" + data) == b"x-name:" + value


def test_a_prepared_signature_is_the_general_one(tmp_path: Path) -> None:
    """MessageTemplate signs from header fields and body segments canonicalised once per issue:
    the same bytes as signing the whole unsigned message afresh (RSA PKCS#1 v1.5 and Ed25519
    signatures are deterministic), for recipients whose values fold, hold spaces and tabs."""
    from datetime import UTC, datetime

    from digest.delivery.personalise import Headers, MessageTemplate, Personal
    from digest.models import Rendered

    keys = [
        dkim.DkimKey("blog.example.com", "r1", dkim.generate("rsa")),
        dkim.DkimKey("blog.example.com", "e1", dkim.generate("ed25519")),
    ]
    signer = dkim.Signer(keys)
    rendered = Rendered(
        locale="zh",
        subject="Incoming  Transmission\t· 第 47 周 " + "很长的标题" * 20,
        preheader="p",
        html="<p>x-digest:greeting</p>\n<p>text\twith  tabs </p>\n"
        '<a href="x-digest:unsubscribe-url">u</a> <a href="x-digest:preferences-url">p</a>\n',
        text="x-digest:greeting\n\nBody  text \t\n"
        "x-digest:unsubscribe-url\nx-digest:preferences-url\n",
        mjml="",
        greeting_named="你好，%(name)s  ！",
        greeting_anonymous="你好！",
    )
    template = MessageTemplate(
        rendered, Headers(sender="Blog  <digest@blog.example.com>", list_id="Blog <d.example.com>")
    )
    for name in ("", "读者 \t 一", "A Very Long Name " * 8):
        personal = Personal(
            email="reader@example.com",
            name=name,
            message_id="<m1@blog.example.com>",
            date=datetime(2026, 11, 23, 9, tzinfo=UTC),
            unsubscribe_url="https://news.example.com/u/" + "t" * 150,
            preferences_url="https://news.example.com/p/" + "t" * 150,
            mailto="mailto:bounces@example.com?subject=unsubscribe%20x",
        )
        unsigned = template.build(personal)
        prepared = template.build(personal, signer, 1_800_000_000)
        assert prepared == signer.sign(unsigned, timestamp=1_800_000_000)
        assert prepared.endswith(unsigned)


@pytest.mark.parametrize("eight_bit", [True, False])
def test_a_prepared_signature_with_personal_click_links(eight_bit: bool) -> None:
    """With `tracking.clicks: personal` each post link is a slot of its own in both parts:
    the prepared signature (static segments canonicalised once, the links per message) is
    the general one, dkimpy verifies it, and each recipient's links are their own."""
    from datetime import UTC, datetime

    from digest.delivery.personalise import Headers, LinkSlot, MessageTemplate, Personal
    from digest.models import Rendered

    key = dkim.generate("rsa")
    signer = dkim.Signer([dkim.DkimKey("blog.example.com", "p1", key)])
    dns = resolver(dkim.dns_record("p1", "blog.example.com", key))
    rendered = Rendered(
        locale="en",
        subject="Links",
        preheader="p",
        html='<p>x-digest:greeting</p>\n<a href="x-digest:click-0">One</a>  \t'
        '<a href="x-digest:click-0"><img src="c.png"></a>\n'
        '<a href="x-digest:click-12" class="x">Two</a> <a href="x-digest:unsubscribe-url">u</a>\n',
        text="x-digest:greeting\n\nOne  \nRead more: x-digest:click-0\n"
        "Two\nRead more: x-digest:click-12\n.x-digest:click-12\n",
        mjml="",
        greeting_named="Hi %(name)s,",
        greeting_anonymous="Hi,",
    )
    template = MessageTemplate(
        rendered,
        Headers(sender="Blog <digest@blog.example.com>", list_id="Blog <d.example.com>"),
        eight_bit=eight_bit,
    )
    assert template.links == (0, 12)
    assert template.part_8bit == {"text/plain": eight_bit, "text/html": eight_bit}
    assert sum(isinstance(s, LinkSlot) for s in template.body) == 6
    for delivery in (1, 2**63 - 1):
        urls = {n: f"https://news.example.com/c/{n}.{delivery}.sig-{n}" for n in (0, 12)}
        personal = Personal(
            email="reader@example.com",
            name="Reader",
            message_id=f"<m{delivery}@blog.example.com>",
            date=datetime(2026, 11, 23, 9, tzinfo=UTC),
            unsubscribe_url="https://news.example.com/u/t",
            preferences_url="https://news.example.com/p/t",
            mailto=None,
            click_urls=urls,
        )
        unsigned = template.build(personal)
        prepared = template.build(personal, signer, 1_800_000_000)
        assert prepared == signer.sign(unsigned, timestamp=1_800_000_000)
        assert verifies(template.build(personal, signer), 0, dns)  # t= now: not in the future
        assert b"x-digest:" not in unsigned
        assert template.build(personal, wire=True) == unsigned.replace(b"\r\n.", b"\r\n..")
        from email import message_from_bytes, policy

        message = message_from_bytes(unsigned, policy=policy.default)
        html_part = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        text_part = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert html_part.count(urls[0]) == 2 and html_part.count(urls[12]) == 1
        assert text_part.count(urls[0]) == 1 and text_part.count(urls[12]) == 2
        assert f".{urls[12]}" in text_part  # a line starting with a dot, before the link
    with pytest.raises(ValueError, match="click links"):
        template.build(
            Personal(
                email="reader@example.com",
                name="",
                message_id="<m@blog.example.com>",
                date=datetime(2026, 11, 23, 9, tzinfo=UTC),
                unsubscribe_url="https://news.example.com/u/t",
                preferences_url="https://news.example.com/p/t",
                mailto=None,
                click_urls={0: "https://news.example.com/c/x"},  # link 12's is missing
            )
        )
