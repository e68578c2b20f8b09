"""VERP tokens and addresses: round trips, case, length, tampering, rotation; the config."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.config.credentials import imap_password, postmark_password
from digest.config.load import load_config
from digest.errors import ConfigError
from digest.inbound import verp
from digest.inbound.settings import RETURN_PATH_LOCAL_MAX
from digest.inbound.verp import (
    MAX_ID,
    MAX_TOKEN_CHARS,
    InvalidVerp,
    VerpToken,
    bounce_address,
    find_verp,
    make_verp_token,
    read_verp_token,
    unsubscribe_mailto,
    verp_address,
)
from digest.tokens import Keyring, make_token, read_token

KEYS = Keyring("verp-secret")
NOW = datetime(2026, 11, 22, tzinfo=UTC)
ids = st.integers(min_value=1, max_value=MAX_ID)


@settings(max_examples=200)
@given(ids, ids, ids)
def test_round_trip_and_alphabet(subscriber: int, issue: int, delivery: int) -> None:
    token = make_verp_token(KEYS, "bounce", subscriber, issue, delivery)
    assert read_verp_token(KEYS, token) == VerpToken("bounce", subscriber, issue, delivery)
    assert set(token) <= set("abcdefghijklmnopqrstuvwxyz234567")
    assert len(token) <= MAX_TOKEN_CHARS
    # relays change case: any casing reads the same
    assert read_verp_token(KEYS, token.upper()) == read_verp_token(KEYS, token)


def test_the_longest_address_stays_within_64_octets() -> None:
    local = "x" * RETURN_PATH_LOCAL_MAX
    address = bounce_address(f"{local}@example.com", KEYS, MAX_ID, MAX_ID, MAX_ID)
    assert len(address.rpartition("@")[0]) <= 64
    with pytest.raises(ValueError, match="64 octets"):
        verp_address(
            "y" * 30 + "@example.com", make_verp_token(KEYS, "bounce", MAX_ID, MAX_ID, MAX_ID)
        )


def test_typical_address() -> None:
    address = bounce_address("bounces@example.com", KEYS, 42, 7, 1234)
    assert address.startswith("bounces+") and address.endswith("@example.com")
    assert len(address) < 50


@pytest.mark.parametrize("bad", [0, -1, MAX_ID + 1])
def test_ids_out_of_range_are_refused(bad: int) -> None:
    with pytest.raises(ValueError):
        make_verp_token(KEYS, "bounce", bad, 1, 1)
    with pytest.raises(ValueError):
        make_verp_token(KEYS, "bounce", 1, bad, 1)


def test_purposes_need_their_ids() -> None:
    with pytest.raises(ValueError):
        make_verp_token(KEYS, "bounce", 1, 2)
    with pytest.raises(ValueError):
        make_verp_token(KEYS, "unsubscribe", 1, 2, 3)
    token = make_verp_token(KEYS, "unsubscribe", 5)
    assert read_verp_token(KEYS, token) == VerpToken("unsubscribe", 5, None, None)


def test_every_single_character_change_is_refused() -> None:
    token = make_verp_token(KEYS, "bounce", 42, 7, 1234)
    for index in range(len(token)):
        for replacement in "a7q":
            if token[index] == replacement:
                continue
            changed = token[:index] + replacement + token[index + 1 :]
            with pytest.raises(InvalidVerp):
                read_verp_token(KEYS, changed)
    for cut in range(1, len(token)):
        with pytest.raises(InvalidVerp):
            read_verp_token(KEYS, token[:cut])


@pytest.mark.parametrize("bad", ["", "a", "bounces", "0189", "a" * 43, "ab=cd", "é" * 20])
def test_garbage_is_refused(bad: str) -> None:
    with pytest.raises(InvalidVerp):
        read_verp_token(KEYS, bad)


def test_a_second_spelling_is_refused() -> None:
    """An over-long varint carries the same ids; even correctly signed it must not read."""
    payload = bytes([0x62]) + bytes([42 | 0x80, 0]) + bytes([7]) + bytes([1])
    forged = base64.b32encode(payload + verp._mac(KEYS.secret, payload)).decode().rstrip("=")
    with pytest.raises(InvalidVerp):
        read_verp_token(KEYS, forged.lower())
    token = make_verp_token(KEYS, "bounce", 42, 7, 123)  # 14 bytes: 23 characters
    raw = base64.b32decode(token.upper() + "=" * (-len(token) % 8))
    assert len(token) * 5 > len(raw) * 8  # the last character has unused low bits
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    alias = token[:-1] + alphabet[alphabet.index(token[-1]) ^ 1]
    assert base64.b32decode(alias.upper() + "=" * (-len(alias) % 8)) == raw
    with pytest.raises(InvalidVerp):
        read_verp_token(KEYS, alias)


def test_other_secret_and_rotation() -> None:
    old = make_verp_token(Keyring("old"), "bounce", 1, 2, 3)
    with pytest.raises(InvalidVerp):
        read_verp_token(KEYS, old)
    rotated = Keyring("new", previous="old", previous_until=NOW + timedelta(days=90))
    assert read_verp_token(rotated, old, now=NOW + timedelta(days=89)).delivery_id == 3
    with pytest.raises(InvalidVerp):
        read_verp_token(rotated, old, now=NOW + timedelta(days=91))


def test_find_verp_only_trusts_signed_tokens() -> None:
    good = make_verp_token(KEYS, "bounce", 42, 7, 1234)
    forged = make_verp_token(Keyring("attacker"), "bounce", 1, 1, 1)
    texts = [
        f"To: bounces+{forged}@example.com",
        f"Return-Path: <BOUNCES+{good.upper()}@Example.COM>",
    ]
    found = find_verp(texts, "bounces@example.com", KEYS)
    assert found is not None and found.delivery_id == 1234
    assert find_verp([f"bounces+{good}@example.org"], "bounces@example.com", KEYS) is None
    assert find_verp([f"xbounces+{good}@example.com"], "bounces@example.com", KEYS) is None
    unsubscribe = make_verp_token(KEYS, "unsubscribe", 42, 7)
    text = [f"bounces+{unsubscribe}@example.com"]
    assert find_verp(text, "bounces@example.com", KEYS, purpose="bounce") is None
    assert find_verp(text, "bounces@example.com", KEYS, purpose="unsubscribe") is not None


def test_unsubscribe_mailto_carries_both_tokens() -> None:
    web = make_token(KEYS, "unsubscribe", 42, 7)
    uri = unsubscribe_mailto("bounces@example.com", KEYS, 42, 7, web)
    address, _, query = uri.removeprefix("mailto:").partition("?")
    assert query == f"subject=unsubscribe%20{web}"
    token = address.removeprefix("bounces+").removesuffix("@example.com")
    assert read_verp_token(KEYS, token) == VerpToken("unsubscribe", 42, 7, None)
    assert read_token(KEYS, "unsubscribe", web).subscriber_id == 42


MINIMAL = """\
site:
  title: Test Blog
  base_url: https://blog.example.com/
  postal_address: 1 Example Road
