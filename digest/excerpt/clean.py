"""Text fit for a template: no control characters, noncharacters or lone surrogates.

Posts carry what their authors pasted: a backspace (U+0008) copied from a terminal, a form feed,
a stray U+FFFF. MJML's parser refuses any of those ("unable to parse next template in root
template"), XML forbids them, and a mail client would show garbage. `clean` removes them from
everything a source reads, and `render` applies it again to what reaches the templates, so one
pasted byte never fails a whole issue.

Removed: C0 controls other than tab and newline (a CR or CRLF becomes a newline first), DEL,
C1 controls (U+0080-U+009F), the noncharacters U+FDD0-U+FDEF and U+xFFFE/U+xFFFF of every plane
(the excerpt's label markers are noncharacters: input can never forge one), and unpaired
surrogates (a JSON feed can encode those; UTF-8 cannot carry them).
"""

from __future__ import annotations

import re

_PLANE_ENDS = "".join(f"{chr(p * 0x10000 + 0xFFFE)}-{chr(p * 0x10000 + 0xFFFF)}" for p in range(17))
_UNWANTED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef" + _PLANE_ENDS + "]")
# The same set in two parts: `re` tests a character against a set of astral ranges slowly
# (~80 ns a character, most of the time `digest posts` spent outside parsing), a set of BMP
# characters fast (~6 ns). Text without astral characters (most posts) needs only the first.
_UNWANTED_BMP = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]")
_UNWANTED_ASTRAL = re.compile("[" + _PLANE_ENDS.removeprefix("\ufffe-\uffff") + "]")


def clean(text: str) -> str:
    """`text` without the characters listed in the module docstring; newlines become LF."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _UNWANTED_BMP.sub("", text)  # surrogates gone: the text encodes to UTF-16 below
    if len(text.encode("utf-16-le")) != 2 * len(text):  # astral characters (emoji): check them
        text = _UNWANTED_ASTRAL.sub("", text)
    return text


def clean_optional(text: str | None) -> str | None:
    return None if text is None else clean(text)
