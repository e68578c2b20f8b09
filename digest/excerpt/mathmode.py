"""Which math delimiters one post's page renders: the blog's `excerpt.math`, and the post's own
switch (front matter `math: true`), which wins (digest.excerpt.tex parses what they say).

Standard library only, so that the post cache (digest.sources.cache) and the read of a blog can
tell which excerpt settings a post has without loading the Markdown machinery.
"""

from __future__ import annotations

from collections.abc import Mapping

from digest.excerpt.settings import MathMode

# The delimiters each mode parses as math (digest.excerpt.tex).
DELIMITERS: dict[str, frozenset[str]] = {
    "auto": frozenset({"$", "$$", "\\(", "\\["}),
    "dollars": frozenset({"$", "$$"}),
    "brackets": frozenset({"\\(", "\\[", "$$"}),
    "both": frozenset({"$", "$$", "\\(", "\\["}),
    "kramdown": frozenset({"$$"}),
    "backticks": frozenset({"$", "$$", "\\(", "\\["}),
    "none": frozenset(),
}
# The mode of a post whose front matter turns math on (`math: true`): the page loads MathJax or
# KaTeX, whose dollar delimiters every theme configures, on top of what the Markdown renderer does.
_WITH_DOLLARS: dict[MathMode, MathMode] = {
    "brackets": "both",
    "kramdown": "dollars",
    "none": "dollars",
}

MATH_SWITCHES = ("math", "mathjax", "katex")
_ON = frozenset({"true", "yes", "on", "1"})
_OFF = frozenset({"false", "no", "off", "0", "none", ""})


def math_switch(front_matter: Mapping[str, object]) -> bool | None:
    """A post's own math switch: the first of `math`, `mathjax`, `katex` its front matter sets
    (true/false, a table with `enable`, as LoveIt writes it, or an engine's name), else None."""
    for key in MATH_SWITCHES:
        value = front_matter.get(key)
        if value is not None:
            return _switch(value)
    return None


def _switch(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, Mapping):
        for key in ("enable", "enabled"):
            if key in value:
                return _switch(value[key])
        return True
    if isinstance(value, str | int):
        text = str(value).strip().lower()
        return False if text in _OFF else True if text in _ON or text.isalpha() else None
    return None


def post_math(site: MathMode, post: bool | None) -> MathMode:
    """The delimiters one post's page renders: the site's (`excerpt.math`), unless the post's
    front matter turns math on or off (`math: true`, `math_switch`). On, the
    page loads MathJax or KaTeX with dollar delimiters (Chirpy, PaperMod, NexT, Fluid…); off,
    only what the Markdown renderer itself parses stays math (kramdown's `$$`)."""
    if post is None:
        return site
    if post:
        return site if "$" in DELIMITERS[site] else _WITH_DOLLARS[site]
    return "kramdown" if site == "kramdown" else "none"
