"""Front matter, split from a post's body: YAML, TOML or JSON, as Hexo, Hugo and Jekyll read it.

- YAML between `---` lines (Jekyll, Hexo, Hugo); the closing line may also be `...`. Tabs that
  indent a line become two spaces each, as Hexo does (YAML forbids tab indentation).
- TOML between `+++` lines (Hugo's default), read by the standard library's `tomllib`.
- JSON: an object at the very start of the file (Hugo), read with `json.JSONDecoder.raw_decode`
  so that braces inside strings or a body that follows on the same line are handled; or Hexo's
  JSON, the object's members without braces, closed by a `;;;` line (optionally opened by one).

- Hexo only (`hexo=True`): YAML without its opening `---`, the text before the first `---` line,
  as hexo-front-matter reads it; it counts only when it is a YAML mapping, otherwise the file has
  no front matter (many older Hexo posts start directly with `title: …`).

An opening `---` or `+++` without its closing line is not front matter (a thematic break at the
top of a post). Broken front matter raises `FrontMatterError`, whose message names the format
and, when the parser says where, the line in the file.

Limits, so that one hostile post cannot stall a run: front matter longer than
`MAX_FRONT_MATTER` characters is refused, YAML goes through `safeyaml` (no alias bomb,
no recursive alias, bounded nesting), and JSON or TOML nested too deeply for the parser is
refused, each with a `FrontMatterError` like any other broken front matter.
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import yaml

from digest.sources.safeyaml import YamlLimitError, safe_load

_YAML_OPEN = re.compile(r"-{3,}[ \t]*\n")
_YAML_CLOSE = re.compile(r"^(?:-{3,}|\.\.\.)[ \t]*$", re.MULTILINE)
_TOML_OPEN = re.compile(r"\+{3}[ \t]*\n")
_TOML_CLOSE = re.compile(r"^\+{3}[ \t]*$", re.MULTILINE)
_HEXO_JSON_OPEN = re.compile(r";{3,}[ \t]*\n")
_HEXO_JSON_CLOSE = re.compile(r"^;{3,}[ \t]*$", re.MULTILINE)
_HEXO_JSON_MEMBER = re.compile(r'"[^"\n]*"\s*:')
_JSON_OBJECT = re.compile(r"\{\s*(?:\"|\})")
_HEXO_BARE_CLOSE = re.compile(r"^-{3,}[ \t]*$", re.MULTILINE)
_TABS = re.compile(r"^(\t+)", re.MULTILINE)
_TOML_WHERE = re.compile(r"\(at line (\d+), column (\d+)\)")

# Real front matter is a few hundred bytes; a theme's long gallery list a few kilobytes.
MAX_FRONT_MATTER = 64 * 1024


class FrontMatterError(ValueError):
    """Front matter that cannot be read: the message says which format and where."""


class FrontMatterRefused(FrontMatterError):
    """Front matter over a limit (size, aliases, nesting): refused even where a parse error
    would only mean "this is not front matter" (Hexo's front matter without `---`)."""


def split_front_matter(text: str, *, hexo: bool = False) -> tuple[dict[str, Any], str]:
    """(metadata, body) of a post; `({}, text)` when it has no front matter."""
    text = text.removeprefix("\ufeff")
    if _YAML_OPEN.match(text):
        return _delimited(text, _YAML_OPEN, _YAML_CLOSE, _load_yaml)
    if _TOML_OPEN.match(text):
        return _delimited(text, _TOML_OPEN, _TOML_CLOSE, _load_toml)
    if _HEXO_JSON_OPEN.match(text):
        return _delimited(text, _HEXO_JSON_OPEN, _HEXO_JSON_CLOSE, _load_hexo_json)
    if _JSON_OBJECT.match(text):
        return _json_object(text)
    if _HEXO_JSON_MEMBER.match(text):
        close = _HEXO_JSON_CLOSE.search(text)
        if close is not None:
            body = text[close.end() :].removeprefix("\n")
            return _mapping(_load_hexo_json(text[: close.start()], 0)), body
    if hexo:
        return _hexo_bare_yaml(text)
    return {}, text


def _hexo_bare_yaml(text: str) -> tuple[dict[str, Any], str]:
    """Hexo's front matter without an opening `---`: YAML up to the first `---` line."""
    close = _HEXO_BARE_CLOSE.search(text)
    if close is None or not text[: close.start()].strip() or close.start() > MAX_FRONT_MATTER:
        return {}, text
    try:
        metadata = _load_yaml(text[: close.start()], 0)
    except FrontMatterRefused:
        raise
    except FrontMatterError:
        return {}, text  # not front matter: prose followed by a thematic break
    if not isinstance(metadata, dict) or not metadata:
        return {}, text
    return _mapping(metadata), text[close.end() :].removeprefix("\n")


def _delimited(
    text: str, opening: re.Pattern[str], closing: re.Pattern[str], load: Any
) -> tuple[dict[str, Any], str]:
    start = opening.match(text)
    assert start is not None
    close = closing.search(text, start.end())
    if close is None:
        return {}, text
    matter = text[start.end() : close.start()]
    _check_size(matter)
    body = text[close.end() :].removeprefix("\n")
    return _mapping(load(matter, 1)), body


def _check_size(matter: str) -> None:
    if len(matter) > MAX_FRONT_MATTER:
        raise FrontMatterRefused(
            f"the front matter is longer than {MAX_FRONT_MATTER // 1024} KB "
            f"({len(matter) // 1024} KB)"
        )


def _load_yaml(matter: str, offset: int) -> Any:
    matter = _TABS.sub(lambda m: "  " * len(m.group(1)), matter)
    try:
        return safe_load(matter)  # plain data only, within digest.sources.safeyaml's limits
    except YamlLimitError as exc:
        line = exc.problem_mark.line + 1 + offset if exc.problem_mark else None
        where = f" (line {line})" if line else ""
        raise FrontMatterRefused(f"the front matter is refused: {exc.problem}{where}") from None
    except yaml.YAMLError as exc:
        # the context mark points at what was left open (a bracket, a quote), the problem mark
        # at where YAML gave up, often the closing `---`; the former is where to look
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        where = f" (line {mark.line + 1 + offset}, column {mark.column + 1})" if mark else ""
        raise FrontMatterError(f"the front matter is not valid YAML: {problem}{where}") from None


def _load_toml(matter: str, offset: int) -> Any:
    try:
        return tomllib.loads(matter)
    except RecursionError:
        raise FrontMatterRefused("the front matter is not valid TOML: nested too deeply") from None
    except tomllib.TOMLDecodeError as exc:
        message = _TOML_WHERE.sub(
            lambda m: f"(line {int(m.group(1)) + offset}, column {m.group(2)})", str(exc)
        )
        raise FrontMatterError(f"the front matter is not valid TOML: {message}") from None


def _load_hexo_json(matter: str, offset: int) -> Any:
    return _load_json("{" + matter + "}", offset)


def _load_json(matter: str, offset: int) -> Any:
    _check_size(matter)
    try:
        return json.loads(matter)
    except json.JSONDecodeError as exc:
        raise _json_error(exc, offset) from None
    except RecursionError:
        raise FrontMatterRefused("the front matter is not valid JSON: nested too deeply") from None


def _json_object(text: str) -> tuple[dict[str, Any], str]:
    try:
        metadata, end = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError as exc:
        raise _json_error(exc, 0) from None
    except RecursionError:
        raise FrontMatterRefused("the front matter is not valid JSON: nested too deeply") from None
    _check_size(text[:end])
    return _mapping(metadata), text[end:].lstrip(" \t").removeprefix("\n")


def _json_error(exc: json.JSONDecodeError, offset: int) -> FrontMatterError:
    return FrontMatterError(
        f"the front matter is not valid JSON: {exc.msg} "
        f"(line {exc.lineno + offset}, column {exc.colno})"
    )


def _mapping(metadata: Any) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise FrontMatterError("the front matter is not a mapping of keys to values")
    return {str(key): value for key, value in metadata.items()}
