"""The excerpt contract of DESIGN.md section 3: a golden table, the cut, and properties."""

from __future__ import annotations

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.errors import PostError
from digest.excerpt.mathmode import post_math
from digest.excerpt.pagemath import defines_only
from digest.excerpt.rules import cut_graphemes, excerpt_of, grapheme_count
from digest.excerpt.settings import MATH_MODES, MathMode
from digest.excerpt.tex import looks_like_tex
from digest.sources.document import make_excerpt

FENCE = "```"

# (name, markdown, locale, length, expected excerpt)
GOLDEN: list[tuple[str, str, str, int, str]] = [
    # DESIGN.md's own examples
    (
        "heading and bold",
        "## 概述\n\nMedusa 在 **LM Head** 之后加入多个解码头。",
        "zh",
        350,
        "概述 Medusa 在 LM Head 之后加入多个解码头。",
    ),
    (
        "fenced code and inline math",
        f"结果如下:\n\n{FENCE}python\nprint(1)\n{FENCE}\n\n复杂度为 $O(n^2)$。",
        "zh",
        350,
        "结果如下: [代码] 复杂度为 [Math]。",
    ),
    (
        "display math",
        "define-by-run 的框架\n\n$$\ny = Wx + b\n$$",
        "zh",
        350,
        "define-by-run 的框架 [公式]",
    ),
    ("long text is cut", "字" * 400, "zh", 350, "字" * 350 + "..."),
    # labels in both locales
    (
        "english labels",
        f"Result:\n\n{FENCE}\nx = 1\n{FENCE}\n\ncost $O(n)$ and\n\n$$\na\n$$",
        "en",
        350,
        "Result: [code] cost [math] and [formula]",
    ),
    ("indented code", "前言\n\n    pip install digest\n\n后记", "zh", 350, "前言 [代码] 后记"),
    ("tilde fence", "a\n\n~~~\ncode\n~~~\n\nb", "en", 350, "a [code] b"),
    ("math fence is a formula", f"a\n\n{FENCE}math\nx^2\n{FENCE}", "zh", 350, "a [公式]"),
    ("bracket inline math", "设 \\(x > 0\\) 成立", "zh", 350, "设 [Math] 成立"),
    (
        "bracket display math block",
        "公式:\n\n\\[\nE = mc^2\n\\]\n\n完",
        "zh",
        350,
        "公式: [公式] 完",
    ),
    ("bracket display math inline", "so \\[a+b\\] holds", "en", 350, "so [formula] holds"),
    ("double dollar inline", "见 $$x^2$$ 式", "zh", 350, "见 [公式] 式"),
    (
        "dollars as currency stay text",
        "It costs $5 and $10 today.",
        "en",
        350,
        "It costs $5 and $10 today.",
    ),
    ("escaped dollars stay text", "price \\$x\\$ here", "en", 350, "price $x$ here"),
    ("math inside inline code is code text", "run `$HOME/bin` now", "en", 350, "run $HOME/bin now"),
    # what disappears, what keeps its text
    ("image and alt vanish", "看图 ![架构图 alt](/img/a.png) 结束", "zh", 350, "看图 结束"),
    ("link text kept", "see [the docs](https://example.com/x) now", "en", 350, "see the docs now"),
    (
        "emphasis and inline code",
        "use *very* __strong__ `max_new_tokens`",
        "en",
        350,
        "use very strong max_new_tokens",
    ),
    (
        "hyphens underscores full-width kept",
        "define-by-run、snake_case：“引号”！",
        "zh",
        350,
        "define-by-run、snake_case：“引号”！",
    ),
    ("emoji kept", "写代码 👩‍💻 🇨🇳 👍🏽 ✨", "zh", 350, "写代码 👩‍💻 🇨🇳 👍🏽 ✨"),
    (
        "ordered list keeps numbers",
        "步骤:\n\n1. 安装\n2. 配置\n3. 运行",
        "zh",
        350,
        "步骤: 1. 安装 2. 配置 3. 运行",
    ),
    ("ordered list start", "3. c\n4. d", "en", 350, "3. c 4. d"),
    ("bullets dropped", "- alpha\n- beta\n* gamma", "en", 350, "alpha beta gamma"),
    ("nested lists", "1. one\n   - sub\n2. two", "en", 350, "1. one sub 2. two"),
    ("quote", "> 引用一句话\n\n正文", "zh", 350, "引用一句话 正文"),
    ("table cells", "| a | b |\n|---|---|\n| 1 | 2 |", "en", 350, "a b 1 2"),
    (
        "raw html text kept",
        '<div class="note">注意 <b>加粗</b></div>\n\n后文',
        "zh",
        350,
        "注意 加粗 后文",
    ),
    (
        "script and style dropped",
        "a\n\n<script>alert(1)</script>\n\n<style>p{}</style>\n\nb",
        "en",
        350,
        "a b",
    ),
    ("inline html", "press <kbd>Ctrl</kbd>+<kbd>C</kbd>", "en", 350, "press Ctrl+C"),
    ("html comment dropped", "a <!-- todo --> b", "en", 350, "a b"),
    ("footnote marker dropped", "claim[^1] here\n\n[^1]: source.", "en", 350, "claim here source."),
    ("entities decoded", "a &amp; b &lt;c&gt;", "en", 350, "a & b <c>"),
    ("whitespace runs collapse", "a   b\n\n\n\nc\td", "en", 350, "a b c d"),
    ("soft and hard breaks", "一行\n二行  \n三行", "zh", 350, "一行 二行 三行"),
    ("short post whole, no ellipsis", "短文。", "zh", 350, "短文。"),
    # <!--more--> and summaries
    ("more marker", "导语 **一**\n\n<!--more-->\n\n正文很长", "zh", 350, "导语 一..."),
    ("more marker with spaces", "intro\n\n<!-- more -->\n\nrest", "en", 350, "intro..."),
    ("more marker beats length", "字" * 20 + "\n\n<!--more-->\n\nrest", "zh", 5, "字" * 20 + "..."),
    (
        "more marker inside code is not a marker",
        f"a\n\n{FENCE}\n<!--more-->\n{FENCE}\n\nb",
        "en",
        350,
        "a [code] b",
    ),
    (
        "summary wins",
        "---\nsummary: 作者的 **摘要**\n---\n正文比摘要多",
        "zh",
        350,
        "作者的 摘要...",
    ),
    ("excerpt key", "---\nexcerpt: the gist\n---\nlonger body", "en", 350, "the gist..."),
    ("description key", "---\ndescription: desc\n---\nbody", "en", 350, "desc..."),
    ("summary equal to body has no ellipsis", "---\nsummary: 全文\n---\n全文", "zh", 350, "全文"),
    ("summary beats more marker", "---\nsummary: s\n---\na\n<!--more-->\nb", "en", 350, "s..."),
    (
        "front matter is not body",
        "---\ntitle: 标题\ndate: 2026-01-11\n---\n正文",
        "zh",
        350,
        "正文",
    ),
    # the cut
    ("cut exactly", "abcdefghij", "en", 4, "abcd..."),
    ("exact length is whole", "abcd", "en", 4, "abcd"),
    ("cut keeps ZWJ sequence whole", "ab👩‍💻cd", "en", 3, "ab👩‍💻..."),
    ("cut keeps flags whole", "🇨🇳🇯🇵🇺🇸", "en", 2, "🇨🇳🇯🇵..."),
    ("cut keeps combining marks", "e\u0301e\u0301e\u0301", "en", 2, "e\u0301e\u0301..."),
    ("cut never inside a label", "ab $x$ cd", "en", 5, "ab..."),
    ("label that fits is kept", "ab $x$ cd", "en", 9, "ab [math]..."),
    # real blogs' math (no excerpt.math setting: auto)
    (
        "escaped brackets around words are text",
        "see \\[the docs\\] and \\(notes\\), item\\(s\\), ref \\[1\\], box \\[x\\]",
        "en",
        350,
        "see [the docs] and (notes), item(s), ref [1], box [x]",
    ),
    (
        "escaped brackets around CJK are text",
        "见 \\[官方文档\\] 和 \\(注\\)",
        "zh",
        350,
        "见 [官方文档] 和 (注)",
    ),
    (
        "tex in brackets is math",
        "令 \\(\\alpha_i\\) 与 \\(f(x) = y\\)",
        "zh",
        350,
        "令 [Math] 与 [Math]",
    ),
    (
        "display math with a blank line right after a paragraph line",
        "公式如下：\n$$\na = 1\n\nb = 2\n$$\n后文",
        "zh",
        350,
        "公式如下： [公式] 后文",
    ),
    (
        "bracket display with a blank line",
        "见\n\\[\n\\begin{aligned}\na &= b \\\\\n\nc &= d\n\\end{aligned}\n\\]\n完",
        "zh",
        350,
        "见 [公式] 完",
    ),
    ("inline math over lines", "设 $x +\ny = 1$ 成立", "zh", 350, "设 [Math] 成立"),
    ("spaced inline math", "where $f(x) = y $ holds", "en", 350, "where [math] holds"),
    ("spaced prose dollars stay", "from $ 5 to $ 10", "en", 350, "from $ 5 to $ 10"),
    ("currency after a digit", "it is 5$ or 6$x$", "en", 350, "it is 5$ or 6$x$"),
    (
        "raw environment is a formula",
        "式子\n\n\\begin{equation}\nE = mc^2\n\\end{equation}\n\n完",
        "zh",
        350,
        "式子 [公式] 完",
    ),
    ("display math with a label", "$$\na = b\n$$ (1)\n\nnext", "en", 350, "[formula] next"),
    ("math in a list item", "- a\n\n  $$\n  x\n\n  y\n  $$", "en", 350, "a [formula]"),
    ("escaped dollar inside math", "cost $a\\$b$ ok", "en", 350, "cost [math] ok"),
]


