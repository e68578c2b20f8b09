"""Line wrapping for mail: the CJK-aware text wrapper and the HTML folder for 8bit parts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.excerpt.markup import html_to_text
from digest.render.wrap import HTML_LINE, fold_html, width, wrap_text


def test_cjk_paragraphs_wrap_under_78_columns_without_losing_a_character() -> None:
    text = (
        "刚从其他语言转到 Python 做数值计算的同学，最常见的性能问题就是在 NumPy 数组上写 for 循环。"
        * 4
    )
    lines = wrap_text(text).split("\n")
    assert len(lines) > 1 and all(width(line) <= 78 for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    assert not any(line.startswith(("，", "。")) for line in lines)  # no line opens with them


def test_urls_are_never_broken_and_short_lines_are_untouched() -> None:
    url = "https://blog.example.com/posts/" + "very-long-slug-" * 8
    text = f"阅读全文: {url}\n-- \nshort"
    lines = wrap_text(text).split("\n")
    assert url in lines and "-- " in lines  # the signature separator keeps its space


def test_no_line_exceeds_998_octets() -> None:
    assert all(len(line.encode()) <= 998 for line in wrap_text("😀" * 2000).split("\n"))


def test_fold_html_breaks_long_lines_harmlessly() -> None:
    html = (
        '<div style="font-family:Arial, sans-serif; color:#111">'
        + "中文" * 400
        + "</div>"
        + "<p>"
        + " ".join(["word"] * 400)
        + "</p>"
        + '<!--[if mso | IE]><table role="presentation"><tr><td><![endif]-->' * 20
        + '<a href="https://example.com/x">阅读全文</a>' * 40
    )
    folded = fold_html(html)
    assert all(len(line.encode()) <= HTML_LINE + 10 for line in folded.split("\n"))
    assert html_to_text(folded).text == html_to_text(html).text
    assert folded.count("<!--[if mso | IE]>") == 20  # conditional comments left intact
    assert folded.count("阅读全文") == 40


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "<b>",
                "</b>",
                "文字",
                "word ",
                " ",
                '<td class="x y">',
                "</td>",
                "&amp;",
                "😀",
                "<br>",
            ]
        ),
        max_size=600,
    )
)
def test_fold_html_keeps_the_text(pieces: list[str]) -> None:
    html = "<div>" + "".join(pieces) + "</div>"
    folded = fold_html(html, limit=80)
    assert html_to_text(folded).text == html_to_text(html).text
    assert all(len(line.encode()) <= 80 + 20 for line in folded.split("\n"))
