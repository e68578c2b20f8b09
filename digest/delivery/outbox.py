"""The dry run's transport: every message, byte for byte as it would go out, as a `.eml` file.

`digest send --dry-run` runs the same engine as a real send over a list queue (nothing is
claimed or recorded) with this transport in place of SMTP. The folder's old `.eml` files are
removed when the first channel opens, so it always shows one run; `extra` files (the
preview) are written next to them.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from digest.delivery.transport import Attempt, Channel, Kind, TransportError
from digest.models import Recipient


class OutboxTransport:
    def __init__(self, folder: Path, extra: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.extra = extra or {}
        self.written: list[Path] = []
        self._prepared = False

    async def open(self) -> Channel:
        if not self._prepared:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                for old in self.folder.glob("*.eml"):
                    with contextlib.suppress(OSError):
                        old.unlink()
                for name, content in self.extra.items():
                    (self.folder / name).write_text(content, encoding="utf-8")
            except OSError as exc:
                raise TransportError(
                    f"{self.folder}: cannot write the outbox: {exc.strerror}", fatal=True
                ) from None
            self._prepared = True
        return OutboxChannel(self)


class OutboxChannel:
    eight_bit = True
    wire = False

    def __init__(self, outbox: OutboxTransport) -> None:
        self.outbox = outbox

    def usable(self) -> bool:
        return True

    async def close(self) -> None:
        return None

    def abort(self) -> None:
        return None

    async def send(self, sender: str, recipient: Recipient, message: bytes) -> Attempt:
        safe = "".join(c if c.isalnum() or c in "._-@" else "_" for c in recipient.email)
        path = self.outbox.folder / f"{recipient.subscriber_id:07d}-{safe}.eml"
        try:
            path.write_bytes(message)
        except OSError as exc:
            return Attempt(Kind.PERMANENT, f"{path}: {exc.strerror}", server=True)
        self.outbox.written.append(path)
        return Attempt(Kind.ACCEPTED)