@pytest.mark.parametrize(
    ("markdown", "locale", "length", "expected"),
    [case[1:] for case in GOLDEN],
    ids=[case[0] for case in GOLDEN],
)
def test_golden_excerpts(markdown: str, locale: str, length: int, expected: str) -> None:
    assert make_excerpt(markdown, length=length, locale=locale) == expected


TAGS: list[tuple[str, str, str]] = [
    # Hexo tag plugins and Jekyll Liquid tags
    (
        "hexo codeblock",
        "前言\n\n{% codeblock lang:python %}\nprint(1)\n{% endcodeblock %}\n\n后记",
        "前言 [代码] 后记",
    ),
    ("hexo include_code", "看 {% include_code hello.py lang:python %} 这里", "看 [代码] 这里"),
    (
        "liquid highlight",
        "a\n\n{% highlight ruby %}\nputs 1\n{% endhighlight %}\n\nb",
        "a [代码] b",
    ),
    ("hexo gist", "见 {% gist 996818 %}", "见 [代码]"),
    (
        "hexo note keeps prose",
        "{% note info 标题 %}\n注意**这里**。\n{% endnote %}\n\n正文",
        "注意这里。 正文",
    ),
    (
        "hexo blockquote",
        "{% blockquote Levithan, Wide Awake %}\nDo not dream.\n{% endblockquote %}",
        "Do not dream.",
    ),
    ("hexo pullquote", "{% pullquote right %}\n引用\n{% endpullquote %}", "引用"),
    ("hexo details", "{% details 点击展开 %}\n隐藏的内容\n{% enddetails %}", "隐藏的内容"),
    (
        "hexo link keeps text",
        "文字 {% link 官网 https://hexo.io true 标题 %} 结束",
        "文字 官网 结束",
    ),
    ("hexo post_link title", "见 {% post_link hello-world '你好世界' %}。", "见 你好世界。"),
    (
        "hexo post_link without title",
        "见 {% post_link 你好世界 %}和{% post_link a-b true %}。",
        "见 你好世界和a-b。",
    ),
    ("hexo asset_img vanishes", "图 {% asset_img a.png 说明 %} 完", "图 完"),
    (
        "hexo math block and inline",
        "行内 {% katex %}x^2{% endkatex %} 式\n\n{% math %}\nE=mc^2\n{% endmath %}",
        "行内 [Math] 式 [公式]",
    ),
    (
        "nunjucks and liquid comments",
        "{# note #}shown {% comment %}hidden{% endcomment %}",
        "shown",
    ),
    (
        "unknown pair keeps prose",
        "{% if page.x %}conditional prose{% endif %} done",
        "conditional prose done",
    ),
    (
        "unknown pair of JSON data vanishes",
        '{% mychart %}\n{"a": [1, 2]}\n{% endmychart %}\n\nafter',
        "after",
    ),
    ("media pair vanishes", "{% echarts 400 %}\ntitle: x\n{% endecharts %}\nafter", "after"),
    ("text style tags", "{% label primary@标签文字 %} 和 {% kbd Ctrl %}", "标签文字 和 Ctrl"),
    (
        "liquid outputs vanish",
        "![i]({{ site.baseurl }}/a.png) see [p]({{ site.baseurl }}{% post_url 2026-01-11-x %})",
        "see p",
    ),
    ("tags in a fence are code", "```\n{% codeblock %}\n{{< x >}}\n```\n\nafter", "[代码] after"),
    # Hugo shortcodes
    ("hugo figure vanishes", '{{< figure src="a.png" caption="图注" >}}\n\n正文', "正文"),
    (
        "hugo highlight",
        '{{< highlight go "linenos=table" >}}\nfunc main() {}\n{{< /highlight >}}\n\nafter',
        "[代码] after",
    ),
    (
        "hugo notice keeps prose",
        "{{% notice tip %}}\nA *tip* here.\n{{% /notice %}}",
        "A tip here.",
    ),
    (
        "hugo details",
        '{{< details summary="more" >}}\nhidden prose\n{{< /details >}}',
        "hidden prose",
    ),
    (
        "hugo hint and tabs",
        '{{< tabs "t" >}}\n{{< tab "A" >}}\n{{< hint info >}}提示{{< /hint >}}\n'
        "{{< /tab >}}\n{{< /tabs >}}",
        "提示",
    ),
    (
        "hugo ref in a link, gist",
        'a [x]({{< ref "other.md" >}}) {{< gist spf13 7896402 >}} end',
        "a x [代码] end",
    ),
    (
        "hugo self-closing and escaped",
        "{{< youtube id=x />}} {{</* figure src=x */>}} text",
        "text",
    ),
    ("hugo template text in inline code", "use `{{ .Title }}` in Hugo", "use {{ .Title }} in Hugo"),
    # Jekyll themes pass prose through includes and captures (Minimal Mistakes' notices)
    (
        "jekyll capture shown by markdownify",
        "Intro.\n\n{% capture notice-2 %}\n**Heads up:** the *layout* changed.\n"
        '{% endcapture %}\n\n<div class="notice">{{ notice-2 | markdownify }}</div>\n\nEnd.',
        "Intro. Heads up: the layout changed. End.",
    ),
    (
        "jekyll include with content and title",
        '{% include callout.html type="warning" title="注意" content="先**备份**。" %}\n\n正文',
        "注意 先备份。 正文",
    ),
    (
        "jekyll include of a capture, inline text, others vanish",
        "{% capture tip %}Use a venv.{% endcapture %}A {% include badge.html text='beta' %} "
        '{% include figure image_path="/a.png" caption="A cat" %}build.\n\n'
        "{% include note.html content=tip %}\n\n{% include toc %}",
        "A beta build. Use a venv.",
    ),
]


