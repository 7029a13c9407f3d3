"""URLs the service connects to on a customer's behalf (a file to fetch and each of its redirects, a webhook endpoint).

One rule for what can be such a URL, applied when it is given (a 400 then, not a failure later) and again to every URL
the service is about to connect to (a redirect's `Location`, a webhook URL stored before this rule):

- whitespace, control characters (a CR/LF would split the request line) and the characters RFC 3986 never allows in a
  URL (`<`, `>`, `"`, `{`, `}`, `|`, `\\`, `^`, backtick) are refused: a client would have to guess what was meant;
- user info (`user:pass@`) is refused: it would be stored and shown back, and is never sent;
- other non-ASCII text is written as a browser writes it: percent-encoded UTF-8 in the path, query and fragment, IDNA
  in the host name (`https://hooks.example/café` is `https://hooks.example/caf%C3%A9`), so the stored URL is one an
  HTTP request line can carry.

No I/O here: whether the host may be contacted is the network guard's call (functions/netguard.py), when connecting.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit, urlunsplit

_REFUSED = re.compile(r'[\x00-\x20\x7f<>"{}|\\^`]')


class UrlError(ValueError):
    """A URL that cannot be used; `blocked` when it is a URL the service refuses to use (not merely malformed)."""

    def __init__(self, message: str, *, blocked: bool = False) -> None:
        super().__init__(message)
        self.blocked = blocked


def _ascii(text: str) -> str:
    return "".join(c if c.isascii() else quote(c, safe="") for c in text)


def clean_url(url: str, *, schemes: tuple[str, ...]) -> str:
    """The URL as it will be requested (non-ASCII encoded); raises UrlError when it cannot be one (see above)."""
    url = url.strip()
    bad = _REFUSED.search(url)
    if bad:
        raise UrlError(f'the URL contains {bad.group()!r} (whitespace, control and {{}}|\\^<>"` must be %-encoded)')
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as exc:
        raise UrlError(f"the URL is not valid: {exc}") from exc
    if parts.scheme not in schemes or not parts.hostname:
        raise UrlError(f"the URL must be an absolute {' or '.join(schemes)} URL", blocked=bool(parts.hostname))
    if parts.username is not None or parts.password is not None:
        raise UrlError("the URL may not carry a user name or password (`user:pass@`)", blocked=True)
    netloc = parts.netloc
    if not netloc.isascii():
        try:
            host = parts.hostname.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise UrlError(f"the host name {parts.hostname!r} is not a valid internationalized name") from exc
        netloc = host + (f":{port}" if port is not None else "")
    return urlunsplit((parts.scheme, netloc, _ascii(parts.path), _ascii(parts.query), _ascii(parts.fragment)))
