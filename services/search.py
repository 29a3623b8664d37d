"""Ranked lead search and duplicate candidates, served by the stored keys (services/normalize.py).

Every query here is an equality or `$in`/`$all` on `searchKeys`, one multikey index: a page of
hits costs the same few commands at 1,000 or 50,000 leads, on MongoDB and on the embedded
engine. What a key found is then ranked here, in Python, on the few leads it returned.

Search tiers (README "Search and duplicates"): an exact email or phone (score 1), the exact
full name in any word order (0.9), every word the start of a word of the name, organization,
email or lead id (0.5 to 0.8: whole words above fragments), then one-letter typos (0.2 to 0.5, by
trigram similarity).
"""

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from models.lead import LeadDocument
from services import normalize, policy
from services.documents import decode
from services.errors import BadUserInput, FieldError
from services.leads import WITHOUT_TIMELINE, get_lead
from services.normalize import (
    EMAIL,
    NAME,
    NAME_AT_DOMAIN,
    NAME_AT_ORGANIZATION,
    NAME_TYPO,
    PHONE,
    TYPO,
    WORD,
)
from services.policy import Action
from services.viewer import Viewer

MAX_QUERY_LENGTH = 200
MAX_QUERY_WORDS = 10
MAX_HITS = 100
DEFAULT_HITS = 20
# Leads a duplicate check's look-up may bring back: every lead sharing a key, up to this many
# (a common name at a big company has many namesakes; the duplicate among them must be found).
DUPLICATE_CANDIDATES = 200
# A key that matches more leads than this is shared (a company switchboard, a team inbox):
# it says nothing about who is the same person, so its rule is dropped.
MAX_SHARED = 5
# Rule weights; a candidate's score is 1 - Π(1 - weight) over the rules it matches.
RULE_WEIGHTS = {
    "EMAIL": 0.9,
    "PHONE": 0.8,
    "NAME": 0.4,
    "NAME_SIMILAR": 0.3,
    "ORGANIZATION": 0.3,
    "DOMAIN": 0.3,
}
# Leads an import batch's look-up brings back, per row: bounds its cost when a name at a
# company is very common (then some rows' candidates are incomplete; findDuplicates is not).
BATCH_CANDIDATES = 10
# Candidates below this are not reported: a shared name alone (0.4) is not a duplicate.
MIN_DUPLICATE_SCORE = 0.5
# A name (or its one-letter-off spellings) that more leads share is not compared pair by pair
# in the whole-database scan.
MAX_NAMESAKES = 50
PHONE_LIKE = re.compile(r"^[\d\s()+./-]{7,}$")
HIGHLIGHT_OPEN, HIGHLIGHT_CLOSE = "<mark>", "</mark>"


@dataclass(frozen=True)
class Match:
    """How a lead matched a query: its tier's score, the field, a highlight."""

    score: float
    matched_field: str
    highlight: str | None


@dataclass(frozen=True)
class SearchHit(Match):
    lead: LeadDocument


@dataclass(frozen=True)
class Candidate:
    """A stored lead as search ranks it: the fields it matches words against."""

    stored: Mapping[str, Any]
    lead_id: str
    lead_number: int
    first_name: str | None
    last_name: str | None
    organization: str | None
    email: str | None
    mobile: str | None
    name_key: str | None

    @classmethod
    def of(cls, stored: Mapping[str, Any]) -> "Candidate":
        def text(name: str) -> str | None:
            value = stored.get(name)
            return None if value is None else str(value)

        number = stored.get("leadNumber")
        return cls(
            stored,
            str(stored["lead_id"]),
            number if isinstance(number, int) else 0,
            text("firstName"),
            text("lastName"),
            text("organization"),
            text("email"),
            text("mobile"),
            text("nameKey"),
        )


@dataclass(frozen=True)
class DuplicateCandidate:
    lead: LeadDocument
    score: float
    rules: list[str]


def _leads() -> Any:
    return LeadDocument.get_pymongo_collection()