@pytest.mark.parametrize(("markdown", "expected"), [c[1:] for c in TAGS], ids=[c[0] for c in TAGS])
def test_tags_and_shortcodes(markdown: str, expected: str) -> None:
    assert make_excerpt(markdown, locale="zh") == expected


TAG_PIECES = [
    ("{% note %}", "{% endnote %}"),
    ("{% codeblock js %}", "{% endcodeblock %}"),
    ("{{< hint >}}", "{{< /hint >}}"),
    ("{{% notice %}}", "{{% /notice %}}"),
    ("{{< highlight go >}}", "{{< /highlight >}}"),
    ("{% mystery a b %}", "{% endmystery %}"),
    ("{% if x %}", "{% endif %}"),
]


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.text(alphabet="abxy数据", min_size=1, max_size=5),
        lambda inner: st.tuples(
            st.sampled_from(TAG_PIECES), st.lists(inner, min_size=1, max_size=3), st.booleans()
        ).map(
            lambda t: (
                t[0][0]
                + ("\n" if t[2] else " ")
                + " ".join(t[1])
                + ("\n" if t[2] else " ")
                + t[0][1]
            )
        ),
        max_leaves=8,
    ),
    st.sampled_from(
        ["", "{% img a.png %}", "{{< figure src=x >}}", "{% endnote %}", "{{< /x >}}", "{{ x }}"]
    ),
)
@pytest.mark.slow
def test_no_tag_or_shortcode_survives(document: str, stray: str) -> None:
    excerpt = make_excerpt(f"{stray} {document} {stray}", length=100_000, locale="en")
    for syntax in ("{%", "%}", "{{", "}}", "{#"):
        assert syntax not in excerpt


