"""createNote: read the arguments, call a service, return."""

from typing import Annotated

import strawberry

from resolvers.arguments import LeadIdArgument, provided
from resolvers.context import Info
from resolvers.permissions import permission_field
from schema.note import CreateNoteInput, CreateNotePayload
from services.notes import create_note
from services.policy import Action


@strawberry.type
class NoteMutation:
    @permission_field(
        Action.WRITE,
        description="Add a note to a lead (a NOTE_ADDED entry). Errors: NOT_FOUND, BAD_USER_INPUT.",
    )
    async def create_note(
        self,
        info: Info,
        lead_id: LeadIdArgument,
        input: Annotated[CreateNoteInput, strawberry.argument(description="The note.")],
    ) -> CreateNotePayload:
        note, lead = await create_note(info.context.user, lead_id, provided(input))
        return CreateNotePayload(note=note, lead=lead)