async def _find_stored(
    viewer: Viewer, query: Mapping[str, Any], limit: int
) -> list[dict[str, Any]]:
    """The stored leads (without their timeline and keys) the query finds in the viewer's scope."""
    cursor = _leads().find(policy.scoped(viewer, dict(query)), WITHOUT_TIMELINE).limit(limit)
    return [raw async for raw in cursor]


def _lead(raw: Mapping[str, Any]) -> LeadDocument:
    lead = decode(LeadDocument, raw, "Lead")
    lead.omit_timeline()
    return lead


async def _find(viewer: Viewer, query: Mapping[str, Any], limit: int) -> list[LeadDocument]:
    return [_lead(raw) for raw in await _find_stored(viewer, query, limit)]


async def leads_by_id(viewer: Viewer, lead_ids: Iterable[str]) -> dict[str, LeadDocument]:
    """The leads with these ids that are in the viewer's scope (one query)."""
    wanted = list(dict.fromkeys(lead_ids))
    found = await _find(viewer, {"lead_id": {"$in": wanted}}, len(wanted)) if wanted else []
    return {lead.lead_id: lead for lead in found}


# --- search -------------------------------------------------------------------------------


def _checked_query(query: str, first: int) -> list[str]:
    errors = []
    if len(query) > MAX_QUERY_LENGTH or len(query.split()) > MAX_QUERY_WORDS:
        message = f"at most {MAX_QUERY_WORDS} words and {MAX_QUERY_LENGTH} characters"
        errors.append(FieldError("query", message))
    if not 1 <= first <= MAX_HITS:
        errors.append(FieldError("first", f"must be between 1 and {MAX_HITS}"))
    if errors:
        raise BadUserInput(errors)
    return normalize.search_terms(query)


def _exact_keys(query: str) -> list[str]:
    """Keys that only the lead with exactly this email, phone or name has."""
    keys = []
    if "@" in query:
        keys += [EMAIL + key for key in normalize.email_keys(query)]
    if PHONE_LIKE.match(query.strip()):
        keys += [PHONE + key for key in normalize.phone_keys(query)]
        digits = re.sub(r"\D", "", query).lstrip("0")
        keys.append(PHONE + digits)
    if name := normalize.name_key(query, None):
        keys.append(NAME + name)
    return keys


async def search_leads(viewer: Viewer, query: str, first: int) -> list[SearchHit]:
    """The leads in the viewer's scope that best match `query`, best first."""
    policy.require(viewer, Action.READ)
    terms = _checked_query(query, first)
    found: dict[str, Candidate] = {}

    async def look_up(keys_query: Mapping[str, Any], limit: int) -> None:
        for raw in await _find_stored(viewer, keys_query, limit):
            found[raw["lead_id"]] = Candidate.of(raw)

    if exact := _exact_keys(query):
        await look_up(_in(exact), first)
    # Each look-up reads at most `first` leads, so a page of hits costs the same at any size:
    # where more leads start with the words ("j s"), the hits are the best of the first found.
    if terms:
        # The two longest words drive the look-up (a short word such as "com" or "j" is on
        # most leads: its index list is long); ranking checks every word.
        driving = sorted(dict.fromkeys(terms), key=len, reverse=True)[:2]
        await look_up({"searchKeys": {"$all": [WORD + term for term in driving]}}, first)
    if len(found) < first and (typos := typo_query(terms)):
        # Only leads not found already: none is read twice, and the look-up's limit goes to
        # new candidates.
        unseen = {"$and": [typos, {"lead_id": {"$nin": list(found)}}]} if found else typos
        await look_up(unseen, first)
    exact_keys = set(exact)
    ranked = [
        (match, candidate)
        for candidate in found.values()
        if (match := rank(candidate, exact_keys, terms)) is not None
    ]
    ranked.sort(key=lambda hit: (-hit[0].score, hit[1].lead_number, hit[1].lead_id))
    # Only the hits shown are read as leads: the other candidates were ranked on their fields.
    return [
        SearchHit(**asdict(match), lead=_lead(candidate.stored))
        for match, candidate in ranked[:first]
    ]