MODES_TEXT = "i $a$ ii \\(b+c\\) iii $$d$$ iv \\(two words\\) v \\[e = f\\]"


@pytest.mark.parametrize(
    ("math", "expected"),
    [
        ("auto", "i [math] ii [math] iii [formula] iv (two words) v [formula]"),
        ("dollars", "i [math] ii (b+c) iii [formula] iv (two words) v [e = f]"),
        ("brackets", "i $a$ ii [math] iii [formula] iv [math] v [formula]"),
        ("both", "i [math] ii [math] iii [formula] iv [math] v [formula]"),
        ("kramdown", "i $a$ ii (b+c) iii [math] iv (two words) v [e = f]"),
        ("backticks", "i [math] ii [math] iii [formula] iv (two words) v [formula]"),
        ("none", "i $a$ ii (b+c) iii $$d$$ iv (two words) v [e = f]"),
    ],
)
def test_math_modes(math: MathMode, expected: str) -> None:
    assert make_excerpt(MODES_TEXT, locale="en", math=math) == expected
    fence = f"x\n\n{FENCE}math\nE = mc^2\n{FENCE}"
    assert make_excerpt(fence, locale="en", math=math) == "x [formula]"


@pytest.mark.parametrize(
    ("text", "tex"),
    [
        ("x", True),
        ("f(x) = y", True),
        ("a + b", True),
        ("\\frac{1}{2}", True),
        ("x^2", True),
        ("a_{ij}", True),
        ("1 + 1 = 2", True),
        ("\\sin x", True),
        ("\\text{速度}", True),
        ("α + β", True),
        ("the docs", False),
        ("2020", False),
        ("注意", False),
        ("see note 1", False),
        ("", False),
    ],
)
def test_looks_like_tex(text: str, tex: bool) -> None:
    assert looks_like_tex(text) is tex


