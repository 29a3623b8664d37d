"""Search hits and duplicate candidates (services/search.py ranks and scores them)."""

import strawberry

from models.lead import LeadDocument
from schema.lead import Lead


@strawberry.type(description="A lead found by searchLeads, with why it was found.")
class LeadSearchHit:
    lead: LeadDocument = strawberry.field(graphql_type=Lead, description="The lead.")
    score: float = strawberry.field(
        description="How well it matched, 0 to 1: 1 an exact email or phone, 0.9 the exact "
        "name (any word order), 0.5 to 0.8 every word the start of a word (whole words "
        "higher), 0.2 to 0.5 a word one letter off (by trigram similarity)."
    )
    matched_field: str = strawberry.field(
        description="The Lead field that matched: fullName, organization, email, mobile or leadId."
    )
    highlight: str | None = strawberry.field(
        description="That field's value, HTML-escaped, with the matched words in <mark>…</mark>."
    )


@strawberry.type(description="A lead that looks like the same person, and why.")
class DuplicateCandidate:
    lead: LeadDocument = strawberry.field(graphql_type=Lead, description="The other lead.")
    score: float = strawberry.field(
        description="0.5 to 1: 1 - Π(1 - weight) over its rules (EMAIL 0.9, PHONE 0.8, "
        "NAME 0.4, NAME_SIMILAR 0.3, ORGANIZATION 0.3, DOMAIN 0.3); below 0.5 (a shared "
        "name alone) it is not reported."
    )
    rules: list[str] = strawberry.field(
        description='What matched, e.g. ["EMAIL"] or ["NAME", "ORGANIZATION"]: EMAIL and '
        "PHONE (normalized; a key shared by more than 5 leads counts for nothing), NAME "
        "(same words, any order, accents and case folded), NAME_SIMILAR (one letter off), "
        "ORGANIZATION (legal suffixes ignored), DOMAIN (website, or a company email's domain)."
    )
