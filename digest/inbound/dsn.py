"""RFC 3464 delivery status notifications: one record per recipient of the report.

A `message/delivery-status` part (or RFC 6533's `message/global-delivery-status`) holds a
per-message block, then one block per recipient with `Action`, `Status`, `Final-Recipient`,
optionally `Original-Recipient`, `Diagnostic-Code` and `Remote-MTA`. Python's email package
parses the blocks for the first type and leaves the second as text; both are read here, and a
block without a usable recipient address is skipped rather than guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser

from digest.inbound.parts import address_of, part_text, parts_of_type


@dataclass(frozen=True, slots=True)
class DsnRecipient:
    """One recipient's fields. `address` is Original-Recipient if given, else Final-Recipient."""

    address: str
    final_recipient: str | None
    original_recipient: str | None
    action: str  # failed, delayed, delivered, relayed, expanded (lowercased, comments dropped)
    status: str | None
    diagnostic: str | None
    remote_mta: str | None

    @property
    def addresses(self) -> tuple[str, ...]:
        """The originally addressed recipient first, then the final one when it differs."""
        found = [a for a in (self.original_recipient, self.final_recipient) if a]
        return tuple(dict.fromkeys(found))


def _blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    text = part_text(part).replace("\r\n", "\n")
    return [
        HeaderParser().parsestr(chunk.strip() + "\n", headersonly=True)
        for chunk in text.split("\n\n")
        if chunk.strip()
    ]


def _field(block: Message, name: str) -> str | None:
    value = block.get(name)
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _value(field: str | None) -> str | None:
    """The value after `type;` in a typed field (`smtp; 550 5.1.1 ...`, `dns; mx.example`)."""
    if field is None:
        return None
    kind, sep, rest = field.partition(";")
    return (rest.strip() or None) if sep and " " not in kind.strip() else field


def delivery_status(message: Message) -> list[DsnRecipient]:
    """Every per-recipient block of every delivery-status part, in order."""
    recipients: list[DsnRecipient] = []
    for part in parts_of_type(message, "message/delivery-status", "message/global-delivery-status"):
        for block in _blocks(part):
            final = _field(block, "Final-Recipient")
            original = _field(block, "Original-Recipient")
            final_address = address_of(final) if final else None
            original_address = address_of(original) if original else None
            address = original_address or final_address
            action = (_field(block, "Action") or "").lower().split("(")[0].strip()
            if address is None or not action:
                continue  # the per-message block, or a block we cannot attribute
            status = _field(block, "Status")
            recipients.append(
                DsnRecipient(
                    address=address,
                    final_recipient=final_address,
                    original_recipient=original_address,
                    action="failed" if action.startswith(("fail", "error", "expired")) else action,
                    status=status.split()[0] if status else None,
                    diagnostic=_value(_field(block, "Diagnostic-Code")),
                    remote_mta=_value(_field(block, "Remote-MTA")),
                )
            )
    return recipients
