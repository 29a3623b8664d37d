"""Note type and the createNote mutation."""

from datetime import datetime

import strawberry

from models.lead import LeadDocument
from models.note import NoteDocument
from schema.lead import Lead


@strawberry.type(description="A note about a lead.")
class Note:
    id: strawberry.ID = strawberry.field(description="Database id (ObjectId hex).")
    lead_id: str = strawberry.field(description='The lead\'s human id, "LEAD-001".')
    title: str | None = strawberry.field(description="Optional title.")
    content: str = strawberry.field(description="The note's text.")
    created_at: datetime = strawberry.field(description="When it was written.")
    created_by: str | None = strawberry.field(description="Name of the user who wrote it.")


@strawberry.input(description="A note to add.")
class CreateNoteInput:
    content: str = strawberry.field(description="Required, at most 100,000 characters.")
    title: str | None = strawberry.field(default=None, description="At most 200 characters.")


@strawberry.type(description="The note and the lead with its new timeline entry.")
class CreateNotePayload:
    note: NoteDocument = strawberry.field(graphql_type=Note, description="The new note.")
    lead: LeadDocument = strawberry.field(
        graphql_type=Lead, description="The lead, with the NOTE_ADDED entry."
    )
