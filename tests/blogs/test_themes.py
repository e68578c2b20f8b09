"""Real blogs, third round: what a blog's *theme* decides (issue 21).

A Jekyll blog on Chirpy sets its permalink under `defaults:` and renders `$…$` on the posts that
say `math: true`; blogdown sites write math in code spans for math-code.js; recent Hugo names
the language with `locale`; GitHub alert markers; the "N more posts" link. The fixture blogs
(jekyll-chirpy, hugo-blogdown, hugo-locale) are written for this project in the style of
public Chirpy, blogdown and Hugo sites; none of their posts is copied.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from digest.blogs.jekyll import post_defaults
from digest.cli import main
from digest.config.load import load_config
from tests.support import paths

BLOGS = paths.TESTS / "fixtures" / "blogs"
ENV = {"DIGEST_DIGEST__LOOKBACK_DAYS": "0"}
# raw TeX (a command, $$, a superscript, a subscript group) or a delimiter left in an excerpt
TEX = re.compile(r"\\[A-Za-z]+|\$\$|\^|_\{|\\\(|\\\[|`")


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    here = Path.cwd()
    work = tmp_path / "work"
    work.mkdir()
    os.chdir(work)
    try:
        yield work
    finally:
        os.chdir(here)


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=ENV if env is None else env)


def init(blog: Path | str) -> Result:
    result = run("init", str(BLOGS / blog if isinstance(blog, str) else blog))
    assert result.exit_code == 0, result.output
    return result


def listed(*extra: str) -> dict[str, dict[str, Any]]:
    result = run("posts", "--json", *extra)
    assert result.exit_code == 0, result.output
    return {row["title"]: row for row in json.loads(result.stdout)}


def copy(blog: str, tmp_path: Path) -> Path:
    target = tmp_path / blog
    shutil.copytree(BLOGS / blog, target)
    return target


# --- Chirpy: the permalink under defaults:, math on the posts that ask -----------------------


def test_chirpy_urls_are_the_themes_and_math_posts_show_labels(folder: Path) -> None:
    # Chirpy sets `permalink: /posts/:title/` under `defaults:`; digest init fell back to
    # Jekyll's date style (/algorithms/data%20structures/2026/02/12/…html, pages that do not
    # exist), and its kramdown math setting left `$O(1)$` as raw dollars.
    out = init("jekyll-chirpy").output
    assert "permalink: /posts/:title/ (defaults: for posts) -> /posts/{title}/" in out
    assert "list of posts: https://bounds.example.dev/archives/ (from the archive page" in out
    assert "a post with math: true also renders $…$: jekyll-theme-chirpy" in out
    posts = listed("--all")
    assert {title: row["url"] for title, row in posts.items()} == {
        "What a Hash Table Lookup Really Costs": "https://bounds.example.dev/posts/hash-table-costs/",
        "Sorting Stability, and Why Your Tests Depend on It": (
            "https://bounds.example.dev/posts/Sorting-Stability/"
        ),
        "Bloom Filters in One Page": "https://bounds.example.dev/posts/bloom-filters/",
        "Cache Lines for the Impatient": "https://bounds.example.dev/posts/cache-lines/",
    }
    assert all(row["status"] == "new" for row in posts.values())
    hashing = posts["What a Hash Table Lookup Really Costs"]["excerpt"]
    assert hashing.startswith("A lookup is [math] on average, but the constant hides a hash")
    assert "With load factor [math], the expected probes" in hashing
    assert "under linear probing are [formula] so at [math] that is about 50 probes." in hashing
    # `\\$5` reaches the page as `\$5`, which MathJax shows as $5; Chirpy's prompt is text
    assert "A small table costs about $5 of RAM a year. Resize before" in hashing
    # a macro-only $$ block shows nothing; the inline math after it is labelled
    bloom = posts["Bloom Filters in One Page"]["excerpt"]
    assert bloom.startswith("A Bloom filter with [math] bits and [math] hash functions answers")
    assert "it needs [math] bits, and [math] follows from there." in bloom
    # no math: true: prices stay prices; kramdown's own $$ is still math
    sorting = posts["Sorting Stability, and Why Your Tests Depend on It"]["excerpt"]
    assert sorting.endswith("costs $5 a month, and $10 for a team.")
    cache = posts["Cache Lines for the Impatient"]["excerpt"]
    assert "speeds up eightfold. [formula] Kramdown renders" in cache
    for title, row in posts.items():
        assert not TEX.search(row["excerpt"]), (title, row["excerpt"])
    config = load_config(folder / "config.yaml", environ={})
    assert config.excerpt.math == "kramdown"
    assert config.site.posts_url == "https://bounds.example.dev/archives/"
    assert config.site.permalink == "/posts/{title}/"


def test_a_posts_own_math_switch_wins_over_the_site(folder: Path, tmp_path: Path) -> None:
    blog = copy("jekyll-chirpy", tmp_path)
    config = blog / "_config.yml"
    config.write_text(config.read_text("utf-8") + "\nmath: true\n", "utf-8")
    for name, switch in (("on", ""), ("off", "math: false\n")):
        (blog / "_posts" / f"2026-01-03-{name}.md").write_text(
            f"---\ntitle: Plan {name}\n{switch}---\n\nThe plan is $x$ dollars.\n", "utf-8"
        )
    assert "math: dollars (from _config.yml (MathJax/KaTeX with $))" in init(blog).output
    posts = listed()
    assert posts["Plan on"]["excerpt"] == "The plan is [math] dollars."  # the site's switch
    assert posts["Plan off"]["excerpt"] == "The plan is $x$ dollars."  # the post's own


MATHJAX_CONFIG = "MathJax = {tex: {inlineMath: [['$', '$'], ['\\\\(', '\\\\)']]}};\n"
MATHJAX_SCRIPT = '<script src="https://cdn.example/mathjax@3/es5/tex-chtml.js"></script>\n'


@pytest.mark.parametrize(
    ("extra", "files", "mode", "source"),
    [
        ("math: true\n", {}, "dollars", "_config.yml (MathJax/KaTeX with $)"),
        ("mathjax: {enable: true}\n", {}, "dollars", "_config.yml"),
        ("katex:\n  js_path: /assets/js/katex\n", {}, "kramdown", "kramdown"),  # no switch
        (
            "defaults:\n  - scope: {path: '', type: posts}\n    values: {math: true}\n",
            {},
            "dollars",
            "_config.yml defaults: for posts",
        ),
        # a layout that configures and loads MathJax with $ on every page
        (
            "",
            {"_includes/head.html": f"<script>{MATHJAX_CONFIG}</script>\n{MATHJAX_SCRIPT}"},
            "dollars",
            "_includes/head.html, on every page",
        ),
        # the same, its configuration in a script file
        (
            "",
            {"_includes/head.html": MATHJAX_SCRIPT, "assets/js/mathjax.js": MATHJAX_CONFIG},
            "dollars",
            "_includes/head.html, on every page",
        ),
        # Chirpy's own files (a fork): the script loads only when the page asks
        (
            "",
            {
                "_includes/js-selector.html": "{% if page.math %}\n"
                "  <script src=\"{{ '/assets/js/data/mathjax.js' | relative_url }}\"></script>\n"
                f"  {MATHJAX_SCRIPT}{{% endif %}}\n",
                "assets/js/data/mathjax.js": MATHJAX_CONFIG,
            },
            "kramdown",
            "a post with math: true also renders $…$: _includes/js-selector.html",
        ),
        (
            "",
            {"_includes/footer.html": '<script src="//yihui.org/js/math-code.js"></script>\n'},
            "backticks",
            "math-code",
        ),
    ],
)
def test_jekyll_site_math_switches_and_theme_files(
    folder: Path, tmp_path: Path, extra: str, files: dict[str, str], mode: str, source: str
) -> None:
    blog = tmp_path / "blog"
    (blog / "_posts").mkdir(parents=True)
    (blog / "_config.yml").write_text(
        "title: M\nurl: https://m.example.org\nlang: en\n" + extra, "utf-8"
    )
    for name, text in files.items():
        (blog / name).parent.mkdir(parents=True, exist_ok=True)
        (blog / name).write_text(text, "utf-8")
    out = init(blog).output
    assert f"math: {mode} (from " in out and source in out, out
    assert load_config(folder / "config.yaml", environ={}).excerpt.math == mode


def test_jekyll_defaults_precedence() -> None:
    config: dict[str, Any] = {
        "defaults": [
            {"scope": {"path": ""}, "values": {"permalink": "/all/:title/", "layout": "x"}},
            {"scope": {"path": "", "type": "posts"}, "values": {"permalink": "/posts/:title/"}},
            {"scope": {"path": "_posts"}, "values": {"math": True}},
            {"scope": {"path": "_posts/drafts"}, "values": {"permalink": "/some/:title/"}},
            {"scope": {"type": "pages"}, "values": {"permalink": "/:basename/"}},
            {"scope": {"path": "blog/*"}, "values": {"permalink": "/glob/"}},
            "not a table",
        ]
    }
    assert post_defaults(config, "_posts") == {
        "permalink": "/posts/:title/",  # later than the first, as specific
        "layout": "x",
        "math": True,  # the more specific path
    }
    assert post_defaults({"defaults": "nonsense"}, "_posts") == {}


# --- blogdown: math in code spans -------------------------------------------------------------


def test_blogdown_math_in_code_spans_keeps_every_sentence(folder: Path) -> None:
    # The closing `$$` of one code span was paired with the opening `$$` of the next: the
    # sentences between them vanished into one [公式]; `\mathcal{X}` reached the excerpt.
    out = init("hugo-blogdown").output
    assert "math: backticks (from the theme hugo-lithium" in out
    assert "no language: the posts are mostly Chinese, so zh" in out
    assert "list of posts: https://stats.example.cn/post/ (from the main section post" in out
    posts = listed()
    assert set(posts) == {"无偏估计与样本方差", "MCMC 的收敛诊断", "数据的价格"}
    estimators = posts["无偏估计与样本方差"]
    assert estimators["url"] == "https://stats.example.cn/2026/01/20/unbiased-estimators/"
    assert estimators["excerpt"] == (
        "样本均值是总体均值的无偏估计： [公式] 但样本方差要除以 [Math] 而不是 [Math]。"
        "这一步常被称为贝塞尔校正。它补偿了用样本均值代替总体均值时损失的一个自由度。 [公式] "
        "于是 [Math]，而 [Math] 只是样本空间的记号。 [代码]"
    )
    # the .markdown blogdown rendered from .Rmarkdown (the .Rmarkdown is not a post)
    assert posts["MCMC 的收敛诊断"]["excerpt"] == (
        "本文的代码需要 coda 包。 诊断收敛时常看 [Math]，它比较链内与链间的方差： [公式] [代码]"
    )
    # code that is not math stays code; \\$5 is $5 as MathJax shows it
    assert posts["数据的价格"]["excerpt"] == (
        "一份公开数据集的授权费是 $5，商业版是 $10 一年。R 里取列表元素写作 list$x$y， "
        "环境变量写作 $HOME，它们都不是公式。"
    )
    for row in posts.values():
        assert not TEX.search(row["excerpt"]), row
    config = load_config(folder / "config.yaml", environ={})
    assert (config.site.locale, config.excerpt.math) == ("zh", "backticks")
    assert config.site.posts_url == "https://stats.example.cn/post/"


@pytest.mark.parametrize("math", ["auto", "dollars", "kramdown", "none"])
def test_blogdown_prose_survives_whatever_the_math_setting(folder: Path, math: str) -> None:
    init("hugo-blogdown")
    env = {**ENV, "DIGEST_EXCERPT__MATH": math}
    rows = json.loads(run("posts", "--json", env=env).stdout)
    excerpt = {r["title"]: r["excerpt"] for r in rows}["无偏估计与样本方差"]
    for sentence in (
        "样本均值是总体均值的无偏估计：",
        "这一步常被称为贝塞尔校正。",
        "它补偿了用样本均值代替总体均值时损失的一个自由度。",
        "只是样本空间的记号。",
    ):
        assert sentence in excerpt, (math, excerpt)


def test_math_code_js_in_the_blogs_own_layouts(folder: Path, tmp_path: Path) -> None:
    blog = copy("hugo-blogdown", tmp_path)
    config = blog / "config.toml"
    config.write_text(config.read_text("utf-8").replace('"hugo-lithium"', '"my-theme"'), "utf-8")
    partial = blog / "layouts" / "partials" / "foot_custom.html"
    partial.parent.mkdir(parents=True)
    partial.write_text(
        '<script src="//cdn.jsdelivr.net/npm/@xiee/utils/js/math-code.min.js" defer></script>\n',
        "utf-8",
    )
    out = init(blog).output
    assert "math: backticks (from layouts/partials/foot_custom.html (math in code spans" in out


def test_a_known_math_code_theme_imported_as_a_hugo_module(folder: Path, tmp_path: Path) -> None:
    blog = copy("hugo-blogdown", tmp_path)
    config = blog / "config.toml"
    text = config.read_text("utf-8").replace('theme = "hugo-lithium"\n', "")
    text += '\n[module]\n  [[module.imports]]\n    path = "github.com/yihui/hugo-xmin"\n'
    config.write_text(text, "utf-8")
    out = init(blog).output
    assert "math: backticks (from the theme github.com/yihui/hugo-xmin" in out


def test_a_hugo_theme_without_math_code_leaves_code_spans_alone(
    folder: Path, tmp_path: Path
) -> None:
    blog = copy("hugo-blogdown", tmp_path)
    config = blog / "config.toml"
    config.write_text(config.read_text("utf-8").replace('"hugo-lithium"', '"my-theme"'), "utf-8")
    out = init(blog).output
    assert "no math setting" in out
    rows = {r["title"]: r for r in json.loads(run("posts", "--json").stdout)}
    # shown as the page shows it: code, with every sentence
    assert "这一步常被称为贝塞尔校正。" in rows["无偏估计与样本方差"]["excerpt"]


# --- Hugo's locale ----------------------------------------------------------------------------


def test_hugo_locale_at_the_root(folder: Path) -> None:
    # `locale = "zh-Hans"` (Hugo 0.158 renamed languageCode): digest init wrote site.locale: en.
    out = init("hugo-locale").output
    assert "language: zh" in out
    assert "list of posts: https://docs.example.org/blog/ (from the main section blog" in out
    config = load_config(folder / "config.yaml", environ={})
    assert (config.site.locale, config.site.posts_url) == ("zh", "https://docs.example.org/blog/")
    posts = listed()
    # GitHub alert markers are dropped, their text (and Hugo's alert title) kept
    assert posts["星图 2.0 发布"]["excerpt"] == (
        "星图 2.0 带来了增量构建和新的插件接口。 升级前请先备份 config/ 目录。 不兼容的变更 "
        "旧的 render 钩子需要改写。 完整的变更列表见发布说明。"
    )
    assert posts["插件接口的设计"]["excerpt"].endswith(" 插件不能修改其他插件的输出。")
    assert not any("[!" in row["excerpt"] for row in posts.values())


@pytest.mark.parametrize(
    ("files", "locale"),
    [
        # under languages.<code>
        (
            {
                "hugo.toml": "baseURL = 'https://l.example.org/'\ntitle = 'L'\n"
                "defaultContentLanguage = 'zh'\n[languages.zh]\nlocale = 'zh-Hans'\nweight = 1\n"
            },
            "zh",
        ),
        # config/_default/languages.zh.toml (the Blowfish layout)
        (
            {
                "config/_default/hugo.toml": "baseURL = 'https://l.example.org/'\ntitle = 'L'\n"
                "defaultContentLanguage = 'zh'\n",
                "config/_default/languages.zh.toml": "locale = 'zh-CN'\nlabel = '中文'\n",
            },
            "zh",
        ),
        # languageCode still works; locale wins over it
        ({"hugo.toml": "baseURL = 'https://l.example.org/'\nlanguageCode = 'zh-cn'\n"}, "zh"),
        (
            {
                "hugo.toml": "baseURL = 'https://l.example.org/'\nlocale = 'en-GB'\n"
                "languageCode = 'zh-cn'\n"
            },
            "en",
        ),
        # nothing named: the posts decide (English posts here)
        ({"hugo.toml": "baseURL = 'https://l.example.org/'\ntitle = 'L'\n"}, "en"),
    ],
)
def test_hugo_language_settings(
    folder: Path, tmp_path: Path, files: dict[str, str], locale: str
) -> None:
    blog = tmp_path / "blog"
    for name, text in files.items():
        (blog / name).parent.mkdir(parents=True, exist_ok=True)
        (blog / name).write_text(text, "utf-8")
    (blog / "content" / "posts").mkdir(parents=True)
    (blog / "content" / "posts" / "one.md").write_text(
        "+++\ntitle = 'A note'\ndate = 2026-01-02\n+++\n\nWritten in English, mostly.\n", "utf-8"
    )
    init(blog)
    assert load_config(folder / "config.yaml", environ={}).site.locale == locale


def test_hugo_with_no_language_and_chinese_posts_is_zh(folder: Path) -> None:
    # docs/blogs.md promised the Chinese-characters test; Hugo's default `en` won instead
    init("hugo-blogdown")
    assert load_config(folder / "config.yaml", environ={}).site.locale == "zh"


# --- "N more posts": the blog's own list page --------------------------------------------------


@pytest.mark.parametrize(
    ("blog", "posts_url", "guessed"),
    [
        ("hexo", "https://hexo.example.com/archives/", False),  # archive_dir
        ("hugo", "https://hugo.example.org/posts/", False),  # the main section
        ("hugo-i18n", "https://i18n.example.dev/posts/", False),
        ("hugo-dirs", "https://dirs.example.dev/zh/posts/", False),  # in its language's subdir
        ("jekyll-chirpy", "https://bounds.example.dev/archives/", False),  # _tabs/archives.md
        ("jekyll", "https://jekyll.example.net/blog/", True),  # no archive page: the home page
    ],
)
def test_posts_url_from_the_generators_rules(
    folder: Path, blog: str, posts_url: str, guessed: bool
) -> None:
    out = init(blog).output
    assert load_config(folder / "config.yaml", environ={}).site.posts_url == posts_url
    said = f'the "N more posts" line links to {posts_url} (the home page, a guess)'
    assert (said in out) is guessed, out
    lines = (folder / "config.yaml").read_text("utf-8").splitlines()
    comments = " ".join(line.strip().removeprefix("#").strip() for line in lines)
    assert ("(the home page, a guess: check it)" in comments) is guessed


def test_posts_url_jekyll_paginate_and_hexo_without_the_archive_generator(
    folder: Path, tmp_path: Path
) -> None:
    blog = tmp_path / "paged"
    (blog / "_posts").mkdir(parents=True)
    (blog / "_config.yml").write_text(
        "title: P\nurl: https://p.example.org\npaginate: 5\npaginate_path: /blog/page:num/\n",
        "utf-8",
    )
    init(blog)
    config = load_config(folder / "config.yaml", environ={})
    assert config.site.posts_url == "https://p.example.org/blog/"
    (folder / "config.yaml").unlink()
    page = blog / "archive.html"
    page.write_text("---\nlayout: page\npermalink: /all-posts/\n---\n", "utf-8")
    init(blog)
    config = load_config(folder / "config.yaml", environ={})
    assert config.site.posts_url == "https://p.example.org/all-posts/"
    (folder / "config.yaml").unlink()
    hexo = copy("hexo", tmp_path)
    (hexo / "package.json").write_text(
        '{"dependencies": {"hexo": "^7.0.0", "hexo-generator-index": "^4.0.0"}}', "utf-8"
    )
    out = init(hexo).output
    assert "links to https://hexo.example.com/ (the home page: no hexo-generator-archive" in out