def _in(keys: Iterable[str]) -> dict[str, Any]:
    return {"searchKeys": {"$in": list(dict.fromkeys(keys))}}


def typo_query(terms: Sequence[str]) -> dict[str, Any] | None:
    """Leads where every word starts a word, or (4 letters or more) is a name word one letter
    off: one `$in` of a word's keys per word, all of them required. None without such a word.
    Every word narrows the look-up, so a common first name does not crowd out the lead."""
    words = list(dict.fromkeys(terms))
    if not any(len(word) >= normalize.MIN_TYPO_WORD for word in words):
        return None
    parts = [_in([WORD + word, *_typo_keys(word)]) for word in words]
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _typo_keys(word: str) -> list[str]:
    """A word's one-letter-left-out spellings (and itself) as typo keys; none when short."""
    if len(word) < normalize.MIN_TYPO_WORD:
        return []
    return [TYPO + variant for variant in sorted(normalize.typo_variants(word))]


def _fields(lead: Candidate) -> list[tuple[str, str]]:
    """(GraphQL field, text) pairs search matches words against, in ranking preference."""
    pairs = [
        ("fullName", " ".join(part for part in (lead.first_name, lead.last_name) if part)),
        ("organization", lead.organization or ""),
        ("email", lead.email or ""),
        ("leadId", lead.lead_id),
    ]
    return [(name, text) for name, text in pairs if text]


def rank(lead: Candidate, exact: set[str], terms: Sequence[str]) -> Match | None:
    """How well `lead` matches the query (its exact keys and words, computed once per
    search): its tier's score, the field that matched, a highlight."""
    # A lead's own keys are computed only when the query has keys of their kind.
    emails = normalize.email_keys(lead.email) if _kind_in(exact, EMAIL) and lead.email else []
    if lead.email and exact & {EMAIL + key for key in emails}:
        return Match(1.0, "email", _marked(lead.email, None))
    phones = normalize.phone_keys(lead.mobile) if _kind_in(exact, PHONE) and lead.mobile else []
    if lead.mobile and exact & {PHONE + key for key in phones}:
        return Match(1.0, "mobile", _marked(lead.mobile, None))
    fields = [(name, text, normalize.words(text)) for name, text in _fields(lead)]
    if NAME + (lead.name_key or "") in exact:
        return Match(0.9, "fullName", _marked(fields[0][1], None))
    if not terms:
        return None
    best: tuple[float, str, str, list[str]] | None = None
    for name, text, field_words in fields:
        matched = [_word_match(term, field_words) for term in terms]
        if None in matched:
            continue
        matches = [match for match in matched if match is not None]
        if all(kind == "prefix" for kind, _, _ in matches):
            score = 0.5 + 0.3 * sum(similarity for _, _, similarity in matches) / len(matches)
        else:
            score = 0.2 + 0.3 * sum(similarity for _, _, similarity in matches) / len(matches)
        if best is None or score > best[0]:
            best = (score, name, text, [word for _, word, _ in matches])
    if best is None:
        best = _across_fields(fields, terms)
    if best is None:
        return None
    score, name, text, words = best
    return Match(round(score, 3), name, _marked(text, words))


def _kind_in(keys: set[str], kind: str) -> bool:
    return any(key.startswith(kind) for key in keys)


def _across_fields(
    fields: list[tuple[str, str, list[str]]], terms: Sequence[str]
) -> tuple[float, str, str, list[str]] | None:
    """Words matched in different fields ("jane acme"): prefix-tier score, the field of the
    first word named. `fields`: (name, text, its words)."""
    matches = []
    for term in terms:
        match = next(
            (
                (name, text, found)
                for name, text, field_words in fields
                if (found := _word_match(term, field_words)) is not None
            ),
            None,
        )
        if match is None:
            return None
        matches.append(match)
    base = 0.5 if all(found[0] == "prefix" for _, _, found in matches) else 0.2
    mean = sum(found[2] for _, _, found in matches) / len(matches)
    name, text, _ = matches[0]
    words = [found[1] for field, _, found in matches if field == name]
    return base + 0.2 * mean, name, text, words


