"""CORS on the functions' own responses: API Gateway answers the preflight, the response must still name the origin.

Browsers only hand a cross-origin response to the page when it carries `Access-Control-Allow-Origin` for that page's
origin, so the API and the stream function add it to every answer to an allowed `Origin` (the stack's
`bulkapi:corsOrigins`, the same list API Gateway's preflight allows).
"""

from __future__ import annotations

# What a page may read besides the CORS-safelisted headers: the download's filename and the replay marker.
EXPOSED_HEADERS = "Content-Disposition, Idempotent-Replayed, X-Request-Id, Retry-After"


def allowed_origins(setting: str) -> frozenset[str]:
    """The origins of a comma-separated setting (`https://app.example.com,https://admin.example.com`)."""
    return frozenset(origin.strip().rstrip("/") for origin in setting.split(",") if origin.strip())


def headers_for(origin: str | None, allowed: frozenset[str]) -> dict[str, str]:
    """The CORS headers for a response to a request from `origin`; none when it is not allowed."""
    if not origin or not allowed or (origin not in allowed and "*" not in allowed):
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": EXPOSED_HEADERS,
        "Vary": "Origin",
    }
