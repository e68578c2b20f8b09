"""The excerpt from markdown-it's tokens, parsed only as far as it needs, is the excerpt of the
old round trip (the whole body rendered to HTML and that HTML parsed again: reference.py), on
every fixture blog, the demo blog, the benchmark's generated posts and documents hypothesis
puts together from the constructs that could tell them apart."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.excerpt.markup import first_heading, markdown_to_text, summary_from
from digest.excerpt.rules import excerpt_of
from digest.excerpt.settings import MATH_MODES, MathMode
from digest.sources.frontmatter import FrontMatterError, split_front_matter
from tests.excerpt.reference import old_excerpt_of, old_first_heading, old_markdown_to_text
from tests.support import paths

ROOT = paths.ROOT
FIXTURES = sorted(
    [
        *(ROOT / "tests" / "fixtures" / "blogs").rglob("*.md"),
        *(ROOT / "examples" / "blog").glob("*.md"),
    ]
)
# lengths that cut inside a word, inside a paragraph, the default, and after the end
CUTS = ((1, "zh"), (40, "en"), (350, "zh"), (5000, "en"))


def document(path: Path) -> tuple[str, str | None]:
    """A post's body and summary, as a folder source splits them (Hexo's bare front matter
    too, for the Hexo fixtures)."""
    text = path.read_text("utf-8")
    try:
        meta, body = split_front_matter(text, hexo=any(p.startswith("hexo") for p in path.parts))
    except FrontMatterError:
        meta, body = {}, text
    return body, summary_from(meta)


def same_everywhere(body: str, summary: str | None, maths: tuple[MathMode, ...]) -> None:
    for math in maths:
        assert markdown_to_text(body, math) == old_markdown_to_text(body, math), math
        for length, locale in CUTS:
            for own in {summary, None}:
                arguments: dict[str, Any] = {
                    "summary": own,
                    "length": length,
                    "locale": locale,
                    "math": math,
                }
                assert excerpt_of(body, **arguments) == old_excerpt_of(body, **arguments), arguments
    assert first_heading(body) == old_first_heading(body)


def test_the_fixtures_are_all_read() -> None:
    assert len(FIXTURES) > 80
    assert any("examples" in path.parts for path in FIXTURES)  # the demo blog


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_fixture_and_demo_post_has_the_same_excerpt(path: Path) -> None:
    body, summary = document(path)
    same_everywhere(body, summary, MATH_MODES)


def test_the_benchmark_blog_has_the_same_excerpts(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from fakeblog import write_blog
    finally:
        sys.path.remove(str(ROOT / "bench"))
    files = write_blog(tmp_path, 60, newest=datetime(2026, 11, 1, tzinfo=UTC), seed=22)
    for path in files:
        body, summary = document(path)
        same_everywhere(body, summary, ("auto",))


# -- generated documents ------------------------------------------------------------------------

INLINE = [
    "word",
    "中文的句子，",
    "emoji 😀👩‍💻",
    "a\\$b",
    "\\\\$x$",
    "$5 and $10",
    "$x^2$",
    "$f(x) = y $",
    "$$a+b$$",
    "\\(x+y\\)",
    "\\(just words\\)",
    "\\[x=1\\]",
    "`code`",
    "`$x$`",
    "`$$\\alpha$$`",
    "`\\(x\\)`",
    "``a`b``",
    "`\\begin{align}x\\end{align}`",
    "*em*",
    "**strong**",
    "_em_",
    "~~del~~",
    "**中文**：",
    "[link](http://x.example)",
    "[ref][r1]",
    "[r1]",
    "![img](a.png)",
    "![alt *x*](b.png)",
    '<span class="katex">k</span>',
    '<span class="math inline">m</span>',
    "<b>bold</b>",
    "<br>",
    "<br/>",
    "<!--more-->",
    "<!-- more -->",
    "<!--MORE-->",
    "&amp;",
    "&#x27;",
    "AT&T",
    "&notanentity",
    "&",
    "<code>c \\$</code>",
    "^[an inline note]",
    "[^1]",
    "{% note %}x{% endnote %}",
    "{% raw %}r{% endraw %}",
    "{{< kbd x >}}",
    "{{ site.url }}",
    "{: .cls}",
    "\\",
    "<",
    ">",
    "<3",
    "a<b",
    "<script>alert(1)</script>",
    "<script>",
    "<style>p{}</style>",
    "<textarea>t",
    "<pre>x</pre>",
    "<pre>",
    "<div",
    "</div>",
    '<math display="block"><mi>x</mi></math>',
    "$\\newcommand{\\R}{x}$",
    "<a href='x'",
    "<![img",
    "<![CDATA[ c ]]>",
    "https://example.com/x",
    "<https://example.com/y>",
    "\t",
    "  ",
]
BLOCKS = [
    "# Heading",
    "## 第二部分",
    "Title\n=====",
    "Sub\n---",
    "- one\n- two",
    "- loose\n\n- list",
    "1. first\n2. second",
    "3. starts at three\n4. four",
    "- outer\n  - inner\n    - deeper",
    "- [ ] task\n- [x] done",
    "> quoted",
    "> [!NOTE]\n> an alert",
    "> [!tip]- folded\n> text",
    "```python\nprint(1)\n```",
    "```math\nx^2\n```",
    "~~~latex\n\\alpha\n~~~",
    "```\nunclosed fence",
    "    indented code",
    "<div>\nblock html\n</div>",
    '<div class="katex-display">x</div>',
    "<div>\n\n*markdown inside*\n\n</div>",
    "<pre>\nunclosed pre",
    "<script>\nvar x = '<p>';\n</script>",
    "<style>\np { }\n",
    "<!--\nmore\n-->",
    "<!--more-->",
    "<!-- a comment",
    "<details><summary>s</summary>\n\nbody\n\n</details>",
    "| a | b |\n|---|:-:|\n| 1 | $x$ |",
    "$$\nx\n\ny\n$$",
    "$$\n\\newcommand{\\R}{x}\n$$",
    "\\[\nx=1\n\\]",
    "\\begin{align}\nx &= 1\n\\end{align}",
    "---",
    "***",
    "[^1]: the note",
    "[r1]: http://r.example",
    "{% codeblock %}\nx\n{% endcodeblock %}",
    "{% note info %}\ntext in a note\n{% endnote %}",
    "{{< highlight go >}}\nfunc f() {}\n{{< /highlight >}}",
    "{: .notice}",
    "* * *",
    "\\$ escaped dollars \\$",
    "line one  \nline two",
    "back\\\nslash break",
]
_inline = st.lists(st.sampled_from(INLINE), min_size=1, max_size=8).flatmap(
    lambda parts: st.sampled_from([" ", "", "\n"]).map(lambda sep: sep.join(parts))
)
_block = st.one_of(st.sampled_from(BLOCKS), _inline, _inline.map(lambda text: "# " + text))
DOCUMENTS = st.lists(_block, min_size=0, max_size=12).flatmap(
    lambda blocks: st.sampled_from(["\n\n", "\n", "\n\n\n"]).map(lambda sep: sep.join(blocks))
)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    DOCUMENTS,
    st.sampled_from(MATH_MODES),
    st.integers(1, 400),
    st.sampled_from(["zh", "en"]),
    st.one_of(st.none(), _inline),
)
def test_generated_documents_have_the_same_excerpt(
    body: str, math: MathMode, length: int, locale: str, summary: str | None
) -> None:
    assert markdown_to_text(body, math) == old_markdown_to_text(body, math)
    arguments: dict[str, Any] = {"length": length, "locale": locale, "math": math}
    assert excerpt_of(body, **arguments) == old_excerpt_of(body, **arguments)
    arguments["summary"] = summary
    assert excerpt_of(body, **arguments) == old_excerpt_of(body, **arguments)
    assert first_heading(body) == old_first_heading(body)


@settings(max_examples=60, deadline=None)
@given(DOCUMENTS, st.sampled_from(MATH_MODES), st.integers(1, 400))
def test_a_few_generated_documents_on_every_run(body: str, math: MathMode, length: int) -> None:
    """The generated corpus in small, for the runs that leave out slow tests."""
    assert excerpt_of(body, length=length, math=math) == old_excerpt_of(
        body, length=length, math=math
    )
