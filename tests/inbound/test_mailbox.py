"""Reading returned mail from a Maildir and an mbox: seen flags, oversize, bounded reading."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from digest.inbound.classify import classify
from digest.inbound.mailbox import MailboxError, Maildir, Mbox
from tests.support.bounce_fixtures import CONTEXT, fixture_bytes


def maildir(tmp_path: Path) -> Path:
    root = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True)
    return root


def test_maildir_reads_unseen_and_marks_handled_ones_seen(tmp_path: Path) -> None:
    root = maildir(tmp_path)
    (root / "new" / "1001.M1.host").write_bytes(fixture_bytes("postfix-dsn-verp.eml"))
    (root / "new" / "1002.M2.host").write_bytes(fixture_bytes("unknown-bounce.eml"))
    (root / "cur" / "1000.M0.host:2,S").write_bytes(fixture_bytes("gmail-dsn.eml"))  # seen
    (root / "cur" / "1003.M3.host:2,F").write_bytes(fixture_bytes("arf-yahoo.eml"))  # unseen
    with Maildir(root) as box:
        seen = []
        for incoming in box:
            result = classify(incoming.message, CONTEXT, raw=incoming.raw)
            seen.append((incoming.where, result.kind))
            if result.kind != "unknown":
                incoming.mark_handled()
    assert seen == [
        ("new/1001.M1.host", "hard"),
        ("new/1002.M2.host", "unknown"),
        ("cur/1003.M3.host:2,F", "complaint"),
    ]
    assert sorted(os.listdir(root / "new")) == ["1002.M2.host"]  # unclassifiable: left unseen
    assert sorted(os.listdir(root / "cur")) == [
        "1000.M0.host:2,S",
        "1001.M1.host:2,S",
        "1003.M3.host:2,FS",
    ]
    # a second pass finds only what was left unseen: running twice changes nothing more
    assert [i.where for i in Maildir(root)] == ["new/1002.M2.host"]


def test_maildir_skips_oversize_messages_and_says_so(tmp_path: Path) -> None:
    root = maildir(tmp_path)
    (root / "new" / "big").write_bytes(fixture_bytes("gmail-dsn.eml") + b"x" * 5000)
    (root / "new" / "small").write_bytes(fixture_bytes("not-ours.eml"))
    box = Maildir(root, max_bytes=4096)
    assert [i.where for i in box] == ["new/small"]
    assert [s.where for s in box.skipped] == ["new/big"]
    assert "over the 4096 bytes limit; left unread" in box.skipped[0].reason
    assert (root / "new" / "big").exists()


def test_a_folder_that_is_not_a_maildir(tmp_path: Path) -> None:
    with pytest.raises(MailboxError, match="is not a Maildir"):
        Maildir(tmp_path)


def mbox_bytes(*names: str) -> bytes:
    out = b""
    for index, name in enumerate(names):
        body = fixture_bytes(name).replace(b"\nFrom ", b"\n>From ")
        out += f"From MAILER-DAEMON Mon Nov 23 09:14:0{index} 2026\n".encode() + body + b"\n"
    return out


def test_mbox_is_read_in_order_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "bounces.mbox"
    data = mbox_bytes("postfix-dsn-verp.eml", "qmail-prose.eml", "not-ours.eml")
    data = data.replace(b"Keep going!", b"Keep going!\nFrom the start, thanks.")  # needs escaping
    data = data.replace(b"\nFrom the start", b"\n>From the start")
    path.write_bytes(data)
    before = path.stat()
    with Mbox(path) as box:
        items = list(box)
        for item in items:
            item.mark_handled()
    assert [classify(i.message, CONTEXT).kind for i in items] == ["hard", "hard", "not_ours"]
    assert items[0].where == "message 1 (byte 0)"
    assert b"\nFrom the start, thanks." in items[2].raw  # the >From escape is undone
    assert path.read_bytes() == data and path.stat().st_mtime_ns == before.st_mtime_ns


def test_mbox_oversize_message_is_skipped_without_being_kept(tmp_path: Path) -> None:
    path = tmp_path / "bounces.mbox"
    huge = b"From x Mon Nov 23 09:14:00 2026\nSubject: huge\n\n" + (b"y" * 1000 + b"\n") * 300
    huge += b"z" * 200_000 + b"\n"  # one very long line, read in chunks
    path.write_bytes(huge + mbox_bytes("gmail-dsn.eml"))
    box = Mbox(path, max_bytes=64 * 1024)
    items = list(box)
    assert [classify(i.message, CONTEXT).kind for i in items] == ["hard"]
    assert len(box.skipped) == 1 and box.skipped[0].where == "message 1 (byte 0)"
    assert box.skipped[0].reason.endswith("bytes, over the 65536 bytes limit; left unread")


def test_missing_mbox(tmp_path: Path) -> None:
    with pytest.raises(MailboxError, match=r"cannot open the mbox .*No such file"):
        Mbox(tmp_path / "nope.mbox")