def _word_match(term: str, field_words: Sequence[str]) -> tuple[str, str, float] | None:
    """("prefix" | "typo", the word matched, similarity 0 to 1) of `term`'s best word."""
    prefixed = [word for word in field_words if word.startswith(term)]
    if prefixed:
        word = min(prefixed, key=len)
        return "prefix", word, len(term) / len(word)
    if len(term) < normalize.MIN_TYPO_WORD:
        return None
    variants = normalize.typo_variants(term)
    close = [
        word
        for word in field_words
        if len(word) >= normalize.MIN_TYPO_WORD
        and variants & normalize.typo_variants(word[: normalize.MAX_PREFIX])
    ]
    if not close:
        return None
    word = max(close, key=lambda candidate: trigram_similarity(term, candidate))
    return "typo", word, trigram_similarity(term, word)


def trigram_similarity(left: str, right: str) -> float:
    """Shared trigrams over all trigrams of the two words (padded, as PostgreSQL's pg_trgm)."""

    def grams(word: str) -> set[str]:
        padded = f"  {word} "
        return {padded[i : i + 3] for i in range(len(padded) - 2)}

    a, b = grams(left), grams(right)
    return len(a & b) / len(a | b) if a | b else 0.0


def _marked(text: str, folded_words: Sequence[str] | None) -> str:
    """`text`, HTML-escaped, with the matched words (all of it when None) in <mark>."""
    if folded_words is None:
        return HIGHLIGHT_OPEN + html.escape(text) + HIGHLIGHT_CLOSE
    wanted = set(folded_words)
    parts, last = [], 0
    for run in normalize.WORD_RUN.finditer(text):
        if normalize.fold(run.group()) in wanted:
            parts += [html.escape(text[last : run.start()]), HIGHLIGHT_OPEN]
            parts += [html.escape(run.group()), HIGHLIGHT_CLOSE]
            last = run.end()
    parts.append(html.escape(text[last:]))
    return "".join(parts)


# --- duplicates ---------------------------------------------------------------------------


def duplicate_keys(keys: Mapping[str, Any], *, similar_names: bool = True) -> list[str]:
    """The search keys a duplicate of a lead with these keys shares: its email, its phone,
    its name with its organization or domain, and (`similar_names`) its name or the name
    one letter off, which a common name shares with many leads."""
    wanted = [EMAIL, NAME_AT_ORGANIZATION, NAME_AT_DOMAIN]
    if similar_names:
        long_name = len(keys.get("name_key") or "") >= normalize.MIN_TYPO_NAME
        wanted.append(NAME_TYPO if long_name else NAME)
    found = [key for key in keys["search_keys"] if key.startswith(tuple(wanted))]
    if keys.get("phone_key"):
        found.append(PHONE + keys["phone_key"])
    return found


async def duplicates_of(
    viewer: Viewer, values: Mapping[str, Any], *, exclude_lead_id: str | None = None
) -> list[DuplicateCandidate]:
    """Leads in the viewer's scope that look like the same person as a lead with `values`
    (python field names): one indexed query, then the rules, best first."""
    keys = normalize.lead_keys(values)
    wanted = duplicate_keys(keys)
    if not wanted:
        return []
    query: dict[str, Any] = _in(wanted)
    if exclude_lead_id is not None:
        query["lead_id"] = {"$ne": exclude_lead_id}
    candidates = {lead.lead_id: lead for lead in await _find(viewer, query, DUPLICATE_CANDIDATES)}
    others = {lead_id: _scalar_keys(lead) for lead_id, lead in candidates.items()}
    return [
        DuplicateCandidate(candidates[lead_id], score, rules)
        for lead_id, score, rules in rank_duplicates(keys, others)
    ]


