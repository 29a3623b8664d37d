"""Normalized keys for matching people across spellings: the one place that computes them.

Import matching (services/imports.py) uses them today; search and duplicate detection will
store them on each lead. Two values that mean the same address or number get the same key:

- email: trimmed, lower-cased; for the common providers that ignore them, a `+tag` (and,
  for Gmail, dots) in the local part removed: `John.Doe+crm@GMail.com` → `johndoe@gmail.com`;
- phone: E.164 (`+14155550100`) by `phonenumbers`, numbers without a country code read in
  `DEFAULT_REGION`; text that is no phone number keeps its digits only (`+` kept), so
  formatting (spaces, dots, dashes, brackets) never matters.

Blank or unusable input gives None: no key, never a match.
"""

import re

import phonenumbers

DEFAULT_REGION = "US"
# Providers where `local+tag@domain` reaches `local@domain`.
PLUS_TAG_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "fastmail.com",
        "fastmail.fm",
        "proton.me",
        "protonmail.com",
        "pm.me",
        "yahoo.com",
        "zoho.com",
    }
)
# Providers that ignore dots in the local part.
DOTLESS_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}
NOT_DIGITS = re.compile(r"[^0-9]")


def email_key(email: str | None) -> str | None:
    """The address's matching key, or None when it is blank or has no `@`."""
    if email is None:
        return None
    text = email.strip().lower()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        return None
    if domain in PLUS_TAG_DOMAINS:
        local = local.split("+", 1)[0]
    if domain in DOTLESS_DOMAINS:
        local = local.replace(".", "")
    domain = DOMAIN_ALIASES.get(domain, domain)
    return f"{local}@{domain}" if local else None


def phone_key(phone: str | None, region: str = DEFAULT_REGION) -> str | None:
    """The number in E.164, or its digits (with a leading `+` kept) when it is none."""
    if phone is None or not phone.strip():
        return None
    text = phone.strip()
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and phonenumbers.is_possible_number(parsed):
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    digits = NOT_DIGITS.sub("", text)
    if not digits:
        return None
    return ("+" if text.startswith("+") else "") + digits