def test_display_brackets_need_an_operator() -> None:
    assert not looks_like_tex("x", display=True)
    assert looks_like_tex("x = 1", display=True)


def test_default_length_is_350_and_zh() -> None:
    assert make_excerpt("x" * 351) == "x" * 350 + "..."
    assert make_excerpt("$a$") == "[Math]"


def test_broken_front_matter_is_a_post_error() -> None:
    with pytest.raises(PostError, match="not valid YAML"):
        make_excerpt("---\ntitle: [unclosed\n---\nbody")


def test_html_body_follows_the_same_rules() -> None:
    html = (
        "<h2>概述</h2><p>见 <a href='x'>链接</a> 和 <img src='a.png' alt='图'>。</p>"
        "<pre><code>print(1)</code></pre><p>\\(x\\) 与 \\[y\\]</p>"
        "<ol start='2'><li>二</li><li>三</li></ol><script>bad()</script>"
    )
    assert (
        excerpt_of(html, body_format="html")
        == "概述 见 链接 和 。 [代码] [Math] 与 [公式] 2. 二 3. 三"
    )


def test_cut_graphemes_reports_whether_it_cut() -> None:
    assert cut_graphemes("abc", 3) == ("abc", False)
    assert cut_graphemes("abcd", 3) == ("abc", True)


