"""A company's home page, read: its title, description and social profile links (the fetch is website.py).

The page is a stranger's HTML: every value is cut to a length, and a "share this page" link is not a profile."""

from __future__ import annotations

import codecs
import logging
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

from functions.enrich.facts import WebsiteFacts

logger = logging.getLogger(__name__)

MAX_TITLE = 300
MAX_DESCRIPTION = 500
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9._:-]+)""", re.IGNORECASE)

SOCIAL_NETWORKS: dict[str, tuple[str, ...]] = {
    "linkedin": ("linkedin.com",),
    "twitter": ("twitter.com", "x.com"),
    "facebook": ("facebook.com",),
    "instagram": ("instagram.com",),
    "youtube": ("youtube.com", "youtu.be"),
    "github": ("github.com",),
}
# "Share this page" buttons point at the network, not at the company's profile.
_SHARE_PATHS = frozenset({"sharer", "sharer.php", "share", "share.php", "intent", "sharearticle", "sharing", "dialog"})


def social_network(href: str) -> tuple[str, str] | None:
    """(network, link) when an href is an absolute link to a profile on a known social network."""
    link = href.strip()
    if link.startswith("//"):
        link = "https:" + link
    try:
        parts = urlsplit(link)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    if parts.path.strip("/").split("/")[0].lower() in _SHARE_PATHS:
        return None
    for network, domains in SOCIAL_NETWORKS.items():
        if any(host == domain or host.endswith("." + domain) for domain in domains):
            return network, link
    return None


def _clean(text: str | None, limit: int) -> str | None:
    collapsed = " ".join((text or "").split())
    return collapsed[:limit] or None


class _PageParser(HTMLParser):
    """Collects the first title, the descriptions and the first link per social network of an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: list[str] = []
        self.description: str | None = None
        self.og_description: str | None = None
        self.links: dict[str, str] = {}
        self._in_title = False
        self._title_seen = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Note titles, meta descriptions and social links."""
        values = {name: value or "" for name, value in attrs}
        if tag == "title" and not self._title_seen:
            self._in_title = True
        elif tag == "meta":
            self._meta(values)
        elif tag == "a" and values.get("href"):
            found = social_network(values["href"])
            if found is not None:
                self.links.setdefault(*found)

    def handle_endtag(self, tag: str) -> None:
        """End the title."""
        if tag == "title" and self._in_title:
            self._in_title = False
            self._title_seen = True

    def handle_data(self, data: str) -> None:
        """Keep the title's text."""
        if self._in_title:
            self.title.append(data)

    def _meta(self, values: dict[str, str]) -> None:
        content = values.get("content", "").strip()
        if not content:
            return
        name = values.get("name", "").strip().lower()
        prop = values.get("property", "").strip().lower()
        if name == "description" and self.description is None:
            self.description = content
        elif "og:description" in (name, prop) and self.og_description is None:
            self.og_description = content


def decode_html(body: bytes, header_charset: str | None) -> str:
    """The text of an HTML body: the Content-Type charset, else a meta charset, else UTF-8 (bad bytes replaced)."""
    found = _META_CHARSET.search(body[:4096])
    for charset in (header_charset, found.group(1).decode("ascii") if found else None):
        if charset:
            try:
                return body.decode(codecs.lookup(charset).name, errors="replace")
            except LookupError:
                continue
    return body.decode("utf-8", errors="replace")


def parse_page(url: str, status: int, html: str) -> WebsiteFacts:
    """The facts of one fetched HTML page."""
    parser = _PageParser()
    try:
        parser.feed(html)
        parser.close()
    except AssertionError:
        # _markupbase asserts on some malformed declarations; what was read up to there still counts.
        logger.info("html parsing stopped early", extra={"url": url})
    links = parser.links
    return WebsiteFacts(
        website_url=url,
        website_status=status,
        website_title=_clean("".join(parser.title), MAX_TITLE),
        website_description=_clean(parser.description or parser.og_description, MAX_DESCRIPTION),
        **{network: links.get(network) for network in SOCIAL_NETWORKS},
    )
