"""WCAG 2 contrast of every visible text in a rendered email, light and dark.

Computed from the final HTML alone: the inline styles premailer wrote (`color`, `background`,
`background-color`, `bgcolor`), inherited the way CSS inherits them, and for dark mode the
`!important` rules inside `@media (prefers-color-scheme: dark)`, matched with cssselect and
ordered by specificity, then source order. Text inside Outlook's conditional comments, the
head, and hidden boxes (the preheader: no height and overflow hidden, or display:none) is not
shown to readers and is skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cssutils
import lxml.html
from lxml.etree import _Element

NAMED = {"white": "#ffffff", "black": "#000000"}
_COLOR = re.compile(r"#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b|rgb\([^)]*\)|\b(?:white|black)\b")
_SKIP = {"head", "style", "title", "script"}


@dataclass(frozen=True)
class Sample:
    text: str
    color: str
    background: str
    ratio: float


def parse_color(value: str) -> str | None:
    found = _COLOR.search(value.lower())
    if found is None:
        return None
    token = found.group(0)
    if token in NAMED:
        return NAMED[token]
    if token.startswith("rgb"):
        r, g, b = (int(float(x)) for x in re.findall(r"[\d.]+", token)[:3])
        return f"#{r:02x}{g:02x}{b:02x}"
    if len(token) == 4:
        return "#" + "".join(c * 2 for c in token[1:])
    return token


def luminance(color: str) -> float:
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def ratio(foreground: str, background: str) -> float:
    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _style(element: _Element) -> dict[str, str]:
    declarations: dict[str, str] = {}
    for part in (element.get("style") or "").split(";"):
        name, _, value = part.partition(":")
        if value.strip():
            declarations[name.strip().lower()] = value.strip()
    return declarations


def _dark_rules(root: _Element) -> dict[_Element, dict[str, str]]:
    """Per element, the colour and background the dark-mode rules give it (winners only)."""
    winners: dict[tuple[int, str], tuple[tuple[int, ...], int, str]] = {}
    elements: dict[int, _Element] = {}
    order = 0
    for style in root.iter("style"):
        sheet = cssutils.parseString(style.text or "", validate=False)
        for rule in sheet.cssRules:
            if (
                rule.type != rule.MEDIA_RULE
                or "prefers-color-scheme: dark" not in rule.media.mediaText
            ):
                continue
            for inner in rule.cssRules:
                if inner.type != inner.STYLE_RULE:
                    continue
                for selector in inner.selectorList:
                    order += 1
                    for element in root.cssselect(selector.selectorText):
                        elements[id(element)] = element
                        for prop in ("color", "background", "background-color"):
                            value = inner.style.getPropertyValue(prop)
                            if not value or inner.style.getPropertyPriority(prop) != "important":
                                continue
                            key = (id(element), "color" if prop == "color" else "background")
                            rank = (tuple(selector.specificity), order, value)
                            if key not in winners or rank[:2] > winners[key][:2]:
                                winners[key] = rank
    result: dict[_Element, dict[str, str]] = {}
    for (element_id, prop), (_, _, value) in winners.items():
        result.setdefault(elements[element_id], {})[prop] = value
    return result


def _hidden(element: _Element) -> bool:
    for node in [element, *element.iterancestors()]:
        style = _style(node)
        if style.get("display", "").startswith("none") or "all" in style.get("mso-hide", ""):
            return True
        if style.get("max-height", "").startswith("0") and "hidden" in style.get("overflow", ""):
            return True
    return False


def samples(html: str, dark: bool = False) -> list[Sample]:
    """Every visible text run with the colour it is drawn in and the background behind it."""
    root = lxml.html.fromstring(html)
    overrides = _dark_rules(root) if dark else {}

    def resolved(element: _Element, prop: str) -> str | None:
        for node in [element, *element.iterancestors()]:
            value = overrides.get(node, {}).get(prop)
            if value is None:
                style = _style(node)
                if prop == "color":
                    value = style.get("color") or node.get("color")
                else:
                    value = style.get("background-color") or style.get("background")
                    value = value or node.get("bgcolor")
            color = parse_color(value) if value else None
            if color is not None:
                return color
        return None

    found = []
    for element in root.iter():
        if not isinstance(element.tag, str) or element.tag in _SKIP:
            continue
        if any(a.tag in _SKIP for a in element.iterancestors()):
            continue
        pieces = [element.text or ""] + [
            child.tail or "" for child in element if isinstance(child.tag, str) or child.tail
        ]
        text = " ".join(" ".join(pieces).split())
        if not text or _hidden(element):
            continue
        color = resolved(element, "color") or "#000000"
        background = resolved(element, "background") or "#ffffff"
        found.append(Sample(text[:60], color, background, ratio(color, background)))
    return found
