"""`/archive/feed.xml`: an Atom feed (RFC 4287) of the finished issues, newest first.

Each entry is one issue: its subject as the title, when it finished, a link to the archived
issue, and its posts (title, link to the original post, excerpt) as HTML content. Built with
ElementTree, so every value is escaped as XML; nothing personal is in it.
"""

from __future__ import annotations

import html
from urllib.parse import quote
from xml.etree import ElementTree as ET

from starlette.requests import Request
from starlette.responses import Response

from digest.store.ledger import finished_issues, unfiltered_variant
from digest.web.site import Site

ATOM = "http://www.w3.org/2005/Atom"
ENTRIES = 50


def _content(posts: list[dict[str, object]]) -> str:
    items = []
    for post in posts:
        title = html.escape(str(post.get("title") or ""))
        url = str(post.get("url") or "")
        excerpt = html.escape(str(post.get("excerpt") or ""))
        link = (
            f'<a href="{html.escape(url)}">{title}</a>'
            if url.startswith(("http://", "https://"))
            else title
        )
        items.append(f"<li>{link}{f'<p>{excerpt}</p>' if excerpt else ''}</li>")
    return f"<ul>{''.join(items)}</ul>"


class Feed:
    def __init__(self, site: Site) -> None:
        self.site = site

    def atom(self, request: Request) -> Response:
        config = self.site.config
        web = config.web.base_url
        ET.register_namespace("", ATOM)
        root = ET.Element(f"{{{ATOM}}}feed")
        ET.SubElement(root, f"{{{ATOM}}}title").text = config.site.title
        ET.SubElement(root, f"{{{ATOM}}}id").text = f"{web}/archive/"
        ET.SubElement(root, f"{{{ATOM}}}link", rel="self", href=f"{web}/archive/feed.xml")
        ET.SubElement(root, f"{{{ATOM}}}link", rel="alternate", href=f"{web}/archive/")
        updated = ET.SubElement(root, f"{{{ATOM}}}updated")
        author = ET.SubElement(root, f"{{{ATOM}}}author")
        ET.SubElement(author, f"{{{ATOM}}}name").text = config.site.title
        newest = None
        with self.site.database.session() as session:
            for issue in finished_issues(session, ENTRIES):
                when = issue.finished_at or issue.created_at
                newest = max(newest or when, when)
                variant = unfiltered_variant(session, issue, config.site.locale)
                href = f"{web}/archive/{quote(issue.key, safe='')}/"
                entry = ET.SubElement(root, f"{{{ATOM}}}entry")
                title = variant.subject if variant is not None else issue.key
                ET.SubElement(entry, f"{{{ATOM}}}title").text = title
                ET.SubElement(entry, f"{{{ATOM}}}id").text = href
                ET.SubElement(entry, f"{{{ATOM}}}link", rel="alternate", href=href)
                ET.SubElement(entry, f"{{{ATOM}}}updated").text = when.isoformat()
                ET.SubElement(entry, f"{{{ATOM}}}published").text = issue.created_at.isoformat()
                content = ET.SubElement(entry, f"{{{ATOM}}}content", type="html")
                content.text = _content(issue.posts)
        updated.text = (newest or self.site.clock()).isoformat()
        body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        headers = {"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"}
        return Response(body, media_type="application/atom+xml; charset=utf-8", headers=headers)
