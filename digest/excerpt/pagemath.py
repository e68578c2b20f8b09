"""What a blog page's scripts do with math that the Markdown leaves them: the excerpt shows
what the reader sees.

- MathJax typesets a block that only defines macros (`\\newcommand`, `\\def`, …) as nothing:
  `defines_only` says so, and the excerpt shows nothing for it either.
- blogdown's math-code.js turns a code span holding math (`` `$x$` ``, `` `$$ … $$` ``) into
  MathJax math: `math_code` says which code spans, and whether inline or display, exactly as
  the script tests them (for `excerpt.math: backticks`, digest.excerpt.tex).
"""

from __future__ import annotations

import regex

_DEFINITION = regex.compile(
    r"\\(?:(?:re|provide)?newcommand\*?|DeclareMathOperator\*?|newenvironment|"
    r"renewenvironment|g?def|let)(?![A-Za-z])"
)
_NAME = regex.compile(r"\s*(?:\{\s*\\[A-Za-z@]+\s*\}|\\[A-Za-z@]+|\\.)")
_OPTION = regex.compile(r"\s*\[[^\]]*\]")
_PARAMETERS = regex.compile(r"[^{}]*")  # \def\name#1#2{…}
_LET = regex.compile(r"\s*=?\s*(?:\\[A-Za-z@]+|\\.|[^\s\\])")
_COMMENT = regex.compile(r"(?:\s|%[^\n]*)*")


def defines_only(tex: str) -> bool:
    """Whether math content only defines macros (`\\newcommand{\\R}{\\mathbb{R}}`, `\\def`,
    `\\DeclareMathOperator`, `\\let`): MathJax typesets such a block as nothing."""
    at, found = _COMMENT.match(tex).end(), False
    while at < len(tex):
        definition = _DEFINITION.match(tex, at)
        if definition is None:
            return False
        command = definition.group()
        name = _NAME.match(tex, definition.end())
        if name is None:
            return False
        at = name.end()
        if command == "\\let":
            target = _LET.match(tex, at)
            if target is None:
                return False
            at = target.end()
        else:
            groups = 2 if "environment" in command else 1
            if command.endswith("def"):
                at = _PARAMETERS.match(tex, at).end()
            else:
                while (option := _OPTION.match(tex, at)) is not None:
                    at = option.end()
            for _ in range(groups):
                end = _group_end(tex, _COMMENT.match(tex, at).end())
                if end is None:
                    return False
                at = end
        at = _COMMENT.match(tex, at).end()
        found = True
    return found


def _group_end(tex: str, at: int) -> int | None:
    """The index after the brace group that opens at `at`, or None when none does."""
    if not tex.startswith("{", at):
        return None
    depth = 0
    index = at
    while index < len(tex):
        char = tex[index]
        if char == "\\":
            index += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return None


def math_code(code: str) -> str | None:
    """What blogdown's math-code.js makes of an inline code span's text: "inline" for `$…$` and
    `\\(…\\)`, "display" for `$$…$$`, `\\[…\\]` and `\\begin{env}…\\end{env}`, None for code."""
    if len(code) >= 3 and code.startswith("$") and code.endswith("$"):
        if code[1] != "$" and code[-2] != "$":
            return "inline"
        if code.startswith("$$") and code.endswith("$$") and len(code) > 4:
            return "display"
        return None
    if len(code) > 4 and code.startswith("\\(") and code.endswith("\\)"):
        return "inline"
    if len(code) > 4 and code.startswith("\\[") and code.endswith("\\]"):
        return "display"
    if _ENVIRONMENT.fullmatch(code):
        return "display"
    return None


_ENVIRONMENT = regex.compile(r"\\begin\{[^}]+\}.+\\end\{[^}]+\}", regex.DOTALL)
