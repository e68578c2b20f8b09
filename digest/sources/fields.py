"""What each permalink field holds for a post, by the rules of the generator that builds the blog.

`generator` is a Markdown source's `generator:` (hexo, hugo, jekyll, or None for a plain folder).
The same field name means what that generator means by its token, so a translated permalink
(`:title` -> `{title}`) gives the URL the blog really serves:

- plain: `{slug}` is front-matter `slug`, else the file name without its `YYYY-MM-DD-` date,
  and for a post in its own folder (`slug/index.md`) the folder's name; `{title}` is `{slug}`.
- hexo: `{title}` is Hexo's post slug: the path under the posts folder without extension, with
  the file name's leading date dropped for a dated `new_post_name` (digest init writes `{path}`
  instead when the blog's `new_post_name` is not dated); front-matter `slug` is ignored, as
  Hexo ignores it. `{name}` is its last segment, `{post_title}` the slugized title,
  `{category}` the slugized category path of the post's last category, `{hash}` Hexo's hash,
  `{abbrlink}` (`_hex`, `32`, `32_hex`) hexo-abbrlink's link: the post's `abbrlink`, else the
  plugin's CRC of the title.
- hugo: `{slug}` is the front-matter slug, else the title, urlized; `{title}` the urlized title;
  `{filename}`/`{contentbasename}` the file name (a bundle's folder name); `{section}` the
  section (the posts folder's name), `{sections}` it and the nested sections below it;
  `{dir}` the folders between the section and the post.
- jekyll: `{title}` the post's slug (front-matter `slug`, else the file name after its date),
  slugified in Jekyll's `pretty` mode with case kept; `{slug}` the same in `default` mode;
  `{name}` the slugified file name; `{categories}` the lowercased categories joined by `/`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from digest.sources.markdown import DATED_NAME
from digest.sources.settings import Generator
from digest.sources.slugs import hexo_abbrlink, hexo_slugize, hugo_urlize, jekyll_slugify

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


@dataclass(frozen=True, slots=True)
class PostFacts:
    """What the fields are made of: the file's place, its front matter, its title and date."""

    relative: PurePosixPath  # under the posts folder, e.g. `2026-01-11-x.md` or `x/index.md`
    meta: Mapping[str, Any]  # front matter, keys lowercased
    title: str
    date: datetime | None
    categories: tuple[str, ...]
    folder: str  # the posts folder's own name (Hugo's section)
    sections: tuple[str, ...] = ()  # Hugo: nested section folders (holding _index.md)

    @property
    def bundle(self) -> bool:
        """A post in its own folder (`slug/index.md`, a Hugo leaf bundle)."""
        return self.relative.stem == "index" and self.relative.parent != PurePosixPath(".")

    @property
    def stem(self) -> str:
        """The file name without extension, or the folder's name for a bundle."""
        return self.relative.parent.name if self.bundle else self.relative.stem

    @property
    def undated_stem(self) -> str:
        match = DATED_NAME.match(self.stem)
        return self.stem[match.end() :] if match else self.stem

    @property
    def dir(self) -> str:
        parent = self.relative.parent.parent if self.bundle else self.relative.parent
        return "" if parent == PurePosixPath(".") else parent.as_posix()

    def meta_text(self, key: str) -> str:
        value = self.meta.get(key)
        return "" if value is None else str(value).strip()


def plain_slug(facts: PostFacts) -> str:
    return facts.meta_text("slug") or facts.undated_stem


def fields_for(generator: Generator | None, facts: PostFacts) -> dict[str, str]:
    """Every field of digest.links.PERMALINK_FIELDS for this post."""
    fields = _date_fields(facts.date)
    slug = plain_slug(facts)
    categories = facts.categories
    fields.update(
        slug=slug,
        title=slug,
        name=facts.stem,
        path=facts.relative.with_suffix("").as_posix(),
        dir=facts.dir,
        id=facts.meta_text("id") or slug,
        category=categories[0] if categories else "",
        categories="/".join(categories),
    )
    if generator == "hexo":
        fields.update(_hexo(facts))
    elif generator == "hugo":
        fields.update(_hugo(facts))
    elif generator == "jekyll":
        fields.update(_jekyll(facts))
    return fields


