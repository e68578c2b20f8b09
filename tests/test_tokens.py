"""Signed tokens: round trips, purpose binding, expiry, rotation, and mutations refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.tokens import (
    ClickData,
    ClickTokens,
    InvalidToken,
    Keyring,
    TokenData,
    make_click_token,
    make_token,
    read_click_token,
    read_token,
)

KEYS = Keyring("current-secret")
NOW = datetime(2026, 11, 22, tzinfo=UTC)


def test_round_trip() -> None:
    token = make_token(KEYS, "unsubscribe", 123_456, 47)
    assert read_token(KEYS, "unsubscribe", token) == TokenData(123_456, 47, "unsubscribe")
    assert token.isascii() and len(token) < 80
    assert all(c.isalnum() or c in "-_." for c in token)  # safe in a URL path as it is


def test_purpose_is_bound() -> None:
    token = make_token(KEYS, "unsubscribe", 1, 2)
    for purpose in ("preferences", "confirm"):
        with pytest.raises(InvalidToken):
            read_token(KEYS, purpose, token)


def test_other_secret_is_refused() -> None:
    token = make_token(Keyring("attacker"), "unsubscribe", 1, 2)
    with pytest.raises(InvalidToken):
        read_token(KEYS, "unsubscribe", token)


def test_confirm_tokens_expire() -> None:
    token = make_token(KEYS, "confirm", 5)
    assert read_token(KEYS, "confirm", token).subscriber_id == 5
    with pytest.raises(InvalidToken):
        read_token(KEYS, "confirm", token, now=datetime.now(UTC) + timedelta(days=8))


def test_rotation_keeps_old_tokens_for_the_overlap_only() -> None:
    old = make_token(Keyring("old-secret"), "unsubscribe", 9, 1)
    rotated = Keyring("new-secret", previous="old-secret", previous_until=NOW + timedelta(days=90))
    assert read_token(rotated, "unsubscribe", old, now=NOW + timedelta(days=89)).subscriber_id == 9
    with pytest.raises(InvalidToken):
        read_token(rotated, "unsubscribe", old, now=NOW + timedelta(days=91))
    new = make_token(rotated, "unsubscribe", 9, 1)
    assert read_token(Keyring("new-secret"), "unsubscribe", new).subscriber_id == 9


@pytest.mark.parametrize("bad", ["", ".", "..", "a.b.c", "1.2", "x" * 500, "1.2.", "é.1.x"])
def test_garbage_is_refused(bad: str) -> None:
    with pytest.raises(InvalidToken):
        read_token(KEYS, "unsubscribe", bad)


GOOD = make_token(KEYS, "unsubscribe", 4242, 7)
ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.=+/% é"


@st.composite
def mutations(draw: st.DrawFn) -> str:
    token = list(GOOD)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["replace", "insert", "delete", "truncate", "swap"]))
        position = draw(st.integers(0, max(0, len(token) - 1)))
        if kind == "replace" and token:
            token[position] = draw(st.sampled_from(ALPHABET))
        elif kind == "insert":
            token.insert(position, draw(st.sampled_from(ALPHABET)))
        elif kind == "delete" and token:
            del token[position]
        elif kind == "truncate":
            token = token[:position]
        elif kind == "swap" and len(token) > 1:
            other = draw(st.integers(0, len(token) - 1))
            token[position], token[other] = token[other], token[position]
    return "".join(token)


@pytest.mark.slow
@settings(max_examples=5000, deadline=None)
@given(mutations())
def test_no_mutated_token_is_accepted(mutated: str) -> None:
    if mutated == GOOD:
        return  # a swap of two equal characters, say: not a mutation
    with pytest.raises(InvalidToken):
        read_token(KEYS, "unsubscribe", mutated)


@settings(max_examples=300)
@given(
    st.integers(1, 2**63 - 1),
    st.lists(st.integers(0, 2**31), min_size=1, max_size=5),
    st.one_of(st.none(), st.integers(0, 2**63 - 1)),
)
def test_click_tokens_are_make_click_tokens(
    issue: int, links: list[int], delivery: int | None
) -> None:
    """ClickTokens (the send path's per-recipient click links) makes exactly the tokens
    make_click_token makes, and they read back as what they name."""
    made = ClickTokens(KEYS, issue).links(links, delivery)
    assert set(made) == set(links)
    for link, token in made.items():
        assert token == make_click_token(KEYS, issue, link, delivery)
        assert read_click_token(KEYS, token, now=NOW) == ClickData(issue, link, delivery)


def test_a_click_token_names_its_delivery_and_nothing_else_changes() -> None:
    """Changing the delivery (or the link) of a personal click token breaks its signature,
    and a click token is no unsubscribe token."""
    token = make_click_token(KEYS, 7, 2, 2**63 - 1)
    issue, link, delivery, signature = token.split(".")
    assert delivery == "1y2p0ij32e8e7"  # 2**63 - 1 in base 36: the longest a delivery id takes
    for changed in (
        f"{issue}.{link}.1y2p0ij32e8e6.{signature}",
        f"{issue}.3.{delivery}.{signature}",
        f"{issue}.{link}.{signature}",
    ):
        with pytest.raises(InvalidToken):
            read_click_token(KEYS, changed, now=NOW)
    with pytest.raises(InvalidToken):
        read_token(KEYS, "unsubscribe", token, now=NOW)
