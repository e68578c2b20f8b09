"""The splice's wire form (digest.delivery.personalise): what SMTP's DATA carries is exactly
the message dot-stuffed (RFC 5321 4.5.2), whatever the slots hold and wherever a dot starts
a line: in a static segment, in a value, after a value that ends a line (a quoted-printable
one ends in a soft break), with personal click links or without."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.delivery.personalise import Headers, MessageTemplate, Personal
from digest.models import Rendered

PIECES = st.sampled_from(
    [
        "x",
        ".",
        "..",
        "\n",
        " ",
        "x-digest:greeting",
        "x-digest:click-0",
        "x-digest:click-1",
        "x-digest:unsubscribe-url",
        "x-digest:preferences-url",
    ]
)
CONTENT = st.lists(PIECES, max_size=40).map("".join)
VALUES = st.sampled_from([".", "a", ".a.", "a\r\n.b", "https://news.example.com/c/1.0.1.sig"])


@settings(max_examples=400, deadline=None)
@given(CONTENT, CONTENT, VALUES, VALUES, st.sampled_from(["", ".Dot", "Ada"]), st.booleans())
def test_the_wire_form_is_the_message_dot_stuffed(
    html: str, text: str, first: str, second: str, name: str, eight_bit: bool
) -> None:
    rendered = Rendered(
        locale="en",
        subject="s",
        preheader="p",
        html=html,
        text=text,
        mjml="",
        greeting_named="%(name)s",
        greeting_anonymous=".",
    )
    headers = Headers(sender="B <d@blog.example.com>", list_id="B <d.example.com>")
    template = MessageTemplate(rendered, headers, eight_bit=eight_bit)
    personal = Personal(
        email="reader@example.com",
        name=name,
        message_id="<m@blog.example.com>",
        date=datetime(2026, 11, 23, 9, tzinfo=UTC),
        unsubscribe_url=first,
        preferences_url=second,
        mailto=None,
        click_urls={0: first, 1: second},
    )
    plain = template.build(personal)
    assert plain.endswith(b"\r\n")
    assert template.build(personal, wire=True) == plain.replace(b"\r\n.", b"\r\n..")
