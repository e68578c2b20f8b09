"""The message catalogues: complete, compiled, and used by the email and the pages."""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from digest.render.i18n import LOCALE_DIR, long_date, translate

PO = LOCALE_DIR / "zh" / "LC_MESSAGES" / "messages.po"
POT = LOCALE_DIR / "messages.pot"


def test_every_message_is_translated_into_chinese() -> None:
    catalog = read_po(PO.open("rb"))
    template = read_po(POT.open("rb"))
    missing = []
    for message in template:
        translated = catalog.get(message.id) if message.id else None
        if message.id and (translated is None or not translated.string):
            missing.append(message.id)
    assert missing == []


def _messages(catalog: Catalog) -> dict[object, object]:
    def plain(value: object) -> object:
        return tuple(value) if isinstance(value, list | tuple) else value

    return {plain(m.id): plain(m.string) for m in catalog if m.id}


def test_the_compiled_catalogue_is_up_to_date() -> None:
    """Compared message by message: the header Babel writes (its own version) may differ."""
    catalog = read_po(PO.open("rb"))
    with PO.with_suffix(".mo").open("rb") as handle:
        committed = read_mo(handle)
    assert _messages(committed) == _messages(catalog), "the .mo is stale: run `make messages`"


def test_translations_and_dates() -> None:
    assert translate("zh", "Read more") == "阅读全文"
    assert translate("en", "Read more") == "Read more"
    from datetime import date

    assert long_date(date(2026, 11, 22), "zh") == "2026年11月22日"
    assert long_date(date(2026, 11, 22), "en") == "November 22, 2026"
    assert Path(PO).exists()