sources:
  - type: markdown
    path: posts
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(MINIMAL + text, encoding="utf-8")
    return path


def test_bounces_config_defaults_and_secrets(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), environ={})
    assert config.bounces.return_path is None and config.bounces.soft_limit == 3
    (tmp_path / "imap.pw").write_text("s3cret\n", encoding="utf-8")
    text = (
        "bounces:\n  return_path: bounces@example.com\n  imap:\n    host: imap.example.com\n"
        "    username: bounces\n    password_file: imap.pw\n    processed_folder: Done\n"
    )
    config = load_config(write(tmp_path, text), environ={"DIGEST_BOUNCES__POSTMARK_PASSWORD": "pm"})
    assert imap_password(config) == "s3cret" and postmark_password(config) == "pm"
    assert config.bounces.imap is not None and config.bounces.imap.effective_port == 993


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "bounces:\n  return_path: not-an-address\n",
            "line 9: bounces.return_path: 'not-an-address'",
        ),
        ("bounces:\n  return_path: a+b@example.com\n", "may not contain '+'"),
        ("bounces:\n  return_path: " + "x" * 22 + "@example.com\n", "at most 21 characters"),
        ("bounces:\n  postmark_password: hunter2\n", "bounces.postmark_password is a secret"),
        (
            "bounces:\n  imap:\n    host: h\n    username: u\n    password: hunter2\n",
            "line 12: bounces.imap.password is a secret",
        ),
        ("bounces:\n  soft_limit: 0\n", "bounces.soft_limit"),
    ],
)
def test_bounces_config_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        load_config(write(tmp_path, text), environ={})
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
