"""How Hexo, Hugo and Jekyll turn titles, file names and categories into URL segments.

Each function reproduces its generator's own code (read from their sources), so that
`digest posts` shows the URL the blog really serves:

- `hexo_slugize`: hexo-util `slugize` - fold diacritics (Hexo's table), drop C0 controls,
  replace every run of whitespace and ``~`!@#$%^&*()-_+=[]{}|\\;:"'<>,.?/`` with one `-`, trim
  `-`; `transform` 1 lowercases, 2 uppercases (Hexo's `filename_case`).
- `hugo_urlize`: Hugo `URLize` - keep letters, digits, marks and ``./\\_#+~-@`` (and `%XX`),
  turn each run of whitespace between kept characters into one `-`, drop everything else, then
  lowercase unless `disablePathToLower`.
- `jekyll_slugify`: Jekyll `Utils.slugify` - mode `default` replaces every run of characters
  other than letters, marks and decimal digits with `-`; `pretty` also keeps
  ``._~!$&'()+,;=@``; `raw` replaces only whitespace; `ascii` keeps only `[A-Za-z0-9]`; then
  leading/trailing `-` go and the result is lowercased unless `cased`.

Non-ASCII letters (Chinese titles) stay as they are; `digest.links` percent-encodes them.
"""

from __future__ import annotations

import zlib

import regex

from digest.sources.diacritics import FOLD

_HEXO_CONTROL = regex.compile(r"[\x00-\x1f]")
_HEXO_SPECIAL = regex.compile(r"""[\s~`!@#$%^&*()\-_+=\[\]{}|\\;:"'<>,.?/]+""")
_HEXO_SEPARATORS = regex.compile(r"-{2,}")

_JEKYLL_MODES = {
    "raw": regex.compile(r"\s+"),
    "default": regex.compile(r"[^\p{M}\p{L}\p{Nd}]+"),
    "pretty": regex.compile(r"[^\p{M}\p{L}\p{Nd}._~!$&'()+,;=@]+"),
    "ascii": regex.compile(r"[^A-Za-z0-9]+"),
}


def hexo_slugize(text: str, transform: int = 0) -> str:
    folded = "".join(FOLD.get(char, char) if ord(char) > 0x7E else char for char in text)
    slug = str(_HEXO_SPECIAL.sub("-", _HEXO_CONTROL.sub("", folded)))
    slug = str(_HEXO_SEPARATORS.sub("-", slug)).strip("-")
    if transform == 1:
        return slug.lower()
    if transform == 2:
        return slug.upper()
    return slug


_HUGO_KEPT = regex.compile(r"[\p{L}\p{Nd}\p{M}./\\_#+~@-]")


def _hugo_allowed(text: str, index: int, char: str) -> bool:
    if _HUGO_KEPT.match(char):
        return True
    return char == "%" and regex.match(r"[0-9A-Fa-f]{2}", text[index + 1 : index + 3]) is not None


def hugo_urlize(text: str, lower: bool = True) -> str:
    out: list[str] = []
    pending_hyphen = was_hyphen = False
    for index, char in enumerate(text):
        if _hugo_allowed(text, index, char):
            was_hyphen = char == "-"
            if pending_hyphen and not was_hyphen:
                out.append("-")
            pending_hyphen = False
            out.append(char)
        elif out and not was_hyphen and char.isspace():
            pending_hyphen = True
    slug = "".join(out)
    return slug.lower() if lower else slug


def jekyll_slugify(text: str, mode: str = "default", cased: bool = False) -> str:
    pattern = _JEKYLL_MODES.get(mode)
    if pattern is None:  # Jekyll: an unknown mode leaves the text as it is
        return text if cased else text.lower()
    slug = str(regex.sub(r"^-|-$", "", pattern.sub("-", text)))
    return slug if cased else slug.lower()


def jekyll_titleize(slug: str) -> str:
    """Jekyll's title for a post without one: `my-first-post` -> `My First Post`."""
    return " ".join(word.capitalize() for word in slug.split("-"))


def _crc16_arc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def hexo_abbrlink(title: str, *, alg: str = "crc16", rep: str = "dec") -> str:
    """hexo-abbrlink's link for a post without one: CRC-16/ARC (its default) or CRC-32 of the
    title's UTF-8 bytes, in decimal (default) or lowercase hex; the plugin writes it into the
    post's front matter at the next build, so the blog serves it from then on."""
    data = title.encode("utf-8")
    value = zlib.crc32(data) if alg == "crc32" else _crc16_arc(data)
    return format(value, "x") if rep == "hex" else str(value)
