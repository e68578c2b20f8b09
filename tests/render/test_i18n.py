"""The message catalogues: complete, compiled, and used by the email and the pages."""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from babel.util import pathmatch

from digest.render.i18n import LOCALE_DIR, long_date, translate
from tests.support import paths

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


def test_every_message_in_the_sources_is_in_the_catalogue() -> None:
    """Extracted afresh, as `make messages` does (babel.cfg's methods, the same keywords): a
    string added to a template or module but never extracted is caught here, not by a
    reader. (Modules that call no gettext function are skipped, for speed.)"""
    root = paths.TESTS.parent
    with (root / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle)  # type: ignore[no-untyped-call]
    keywords = {"_": None, "ngettext": (1, 2), "translate": (2,)}
    found = set()
    files = [*root.glob("digest/**/*.py"), *root.glob("templates/**/*.j2")]
    for file in files:
        relative = file.relative_to(root).as_posix()
        text = file.read_text("utf-8")
        if file.suffix == ".py" and not any(f"{k}(" in text for k in keywords):
            continue
        [(pattern, method)] = [(p, m) for p, m in method_map if pathmatch(p, relative)][:1]
        for _line, message, _comments, _context in extract_from_file(
            method, str(file), keywords=keywords, options=options_map.get(pattern, {})
        ):
            found.add(message if isinstance(message, str) else message[0])
    assert len(found) > 100  # the extraction saw the sources
    catalog = read_po(PO.open("rb"))
    missing = sorted(m for m in found if not getattr(catalog.get(m), "string", None))
    assert missing == [], "untranslated: run `make messages` and translate these"


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
