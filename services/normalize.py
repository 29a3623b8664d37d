"""Normalized keys for matching people across spellings: the one place that computes them.

Every path that writes a lead stores `lead_keys` with it (create, update, import, merge, and
the start-up migration for leads stored before); search, duplicate detection and import
matching query them. Two values that mean the same address or number get the same key:

- email: trimmed, lower-cased; for the common providers that ignore them, a `+tag` (and,
  for Gmail, dots) in the local part removed: `John.Doe+crm@GMail.com` → `johndoe@gmail.com`;
- phone: E.164 (`+14155550100`) by `phonenumbers`, numbers without a country code read in
  `DEFAULT_REGION`; text that is no phone number keeps its digits only (`+` kept), so
  formatting (spaces, dots, dashes, brackets) never matters.

- name: accents and case folded, words sorted (`Müller, Zoë` = `zoe muller`);
- search keys, one multikey array (`searchKeys`) under one index, namespaced by a prefix:
  `w:` every prefix of every word of the name, organization, email and lead id (a word is a
  run of letters or digits: `example` finds `jo@mail.example.com`), `t:` a first- or
  last-name word with one letter left out (typos), `e:` the email key, `p:` the phone key
  and its national number, `n:` the name key, `v:` the name key with one letter left out,
  `o:` / `d:` the name key with the organization / domain key.

Blank or unusable input gives None: no key, never a match.
"""

import contextlib
import functools
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

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


def email_keys(email: str | None) -> list[str]:
    """The email key, and the address without a `+tag` on any other domain too: most company
    mail (Google Workspace, Microsoft 365) delivers `ann+news@acme.com` to `ann@acme.com`, so
    search and duplicates take them as one; import matching uses `email_key` alone."""
    key = email_key(email)
    if key is None:
        return []
    local, _, domain = key.rpartition("@")
    untagged = local.split("+", 1)[0]
    return [key] if untagged == local or not untagged else [key, f"{untagged}@{domain}"]


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


# --- a lead's stored keys (search, duplicates, import matching) ------------------------------

# Bump when the rules below change: the start-up migration recomputes older leads' keys.
KEYS_VERSION = 2
# The fields the keys are computed from (python names of the lead catalog).
KEY_SOURCES = ("lead_id", "first_name", "last_name", "email", "mobile", "organization", "website")
# Word prefixes longer than this are not stored; a longer query word is matched by its start.
MAX_PREFIX = 20
# Words shorter than this get no typo keys: one letter off in "Al" or "Bo" is another name.
MIN_TYPO_WORD = 4
# Whole-name typo keys only for names at least this long (shorter ones are too ambiguous).
MIN_TYPO_NAME = 6
# Search-key namespaces (one multikey index serves them all).
WORD, TYPO, EMAIL, PHONE, NAME, NAME_TYPO = "w:", "t:", "e:", "p:", "n:", "v:"
NAME_AT_ORGANIZATION, NAME_AT_DOMAIN = "o:", "d:"
FREE_MAIL = PLUS_TAG_DOMAINS | frozenset(
    {
        "aol.com",
        "gmx.com",
        "gmx.de",
        "mail.com",
        "mail.ru",
        "yandex.ru",
        "qq.com",
        "163.com",
        "web.de",
        "yahoo.co.uk",
        "hotmail.co.uk",
        "live.co.uk",
        "btinternet.com",
        "orange.fr",
    }
)
LEGAL_SUFFIXES = frozenset(
    {
        "inc",
        "llc",
        "ltd",
        "limited",
        "gmbh",
        "ag",
        "sa",
        "sas",
        "bv",
        "nv",
        "plc",
        "co",
        "corp",
        "corporation",
        "company",
        "srl",
        "spa",
        "oy",
        "ab",
        "as",
        "pty",
        "kk",
    }
)
WORD_RUN = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """Accents and case folded: "Zoë MÜLLER" → "zoe muller" (what every key compares)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str | None) -> list[str]:
    """The folded runs of letters and digits in `text`: punctuation and spaces split words
    ("jo@mail.example.com" → jo, mail, example, com)."""
    return WORD_RUN.findall(fold(text)) if text else []


@functools.lru_cache(maxsize=8192)  # search ranks every candidate against the same words
def typo_variants(word: str) -> frozenset[str]:
    """The word and every spelling of it with one letter left out. Two words one edit apart
    (a letter missing, added, changed, or two swapped) share at least one of them."""
    return frozenset({word} | {word[:i] + word[i + 1 :] for i in range(len(word))})


def name_key(first_name: str | None, last_name: str | None) -> str | None:
    """The folded name's letters-and-digits words in sorted order: any word order matches."""
    parts = sorted(words(first_name) + words(last_name))
    return " ".join(parts) or None


