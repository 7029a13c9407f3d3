"""When two values of a job are the same: each type's normalized value, so a repeated value is looked up and charged
once per job.

email: the address (inside `<...>` when written with a display name), lower-cased; phone: the E.164 number (and its
extension) in the row's region; domain: the registrable domain; ip: the canonical address; company: the name
case-folded with its spaces collapsed; darkweb: the provider's query (lower-cased address or registrable domain).
A value that is not one of its type has no key: it is invalid, which costs nothing anyway.
"""

from __future__ import annotations

import ipaddress
import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

from functions.enrich import darkweb
from functions.enrich._hosts import HostError, parse_target, split, to_host

_ADDRESS = re.compile(r"<([^<>\s]+@[^<>\s]+)>\s*$")
_BRACKETED = re.compile(r"^\[([0-9a-fA-F:.]+)\](?::\d+)?$")
_IPV4_WITH_PORT = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){3}):\d+$")


def _email(text: str) -> str | None:
    match = _ADDRESS.search(text) if "<" in text else None
    address = match.group(1) if match else text
    local, _, domain = address.rpartition("@")
    if not local or "." not in domain.strip(".") or any(c.isspace() for c in address):
        return None  # cannot be an address: invalid, and free anyway
    return address.lower()


def _phone(text: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    return f"{e164} ext. {number.extension}" if number.extension else e164


def _domain(text: str) -> str | None:
    try:
        return split(to_host(parse_target(text).host).ascii).registrable
    except HostError:
        return None


def _ip(text: str) -> str | None:
    bracketed = _BRACKETED.match(text)
    with_port = _IPV4_WITH_PORT.match(text)
    candidate = bracketed.group(1) if bracketed else with_port.group(1) if with_port else text
    try:
        return ipaddress.ip_address(candidate).compressed
    except ValueError:
        return None


def key_of(job_type: str, raw: str, region: str = "US") -> tuple[str, str] | None:
    """(the normalized value two rows share when they are the same, the value whose enrichment is the first
    occurrence's), or None for a value with no normalized form. `region`: a phone row's region (its own, the job's or
    the deployment's): the E.164 number stands for the first occurrence, read in its region."""
    text = raw.strip()
    if not text:
        return None
    if job_type == "email":
        key = _email(text)
    elif job_type == "phone":
        key = _phone(text, region)
        return (key, key) if key else None
    elif job_type == "domain":
        key = _domain(text)
    elif job_type == "ip":
        key = _ip(text)
    elif job_type == "company":
        key = " ".join(text.split()).casefold()
    elif job_type == "darkweb":
        query = darkweb.normalize_query(text)
        key = query if isinstance(query, str) else None
    else:
        key = None
    return (key, raw) if key else None