# -- properties -------------------------------------------------------------------------------

WORD = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789数据模型训练张量"),
    min_size=1,
    max_size=8,
)


def _wrap(word: str, style: int) -> str:
    return [
        word,
        f"*{word}*",
        f"**{word}**",
        f"[{word}](https://example.com/{len(word)})",
        f"`{word}`",
        f"_{word}_",
    ][style]


@st.composite
def markdown_documents(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A document of plain words wrapped in random constructs, and the words it holds."""
    paragraphs = draw(
        st.lists(
            st.lists(st.tuples(WORD, st.integers(0, 5)), min_size=1, max_size=8),
            min_size=1,
            max_size=5,
        )
    )
    blocks: list[str] = []
    words: list[str] = []
    for paragraph in paragraphs:
        heading = draw(st.booleans())
        separators = draw(
            st.lists(st.sampled_from([" ", "\n"]), min_size=len(paragraph), max_size=len(paragraph))
        )
        text = "".join(
            _wrap(word, style) + (sep if i < len(paragraph) - 1 else "")
            for i, ((word, style), sep) in enumerate(zip(paragraph, separators, strict=True))
        )
        if heading:
            text = "## " + text.replace("\n", " ")
        blocks.append(text)
        words.extend(word for word, _ in paragraph)
    return "\n\n".join(blocks), words


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(markdown_documents())
def test_markdown_constructs_give_back_exactly_their_words(doc: tuple[str, list[str]]) -> None:
    markdown, words = doc
    assert make_excerpt(markdown, length=100_000) == " ".join(words)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "ab",
                " ",
                "中文",
                "。",
                "👩‍💻",
                "🇨🇳",
                "e\u0301",
                "👍🏽",
                "\n\n",
                " $x$ ",
                " `c` ",
                "x-y_z",
                "\n\n```\ncode\n```\n\n",
            ]
        ),
        max_size=60,
    ),
    st.integers(min_value=1, max_value=60),
    st.sampled_from(["zh", "en"]),
)
@pytest.mark.slow
def test_excerpt_never_exceeds_length_and_never_splits_a_grapheme(
    pieces: list[str], length: int, locale: str
) -> None:
    markdown = "".join(pieces)
    excerpt = make_excerpt(markdown, length=length, locale=locale)
    assert grapheme_count(excerpt) <= length + 3
    whole = make_excerpt(markdown, length=100_000, locale=locale)
    body = excerpt.removesuffix("...")
    # the excerpt is a prefix of the whole plain text, ending on a grapheme boundary
    assert whole.startswith(body)
    boundaries = {m.end() for m in regex.finditer(r"\X", whole)} | {0}
    assert len(body) in boundaries
    if excerpt != whole:
        assert excerpt.endswith("...")
        assert grapheme_count(body) <= length < grapheme_count(whole)
    else:
        assert excerpt == whole and grapheme_count(whole) <= length


# -- math written in code spans, alerts, macros, escaped dollars (issue 21) -------------------

BLOGDOWN = """The estimator is unbiased:

`$$
\\hat{\\theta} = \\frac{1}{n} \\sum_{i=1}^{n} X_i
$$`

Its variance shrinks with the sample. Every sentence here must survive.
`$$
\\operatorname{Var}(\\hat{\\theta}) = \\frac{\\sigma^2}{n}
$$`
So `$\\sigma$` matters, and `$\\mathcal{X}$` is the sample space."""


@pytest.mark.parametrize("math", MATH_MODES)
def test_prose_between_two_code_spans_is_never_swallowed(math: MathMode) -> None:
    excerpt = make_excerpt(BLOGDOWN, length=100_000, locale="en", math=math)
    for sentence in (
        "The estimator is unbiased:",
        "Its variance shrinks with the sample.",
        "Every sentence here must survive.",
        "So",
        "matters, and",
        "is the sample space.",
    ):
        assert sentence in excerpt, (math, excerpt)


def test_backticks_mode_labels_math_in_code_spans() -> None:
    excerpt = make_excerpt(BLOGDOWN, length=100_000, locale="en", math="backticks")
    assert excerpt == (
        "The estimator is unbiased: [formula] Its variance shrinks with the sample. Every "
        "sentence here must survive. [formula] So [math] matters, and [math] is the sample space."
    )
    assert "\\" not in excerpt and "$" not in excerpt


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        # math-code.js: $…$ and \(…\) inline; $$…$$, \[…\] and \begin…\end display
        ("a `$x^2$` b", "a [math] b"),
        ("a `\\(x\\)` b", "a [math] b"),
        ("a `$$x = 1$$` b", "a [formula] b"),
        ("a `\\[x = 1\\]` b", "a [formula] b"),
        ("a\n`\\begin{aligned}\nx &= 1\n\\end{aligned}`\nb", "a [formula] b"),
        # code stays code: an R list access, a shell variable, a lone dollar
        ("call `list$x$y` and `$HOME` or `$`", "call list$x$y and $HOME or $"),
        # the code span wins over a dollar before it: `$5 … $` is no math
        ("costs $5 and `$x$` later", "costs $5 and [math] later"),
        # a code block is code whatever it holds
        ("x\n\n```\n$$a$$\n```", "x [code]"),
    ],
)
def test_backticks_mode(markdown: str, expected: str) -> None:
    assert make_excerpt(markdown, locale="en", math="backticks") == expected


@pytest.mark.parametrize("math", ["auto", "dollars", "both", "kramdown"])
def test_a_dollar_never_pairs_with_one_inside_a_code_span(math: MathMode) -> None:
    text = "Pay $5 now, then run `echo $HOME` and $x$ too."
    excerpt = make_excerpt(text, locale="en", math=math)
    assert excerpt.startswith("Pay $5 now, then run echo $HOME and "), excerpt


@pytest.mark.parametrize(
    "markdown",
    [
        "Notation.\n\n$$\n\\newcommand{\\R}{\\mathbb{R}}\n\\renewcommand{\\P}{\\mathbb{P}}\n$$\n\nDone.",
        "Notation.\n\n$$\\def\\E#1{\\mathbb{E}\\left[#1\\right]} \\let\\eps\\varepsilon$$\n\nDone.",
        "Notation.\n\n$$\n\\DeclareMathOperator*{\\argmax}{arg\\,max} % the operator\n$$\n\nDone.",
        "Notation. $\\newcommand{\\R}{\\mathbb{R}}$\n\nDone.",
    ],
)
def test_a_math_block_that_only_defines_macros_shows_nothing(markdown: str) -> None:
    for math in ("auto", "dollars", "kramdown"):
        assert make_excerpt(markdown, locale="en", math=math) == "Notation. Done."
    code = "Notation. `$$\\newcommand{\\R}{\\mathbb{R}}$$`\n\nDone."
    assert make_excerpt(code, locale="en", math="backticks") == "Notation. Done."


def test_a_block_that_defines_and_uses_a_macro_is_a_formula() -> None:
    text = "$$\n\\newcommand{\\R}{\\mathbb{R}}\nx \\in \\R\n$$"
    assert make_excerpt(text, locale="en") == "[formula]"


@pytest.mark.parametrize(
    ("markdown", "math", "expected"),
    [
        # `\\$` in Markdown reaches the page as `\$`, which MathJax shows as `$`
        ("It costs \\\\$5 and $x$ here.", "auto", "It costs $5 and [math] here."),
        ("It costs \\\\$5.", "kramdown", "It costs $5."),
        ("<p>It costs \\$5.</p>", "dollars", "It costs $5."),
        # no math on the page: the backslash is what it shows
        ("It costs \\\\$5.", "none", "It costs \\$5."),
        # in code, MathJax leaves the text alone
        ("Run `echo \\$5`.", "auto", "Run echo \\$5."),
        # CommonMark's own escape, as before
        ("It costs \\$5.", "auto", "It costs $5."),
    ],
)
def test_an_escaped_dollar_shows_as_mathjax_shows_it(
    markdown: str, math: MathMode, expected: str
) -> None:
    assert make_excerpt(markdown, locale="en", math=math) == expected


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("> [!NOTE]\n> Useful information.\n\nAfter.", "Useful information. After."),
        ("> [!TIP]\n> Helpful advice.", "Helpful advice."),
        ("> [!warning] Mind the gap\n> Body text.", "Mind the gap Body text."),
        ("> [!CAUTION]-\n> Folded.", "Folded."),
        ("> [!IMPORTANT]\n>\n> In its own paragraph.", "In its own paragraph."),
        ("- item\n\n  > [!NOTE]\n  > In a list.", "item In a list."),
        # not a marker: a quote that merely mentions one, a marker outside a quote
        ("> See [!NOTE] above.", "See [!NOTE] above."),
        ("[!NOTE] plain paragraph.", "[!NOTE] plain paragraph."),
    ],
)
def test_github_alert_markers_are_dropped_and_their_text_kept(markdown: str, expected: str) -> None:
    assert make_excerpt(markdown, locale="en") == expected


@pytest.mark.parametrize(
    ("site", "post", "expected"),
    [
        ("kramdown", None, "kramdown"),
        ("kramdown", True, "dollars"),  # Chirpy: `math: true` loads MathJax with `$`
        ("kramdown", False, "kramdown"),  # kramdown's own `$$` stays math
        ("none", True, "dollars"),
        ("brackets", True, "both"),
        ("auto", True, "auto"),
        ("dollars", False, "none"),
        ("backticks", False, "none"),
        ("backticks", True, "backticks"),
    ],
)
def test_a_posts_own_math_switch_wins(site: MathMode, post: bool | None, expected: str) -> None:
    assert post_math(site, post) == expected


@pytest.mark.parametrize(
    ("tex", "only"),
    [
        ("\\newcommand{\\R}{\\mathbb{R}}", True),
        ("\\newcommand\\R{\\mathbb{R}}", True),
        ("\\newcommand{\\norm}[1]{\\left\\lVert#1\\right\\rVert}", True),
        ("\\renewcommand{\\vec}[2][x]{#1_{#2}}", True),
        ("\\def\\E#1{\\mathbb{E}[#1]}\n\\let\\eps=\\varepsilon", True),
        ("% macros\n\\DeclareMathOperator{\\tr}{tr}", True),
        ("\\newcommand{\\R}{\\mathbb{R}} x", False),
        ("\\newcommand{\\R}{\\mathbb{R}", False),  # unclosed
        ("x^2", False),
        ("", False),
    ],
)
def test_defines_only(tex: str, only: bool) -> None:
    assert defines_only(tex) is only


@pytest.mark.parametrize(
    ("math", "expected"),
    [
        ("auto", "As [math] shows, and [math] too."),
        ("kramdown", "As [math] shows, and [math] too."),
        ("none", "As \\eqref{eq:series} shows, and \\ref{fig:1} too."),
    ],
)
def test_equation_references_are_math_where_mathjax_runs(math: MathMode, expected: str) -> None:
    # MathJax numbers \eqref{…} outside delimiters too (Chirpy's own demo post writes one)
    text = "As \\eqref{eq:series} shows, and \\ref{fig:1} too."
    assert make_excerpt(text, locale="en", math=math) == expected


def test_an_escaped_dollar_in_a_feed_entry_shows_as_mathjax_shows_it() -> None:
    html = "<p>It costs \\$5 and $10; run <code>echo \\$HOME</code>.</p>"
    assert excerpt_of(html, body_format="html") == "It costs $5 and $10; run echo \\$HOME."


@pytest.mark.parametrize(
    "body", ["<div>\n<![img](figure.png)\n</div>\n\nAfter.", "Text <![ and more", "<![x y]> z"]
)
def test_a_marked_section_in_raw_html_is_read_as_browsers_read_it(body: str) -> None:
    """`<![img` is not CDATA: Python's HTML parser stopped with an AssertionError on it (a
    post failing `digest posts`); browsers read a bogus comment up to the next `>`."""
    assert isinstance(excerpt_of(body), str)
    assert "After." in excerpt_of("<![img x>\n\nAfter.")
