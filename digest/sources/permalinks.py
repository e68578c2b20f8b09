"""A Hexo, Hugo or Jekyll permalink setting, translated into digest's `{field}` pattern.

Each generator's tokens map to the field of the same meaning (digest.sources.fields computes
them by that generator's rules). A token digest cannot fill is left out and reported, so that
`digest init` can say what it could not carry over.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Translation:
    """Our pattern; the blog's tokens left out; tokens read from each post's front matter."""

    pattern: str
    unsupported: tuple[str, ...] = field(default=())
    from_front_matter: tuple[str, ...] = field(default=())


# -- Hexo ---------------------------------------------------------------------------------------

_HEXO_TOKEN = re.compile(r":(\w*[^_\W])")  # hexo-util Permalink's own token syntax
_HEXO_FIELDS = {
    "year": "year",
    "month": "month",
    "day": "day",
    "i_month": "i_month",
    "i_day": "i_day",
    "hour": "hour",
    "minute": "minute",
    "second": "second",
    "name": "name",
    "post_title": "post_title",
    "id": "id",
    "hash": "hash",
}
_HEXO_DATED_NAME = re.compile(r":year\W*:(?:i_)?month\W*:(?:i_)?day\W*:title")


def hexo_pattern(
    permalink: str,
    *,
    new_post_name: str = ":title.md",
    default_category: str = "uncategorized",
    trailing_html: bool = True,
    trailing_index: bool = True,
    abbrlink: str = "abbrlink",
) -> Translation:
    """Hexo's `permalink` (relative to the site root). `:title` is the post's path under
    `source/_posts` without extension, its date dropped when `new_post_name` puts one in front;
    other tokens are the post's own front-matter keys (hexo-abbrlink's `:abbrlink`)."""
    dated = bool(_HEXO_DATED_NAME.search(new_post_name))
    from_front_matter: list[str] = []

    def token(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "title":
            return "{title}" if dated else "{path}"
        if name == "category":
            return "{category:" + default_category + "}" if default_category else "{category}"
        if name in _HEXO_FIELDS:
            return "{" + _HEXO_FIELDS[name] + "}"
        if name == "abbrlink":  # hexo-abbrlink: `abbrlink` names the field of its alg and rep
            return "{" + abbrlink + "}"
        from_front_matter.append(name)
        return "{fm." + name + "}"

    pattern = _HEXO_TOKEN.sub(token, permalink.strip())
    if not trailing_index and pattern.endswith("index.html"):
        pattern = pattern.removesuffix("index.html")
    if not trailing_html and pattern.endswith(".html"):
        pattern = pattern.removesuffix(".html")
    return Translation("/" + pattern.lstrip("/"), (), tuple(from_front_matter))


# -- Jekyll -------------------------------------------------------------------------------------

JEKYLL_STYLES = {
    "date": "/:categories/:year/:month/:day/:title:output_ext",
    "pretty": "/:categories/:year/:month/:day/:title/",
    "ordinal": "/:categories/:year/:y_day/:title:output_ext",
    "weekdate": "/:categories/:year/W:week/:short_day/:title:output_ext",
    "none": "/:categories/:title:output_ext",
}
_JEKYLL_TOKEN = re.compile(r":([a-z_]+)")
_JEKYLL_FIELDS = {
    "year": "year",
    "month": "month",
    "day": "day",
    "i_month": "i_month",
    "i_day": "i_day",
    "short_year": "short_year",
    "y_day": "y_day",
    "short_month": "short_month",
    "long_month": "monthname",
    "hour": "hour",
    "minute": "minute",
    "second": "second",
    "title": "title",
    "slug": "slug",
    "name": "name",
    "categories": "categories",
    "slugified_categories": "slugified_categories",
}


def jekyll_pattern(permalink: str | None) -> Translation:
    """Jekyll's `permalink`: a named style (`date`, the default, `pretty`, `ordinal`,
    `weekdate`, `none`) or a pattern of `:tokens`; `:output_ext` of a Markdown post is .html."""
    text = (permalink or "date").strip()
    text = JEKYLL_STYLES.get(text.lstrip(":"), text)
    unsupported: list[str] = []

    def token(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "output_ext":
            return ".html"
        if name in _JEKYLL_FIELDS:
            return "{" + _JEKYLL_FIELDS[name] + "}"
        unsupported.append(":" + name)
        return ""

    return Translation(_JEKYLL_TOKEN.sub(token, text), tuple(unsupported))


# -- Hugo ---------------------------------------------------------------------------------------

_HUGO_TOKEN = re.compile(r":(\w+)(\[.+?\])?")  # Hugo's attributeRegexp
_HUGO_FIELDS = {
    "year": "year",
    "month": "month",
    "monthname": "monthname",
    "day": "day",
    "section": "section",
    "sectionslug": "section",
    "sections": "sections",
    "sectionslugs": "sections",
    "title": "title",
    "slug": "slug",
    "slugorfilename": "slugorfilename",
    "filename": "filename",
    "contentbasename": "contentbasename",
    "slugorcontentbasename": "slugorcontentbasename",
}
# Hugo's default without a [permalinks] entry: the file's path, with the slug as last segment.
HUGO_DEFAULT = "/{section}/{dir}/{slugorcontentbasename}/"


def hugo_pattern(permalink: str | None, *, ugly_urls: bool = False) -> Translation:
    """Hugo's `[permalinks]` pattern for the posts section (None: Hugo's path-based default)."""
    unsupported: list[str] = []
    if permalink is None:
        pattern = HUGO_DEFAULT
    else:

        def token(match: re.Match[str]) -> str:
            name, cut = match.group(1), match.group(2)
            if name in _HUGO_FIELDS and cut is None:
                return "{" + _HUGO_FIELDS[name] + "}"
            unsupported.append(match.group(0))
            return ""

        escaped = permalink.strip().replace("\\:", "\x00")
        pattern = _HUGO_TOKEN.sub(token, escaped).replace("\x00", ":")
        pattern = "/" + pattern.lstrip("/")
    if ugly_urls and pattern.endswith("/") and pattern != "/":
        pattern = pattern.rstrip("/") + ".html"
    return Translation(pattern, tuple(unsupported))