async def duplicates_of_many(
    viewer: Viewer, rows: Sequence[tuple[str | None, Mapping[str, Any]]]
) -> list[list[tuple[str, float, list[str]]]]:
    """For each (own lead id or None, keys) of many new leads (an import batch): its
    candidates as (lead id, score, rules), best first; indexed queries of up to 500 keys."""
    # Exact keys only: a batch of common names would bring back every namesake.
    wanted = sorted({key for _, keys in rows for key in duplicate_keys(keys, similar_names=False)})
    keys_of: dict[str, dict[str, Any]] = {}
    buckets: dict[tuple[str, str], set[str]] = {}
    for start in range(0, len(wanted), 500):
        query = policy.scoped(viewer, _in(wanted[start : start + 500]))
        cursor = _leads().find(query, KEY_FIELDS).limit(BATCH_CANDIDATES * len(rows))
        async for raw in cursor:
            stored_keys = {name: raw.get(stored) for name, stored in SCALAR_KEYS.items()}
            keys_of[raw["lead_id"]] = stored_keys
            for bucket in _buckets(stored_keys, similar_names=False):
                buckets.setdefault(bucket, set()).add(raw["lead_id"])
    found = []
    for own, keys in rows:
        shared = (buckets.get(bucket, set()) for bucket in _buckets(keys, similar_names=False))
        ids = set().union(*shared) - {own}
        found.append(rank_duplicates(keys, {lead_id: keys_of[lead_id] for lead_id in ids}))
    return found


def rank_duplicates(
    keys: Mapping[str, Any], others: Mapping[str, Mapping[str, Any]]
) -> list[tuple[str, float, list[str]]]:
    """The others (lead id → scalar keys) that are the same person as the lead with `keys`,
    as (lead id, score, rules), best first."""
    shared = _shared_keys(others.values())
    found = []
    for lead_id, other in others.items():
        rules = duplicate_rules(keys, other, shared)
        if (score := _score(rules)) >= MIN_DUPLICATE_SCORE:
            found.append((lead_id, score, rules))
    found.sort(key=lambda candidate: (-candidate[1], _lead_order(candidate[0])))
    return found