def _date_fields(date: datetime | None) -> dict[str, str]:
    if date is None:
        return {}
    return {
        "year": f"{date.year:04d}",
        "month": f"{date.month:02d}",
        "day": f"{date.day:02d}",
        "i_month": str(date.month),
        "i_day": str(date.day),
        "hour": f"{date.hour:02d}",
        "minute": f"{date.minute:02d}",
        "second": f"{date.second:02d}",
        "short_year": f"{date.year % 100:02d}",
        "y_day": f"{date.timetuple().tm_yday:03d}",
        "monthname": _MONTHS[date.month - 1],
        "short_month": _MONTHS[date.month - 1][:3],
    }


# hexo-abbrlink's `:abbrlink` by its `alg` and `rep` settings (the post's own, else computed)
ABBRLINK_FIELDS = (
    ("abbrlink", "crc16", "dec"),
    ("abbrlink_hex", "crc16", "hex"),
    ("abbrlink32", "crc32", "dec"),
    ("abbrlink32_hex", "crc32", "hex"),
)


def _hexo(facts: PostFacts) -> dict[str, str]:
    path = facts.relative.with_suffix("").as_posix()
    dated = DATED_NAME.match(path)  # only a top-level dated file parses with :year-:month-:day-
    slug = path[dated.end() :] if dated else path
    fields = {
        "title": slug,
        "slug": slug,
        "name": PurePosixPath(slug).name,
        "post_title": hexo_slugize(facts.title, transform=1),
        "category": _hexo_category(facts.meta),
        "id": facts.meta_text("id"),
    }
    own = facts.meta_text("abbrlink")
    for field, alg, rep in ABBRLINK_FIELDS:
        fields[field] = (
            own if own not in ("", "0") else hexo_abbrlink(facts.title, alg=alg, rep=rep)
        )
    if facts.date is not None:
        stamp = str(int(facts.date.timestamp()))  # Hexo's own hash: an id, not security
        fields["hash"] = hashlib.sha1((slug + stamp).encode()).hexdigest()[:12]
    return fields


def _hexo_category(meta: Mapping[str, Any]) -> str:
    """Hexo's `:category`: the last category of the post, as `parent/child` slugs."""
    value = meta.get("categories", meta.get("category"))
    if value is None or value == "":
        return ""
    chains = value if isinstance(value, list) else [value]
    # A flat list is one hierarchy (a > b); a list of lists holds several categories.
    if any(isinstance(item, list) for item in chains):
        last = chains[-1]
        chain = last if isinstance(last, list) else [last]
    else:
        chain = chains
    return "/".join(hexo_slugize(str(name)) for name in chain if str(name).strip())


def _hugo(facts: PostFacts) -> dict[str, str]:
    slug = facts.meta_text("slug")
    title = hugo_urlize(facts.title)
    filename = hugo_urlize(facts.stem)
    return {
        "slug": hugo_urlize(slug) if slug else title,
        "title": title,
        "filename": filename,
        "contentbasename": filename,
        "slugorfilename": hugo_urlize(slug) if slug else filename,
        "slugorcontentbasename": hugo_urlize(slug) if slug else filename,
        "section": facts.folder,
        "sections": "/".join((facts.folder, *facts.sections)),
        "dir": hugo_urlize(facts.dir),
        "year": str(facts.date.year) if facts.date else "",
    }


def _jekyll(facts: PostFacts) -> dict[str, str]:
    source = facts.meta_text("slug") or facts.undated_stem.rstrip(".")
    categories = jekyll_categories(facts.meta)
    return {
        "title": jekyll_slugify(source, mode="pretty", cased=True),
        "slug": jekyll_slugify(source),
        "name": jekyll_slugify(facts.relative.stem),
        "categories": "/".join(dict.fromkeys(c.lower() for c in categories)),
        "slugified_categories": "/".join(dict.fromkeys(jekyll_slugify(c) for c in categories)),
    }


def jekyll_categories(meta: Mapping[str, Any]) -> list[str]:
    """Jekyll's categories: `categories` (a string splits on whitespace) plus `category`."""
    names: list[str] = []
    for key in ("categories", "category"):
        value = meta.get(key)
        if isinstance(value, str):
            names.extend(value.split() if key == "categories" else [value])
        elif isinstance(value, list):
            names.extend(str(item) for item in value if item is not None)
        elif value is not None:
            names.append(str(value))
    return list(dict.fromkeys(n for n in names if n))
