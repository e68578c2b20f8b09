"""List-Id (RFC 2919) keeps its `<id>` literal; bulk headers keep autoresponders away.

Only List-Id's phrase may be RFC 2047 encoded: filters match the `<id>` as bytes, so a Chinese
site title must never turn it into base64 (`=?utf-8?b?…PGRpZ2VzdC5…?=`, as it did).
"""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from digest.config.load import load_config
from digest.config.schema import Config
from digest.config.sending import compose_settings
from digest.delivery.personalise import list_id_header
from digest.errors import ConfigError
from digest.issues.send import Composer
from digest.models import Edition, Post, Recipient
from tests.support import paths

ROOT = paths.ROOT
NOW = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


def parsed(header: bytes) -> str:
    message = email.message_from_bytes(header + b"\r\n", policy=policy.default)
    return str(message["List-Id"])


def lines(header: bytes) -> list[bytes]:
    return header.rstrip(b"\r\n").split(b"\r\n")


def test_only_the_phrase_is_encoded() -> None:
    header = list_id_header("行路中 <digest.blog.example.com>")
    assert header == b"List-Id: =?utf-8?b?6KGM6Lev5Lit?= <digest.blog.example.com>\r\n"
    assert parsed(header) == "行路中 <digest.blog.example.com>"


def test_a_long_title_folds_before_the_literal_id() -> None:
    title = "一个很长很长的中文博客标题，用来检查折行" * 3
    header = list_id_header(f"{title} <digest.blog.example.com>")
    assert all(len(line) <= 78 for line in lines(header))
    assert lines(header)[-1].endswith(b"<digest.blog.example.com>")
    assert b"<digest.blog.example.com>" in header and header.count(b"=?utf-8?") > 1
    assert parsed(header) == f"{title} <digest.blog.example.com>"


@pytest.mark.parametrize(
    ("value", "header"),
    [
        (
            "Incoming Transmission <digest.blog.example.com>",
            b"List-Id: Incoming Transmission <digest.blog.example.com>\r\n",
        ),
        (
            'Sean\'s "Notes": daily <n.example.com>',
            b'List-Id: "Sean\'s \\"Notes\\": daily" <n.example.com>\r\n',
        ),
        ("<digest.example.com>", b"List-Id: <digest.example.com>\r\n"),
        (
            "Blog\r\nBcc: x@example.com <d.example.com>",
            b'List-Id: "Blog Bcc: x@example.com" <d.example.com>\r\n',
        ),
        (
            "A very long English blog title that goes on and on and on and on <d.example.com>",
            b"List-Id: A very long English blog title that goes on and on and on and on\r\n"
            b" <d.example.com>\r\n",
        ),
    ],
)
def test_ascii_phrases_are_atoms_or_one_quoted_string(value: str, header: bytes) -> None:
    assert list_id_header(value) == header
    assert parsed(header).endswith(value.rsplit("<", 1)[1])


def test_an_international_domain_becomes_punycode() -> None:
    header = list_id_header("博客 <digest.例子.中国>")
    assert header.endswith(b" <digest.xn--fsqu00a.xn--fiqs8s>\r\n")
    assert header.isascii()


@pytest.fixture(scope="module")
def chinese(tmp_path_factory: pytest.TempPathFactory) -> Config:
    folder = tmp_path_factory.mktemp("zh")
    (folder / "secret").write_text("s\n", encoding="utf-8")
    (folder / "config.yaml").write_text(
        "site:\n  title: 行路中\n  base_url: https://blog.example.com\n  postal_address: 路 1 号\n"
        "sources:\n  - {type: markdown, path: posts}\n"
        "sender:\n  from: 行路中 <digest@blog.example.com>\n"
        "web:\n  secret_file: secret\n",
        encoding="utf-8",
    )
    return load_config(folder / "config.yaml", environ={})


def test_a_digest_message_carries_the_list_and_bulk_headers(chinese: Config) -> None:
    post = Post(id="p", title="标题", url="https://blog.example.com/p/", date=NOW, body="正文")
    composer = Composer(
        compose_settings(chinese), Edition("2026-W47", NOW, (post,)), issue_id=None, database=None
    )
    composed = composer(Recipient(1, 1, "reader@example.com", "读者", "zh", None))
    assert composed is not None
    head = composed.message.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nList-Id: =?utf-8?b?6KGM6Lev5Lit?= <digest.blog.example.com>\r\n" in head
    assert b"\r\nPrecedence: bulk\r\n" in head
    assert b"\r\nX-Auto-Response-Suppress: OOF, AutoReply\r\n" in head
    message = email.message_from_bytes(composed.message, policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message["List-Id"] == "行路中 <digest.blog.example.com>"


@pytest.mark.parametrize("value", ["My list", "My list <nodot>", "<a.b> <c.d>", "x <a b.c>"])
def test_a_configured_list_id_must_have_an_id(tmp_path: Path, value: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "site:\n  title: T\n  base_url: https://b.example.com\n"
        "sources:\n  - {type: markdown, path: posts}\n"
        f"sender:\n  from: d@b.example.com\n  list_id: {value!r}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"sender\.list_id: .* is not a list id such as"):
        load_config(path, environ={})