def _shared_keys(others: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
    counts: dict[tuple[str, str], int] = {}
    for other in others:
        for rule, key in (("EMAIL", other["email_key"]), ("PHONE", other["phone_key"])):
            if key:
                counts[rule, key] = counts.get((rule, key), 0) + 1
    return {key for key, count in counts.items() if count > MAX_SHARED}


def duplicate_rules(
    keys: Mapping[str, Any], other: Mapping[str, Any], shared: set[tuple[str, str]]
) -> list[str]:
    """The rules under which the lead with `other` keys is the one with `keys` (scalar keys,
    python names: `email_key`, `phone_key`, `name_key`, `organization_key`, `domain_key`)."""
    rules = []
    email, phone, name = keys.get("email_key"), keys.get("phone_key"), keys.get("name_key")
    same_email = set(normalize.email_keys(email)) & set(normalize.email_keys(other["email_key"]))
    if same_email and ("EMAIL", email) not in shared:
        rules.append("EMAIL")
    if phone and other["phone_key"] == phone and ("PHONE", phone) not in shared:
        rules.append("PHONE")
    if name and other["name_key"] == name:
        rules.append("NAME")
    elif (
        name
        and other["name_key"]
        and len(name) >= normalize.MIN_TYPO_NAME
        and normalize.typo_variants(name) & normalize.typo_variants(other["name_key"])
    ):
        rules.append("NAME_SIMILAR")
    for rule, field in (("ORGANIZATION", "organization_key"), ("DOMAIN", "domain_key")):
        if keys.get(field) and other[field] == keys[field]:
            rules.append(rule)
    return rules


async def find_duplicates(viewer: Viewer, lead_id: str) -> list[DuplicateCandidate]:
    lead = await get_lead(viewer, lead_id)
    return await duplicates_of(viewer, lead.model_dump(), exclude_lead_id=lead.lead_id)


# --- the whole-database scan (`crm duplicates`) ----------------------------------------------


@dataclass(frozen=True)
class DuplicateGroup:
    lead_ids: list[str]
    rules: list[str]
    """Every rule that joined two of its leads."""


SCALAR_KEYS = {
    name: LeadDocument.model_fields[name].alias or name
    for name in ("email_key", "phone_key", "name_key", "organization_key", "domain_key")
}
KEY_FIELDS = dict.fromkeys(["lead_id", *SCALAR_KEYS.values()], 1)


def _buckets(keys: Mapping[str, Any], *, similar_names: bool = True) -> list[tuple[str, str]]:
    """What two duplicates share at least one of (duplicate_keys, from the scalar keys): the
    email (also untagged), the phone, the name with the organization or domain, and
    (`similar_names`) the name or the name one letter off."""
    found = [("e", key) for key in normalize.email_keys(keys["email_key"])]
    if keys["phone_key"]:
        found.append(("p", keys["phone_key"]))
    name = keys["name_key"] or ""
    for kind, other in (("o", keys["organization_key"]), ("d", keys["domain_key"])):
        if name and other:
            found.append((kind, f"{name}|{other}"))
    if not similar_names:
        return found
    if len(name) >= normalize.MIN_TYPO_NAME:
        found += [("v", variant) for variant in normalize.typo_variants(name)]
    elif name:
        found.append(("n", name))
    return found


async def scan_duplicates(viewer: Viewer) -> list[DuplicateGroup]:
    """Groups of leads in the viewer's scope that are the same person by the duplicate rules,
    from one pass over every lead's keys (a cursor, not a query per lead)."""
    policy.require(viewer, Action.READ)
    keys_of: dict[str, dict[str, Any]] = {}
    buckets: dict[tuple[str, str], list[str]] = {}
    async for raw in _leads().find(policy.scoped(viewer, {}), KEY_FIELDS, batch_size=5000):
        keys = {name: raw.get(stored) for name, stored in SCALAR_KEYS.items()}
        keys_of[raw["lead_id"]] = keys
        for bucket in _buckets(keys):
            buckets.setdefault(bucket, []).append(raw["lead_id"])
    parent = {lead_id: lead_id for lead_id in keys_of}

    def root(lead_id: str) -> str:
        while parent[lead_id] != lead_id:
            parent[lead_id] = parent[parent[lead_id]]
            lead_id = parent[lead_id]
        return lead_id

    joined: dict[frozenset[str], list[str]] = {}
    for (kind, _), members in buckets.items():
        # A shared email or phone says nothing; a common name's leads are paired through
        # its company (the o/d buckets), not all with all.
        limit = MAX_SHARED if kind in "ep" else MAX_NAMESAKES if kind in "vn" else len(members)
        if len(members) < 2 or len(members) > limit:
            continue
        for i, left in enumerate(members):
            for right in members[i + 1 :]:
                pair = frozenset((left, right))
                if pair in joined:
                    continue
                rules = duplicate_rules(keys_of[left], keys_of[right], set())
                if _score(rules) >= MIN_DUPLICATE_SCORE:
                    joined[pair] = rules
                    parent[root(left)] = root(right)
    groups: dict[str, list[str]] = {}
    for lead_id in keys_of:
        groups.setdefault(root(lead_id), []).append(lead_id)
    found = []
    for members in groups.values():
        if len(members) < 2:
            continue
        named = {rule for pair, rules in joined.items() if pair <= set(members) for rule in rules}
        found.append(DuplicateGroup(sorted(members, key=_lead_order), sorted(named)))
    return sorted(found, key=lambda group: _lead_order(group.lead_ids[0]))


def _lead_order(lead_id: str) -> tuple[int, str]:
    digits = "".join(c for c in lead_id if c.isdigit())
    return (int(digits) if digits else 0, lead_id)


def _scalar_keys(lead: LeadDocument) -> dict[str, Any]:
    return {name: getattr(lead, name) for name in SCALAR_KEYS}


def _score(rules: Iterable[str]) -> float:
    """1 - Π(1 - weight) over the rules."""
    remaining = 1.0
    for rule in rules:
        remaining *= 1 - RULE_WEIGHTS[rule]
    return round(1 - remaining, 3)
