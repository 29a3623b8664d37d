"""Note type and the createNote mutation."""

from datetime import datetime

import strawberry

from models.lead import LeadDocument
from models.note import NoteDocument
from resolvers.context import Info
from resolvers.note import create_note
from schema.common import admin_field, provided
from schema.lead import Lead


@strawberry.type(description="A note about a lead.")
class Note:
    id: strawberry.ID
    lead_id: str
    title: str | None
    content: str
    created_at: datetime
    created_by: str | None = strawberry.field(description="Name of the user who wrote it.")


@strawberry.input(description="A note to add.")
class CreateNoteInput:
    content: str
    title: str | None = None


@strawberry.type(description="The note and the lead with its new timeline entry.")
class CreateNotePayload:
    note: NoteDocument = strawberry.field(graphql_type=Note)
    lead: LeadDocument = strawberry.field(graphql_type=Lead)


@strawberry.type
class NoteMutation:
    @admin_field(description="Add a note to a lead (a NOTE_ADDED entry).")
    async def create_note(
        self, info: Info, lead_id: str, input: CreateNoteInput
    ) -> CreateNotePayload:
        note, lead = await create_note(info.context.user, lead_id, provided(input))
        return CreateNotePayload(note=note, lead=lead)
