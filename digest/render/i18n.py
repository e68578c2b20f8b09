"""Message catalogues and locale-aware formatting for the email and the web pages.

English strings are the message ids; `digest/locale/<lang>/LC_MESSAGES/messages.po` holds the
translations, extracted and compiled with Babel (`make messages`). Jinja2's i18n extension
uses the same `Translations` object, so templates and Python share one catalogue.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import cache
from importlib import resources
from pathlib import Path

from babel.dates import format_date
from babel.support import NullTranslations, Translations

# Compiled catalogues are package data, found through importlib.resources (an installed wheel
# holds them as ordinary files, which is what gettext's loader needs).
LOCALE_DIR = Path(str(resources.files("digest").joinpath("locale")))
LOCALES = ("zh", "en")
DOMAIN = "messages"
_BABEL = {"zh": "zh_Hans_CN", "en": "en"}
_HTML_LANG = {"zh": "zh-CN", "en": "en"}


def supported(locale: str | None, fallback: str) -> str:
    """A locale we have a catalogue for: `locale` if supported, else `fallback`."""
    return locale if locale in LOCALES else fallback


@cache
def translations(locale: str) -> NullTranslations:
    """The catalogue for `locale`; English (the message ids) needs none."""
    if locale == "en":
        return NullTranslations()
    loaded = Translations.load(str(LOCALE_DIR), [locale], DOMAIN)
    if not isinstance(loaded, Translations):
        raise RuntimeError(f"the {locale} message catalogue is missing from {LOCALE_DIR}")
    return loaded


def translate(locale: str, message: str) -> str:
    """`message` in `locale` (extracted by Babel as `translate:2`)."""
    return translations(locale).gettext(message)


def html_lang(locale: str) -> str:
    return _HTML_LANG.get(locale, locale)


def long_date(value: date | datetime, locale: str) -> str:
    """A date for prose: 2026年11月22日 in zh, November 22, 2026 in en."""
    return format_date(value, format="long", locale=_BABEL.get(locale, locale))
