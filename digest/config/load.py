"""Read config.yaml into a `Config`, with `DIGEST_<SECTION>__<KEY>` environment overrides.

`find_config` finds the file (`--config`, else ./config.yaml, else $DIGEST_CONFIG);
`load_config` reads it (at most MAX_CONFIG_BYTES, UTF-8, through digest.sources.safeyaml),
refuses a secret written into it, applies the environment, validates it against
digest.config.schema and compiles the user's templates (digest.config.templatecheck).
Every problem becomes one `ConfigError` sentence naming the file, the line and the key (or
the environment variable), so a typo never shows a traceback or a pydantic dump.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from digest.config.files import apply_environment, find_config, read_config_text, text_sha256
from digest.config.schema import Config
from digest.config.templatecheck import check_templates
from digest.errors import ConfigError
from digest.sources.safeyaml import YamlLimitError, load_with_node


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Read, override from the environment, and validate; every failure is a ConfigError."""
    file = find_config(path)
    environ = os.environ if environ is None else environ
    text = read_config_text(file)
    try:
        data, node = load_with_node(text)  # digest.sources.safeyaml: no alias bomb, bounded nesting
        lines = _key_lines(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        if isinstance(exc, YamlLimitError):
            problem = f"the YAML is refused: {problem}"
        raise ConfigError(f"{file}{where}: {problem}.") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: the configuration must be a mapping of sections.")
    _refuse_secrets_in_file(data, file, lines)
    from_env = apply_environment(data, environ)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, file, lines, from_env)) from None
    resolved = file.resolve()
    config._root = resolved.parent
    config._resolved = resolved
    config._file = file
    config._in_file = frozenset(lines)
    config._from_env = dict(from_env)
    config._text_sha256 = text_sha256(text)
    check_templates(config.path(config.templates_dir))
    return config


SECRET_KEYS = {
    ("smtp", "password"): "DIGEST_SMTP__PASSWORD or smtp.password_file",
    ("web", "secret"): "DIGEST_WEB__SECRET or web.secret_file",
    ("web", "previous_secret"): "DIGEST_WEB__PREVIOUS_SECRET",
    ("metrics", "token"): "DIGEST_METRICS__TOKEN or metrics.token_file",
    ("bounces", "postmark_password"): (
        "DIGEST_BOUNCES__POSTMARK_PASSWORD or bounces.postmark_password_file"
    ),
    ("bounces", "imap", "password"): (
        "DIGEST_BOUNCES__IMAP__PASSWORD or bounces.imap.password_file"
    ),
}


def _refuse_secrets_in_file(
    data: dict[str, Any], file: Path, lines: dict[tuple[str, ...], int]
) -> None:
    """Secrets come from the environment or a file the config names, never config.yaml."""
    for keys, where in SECRET_KEYS.items():
        value: Any = data
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value not in (None, ""):
            line = lines.get(keys)
            at = f", line {line}" if line else ""
            raise ConfigError(
                f"{file}{at}: {'.'.join(keys)} is a secret: set it with {where}, "
                "not in the configuration file."
            )


def _key_lines(node: yaml.Node | None, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    """Map every key path in the YAML document to its 1-based line number."""
    lines: dict[tuple[str, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*prefix, str(key.value))
            if path in lines:
                raise yaml.constructor.ConstructorError(
                    problem=f"duplicate key {'.'.join(path)}", problem_mark=key.start_mark
                )
            lines[path] = key.start_mark.line + 1
            lines.update(_key_lines(value, path))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = (*prefix, str(index))
            lines[path] = item.start_mark.line + 1
            lines.update(_key_lines(item, path))
    return lines


def _describe(
    exc: ValidationError,
    file: Path,
    lines: dict[tuple[str, ...], int],
    from_env: dict[tuple[str, ...], str],
) -> str:
    # an unknown key usually explains the other errors (a typo makes a required key "missing")
    error = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
    loc = tuple(str(p) for p in error["loc"] if not _is_union_tag(p))
    key = ".".join(loc) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        siblings = _known_keys(loc[:-1])
        close = difflib.get_close_matches(loc[-1], siblings, n=1)
        hint = f" (did you mean {'.'.join((*loc[:-1], close[0]))}?)" if close else ""
        message = f"unknown key {key}{hint}"
    elif kind == "missing":
        message = f"{key} is required but missing"
    else:
        reason = str(error["msg"]).removeprefix("Value error, ")
        message = f"{key}: {reason[0].lower()}{reason[1:]}" if reason else key
    env = next((v for k, v in from_env.items() if loc[: len(k)] == k), None)
    if env is not None:
        return f"{file}: {message} (set by environment variable {env})."
    line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None)
    where = f"{file}, line {line}" if line is not None else f"{file}"
    return f"{where}: {message}."


def _is_union_tag(part: object) -> bool:
    return part in ("markdown", "feed")


def _known_keys(loc: tuple[str, ...]) -> list[str]:
    model: type[BaseModel] | None = Config
    for part in loc:
        if model is None:
            return []
        if part.isdigit():
            continue
        field = model.model_fields.get(part)
        annotation = field.annotation if field is not None else None
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
        if part == "sources":
            return [
                "type",
                "path",
                "url",
                "permalink",
                "timeout",
                "generator",
                "languages",
                "language",
            ]
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]