def organization_key(organization: str | None) -> str | None:
    """The folded organization without legal suffixes: "ACME, Inc." and "Acme" match."""
    parts = [word for word in words(organization) if word not in LEGAL_SUFFIXES]
    return " ".join(parts) or None


def domain_key(website: str | None, email: str | None) -> str | None:
    """The company's domain: the website's host without `www.`, else the email's domain
    unless it is a free-mail provider (a shared gmail.com says nothing about a company)."""
    host = ""
    if website and website.strip():
        text = fold(website.strip())
        text = text.split("://", 1)[-1]
        host = re.split(r"[/?#:]", text, maxsplit=1)[0]
    elif key := email_key(email):
        host = key.rpartition("@")[2]
        if host in FREE_MAIL:
            return None
    host = host.removeprefix("www.").strip(".")
    return host if "." in host else None


def phone_keys(mobile: str | None) -> list[str]:
    """The number's E.164 key and its national number: a search typed without a country
    code, or with a trunk 0, still finds it."""
    key = phone_key(mobile)
    if key is None:
        return []
    national = key.lstrip("+")
    with contextlib.suppress(phonenumbers.NumberParseException):
        national = str(phonenumbers.parse(key).national_number)
    return [key, national.lstrip("0")]


def search_terms(query: str) -> list[str]:
    """A search query's words as the keys store them (at most MAX_PREFIX characters)."""
    return [word[:MAX_PREFIX] for word in words(query)]


def lead_keys(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every stored key of a lead with these field values (python names, as in KEY_SOURCES),
    as `LeadDocument` fields: written with the fields by every path that writes a lead."""
    text = {name: value if isinstance(value, str) else None for name, value in values.items()}
    first_name, last_name = text.get("first_name"), text.get("last_name")
    email, organization = text.get("email"), text.get("organization")
    name = name_key(first_name, last_name)
    email_normal = email_key(email)
    phones = phone_keys(text.get("mobile"))
    keys: set[str] = set()
    for source in (first_name, last_name, organization, email, text.get("lead_id")):
        for word in words(source):
            keys.update(WORD + word[:length] for length in range(1, min(len(word), MAX_PREFIX) + 1))
    for word in words(first_name) + words(last_name):
        if len(word) >= MIN_TYPO_WORD:
            keys.update(TYPO + variant for variant in typo_variants(word[:MAX_PREFIX]))
    keys.update(PHONE + key for key in phones)
    keys.update(EMAIL + key for key in email_keys(email))
    if name:
        keys.add(NAME + name)
        # The name with its company: a look-up for "same person at the same company" that
        # stays exact however common the name is (an import checks whole batches by it).
        if organization_normal := organization_key(organization):
            keys.add(f"{NAME_AT_ORGANIZATION}{name}|{organization_normal}")
        if domain_normal := domain_key(text.get("website"), email):
            keys.add(f"{NAME_AT_DOMAIN}{name}|{domain_normal}")
        if len(name) >= MIN_TYPO_NAME:
            keys.update(NAME_TYPO + variant for variant in typo_variants(name))
    return {
        "email_key": email_normal,
        "phone_key": phones[0] if phones else None,
        "name_key": name,
        "organization_key": organization_key(organization),
        "domain_key": domain_key(text.get("website"), email),
        "search_keys": sorted(keys),
        "keys_version": KEYS_VERSION,
    }
