"""Search and duplicate queries: read the arguments, call services/search.py, return."""

from typing import Annotated

import strawberry

from resolvers.arguments import LeadIdArgument
from resolvers.context import Info
from resolvers.permissions import permission_field
from schema.search import DuplicateCandidate, LeadSearchHit
from services import search
from services.policy import Action


@strawberry.type
class SearchQuery:
    @permission_field(
        Action.READ,
        graphql_type=list[LeadSearchHit],
        description="Leads in the caller's scope matching a name, part of one, an email, a "
        "phone number in any format, an organization or a lead id, best first: exact email "
        "or phone, then exact name, then word starts, then one-letter typos. Errors: "
        "BAD_USER_INPUT for over 10 words or 200 characters, or `first` outside 1 to 100.",
    )
    async def search_leads(
        self,
        info: Info,
        query: Annotated[str, strawberry.argument(description="What the user typed.")],
        first: Annotated[
            int, strawberry.argument(description="How many hits, 1 to 100.")
        ] = search.DEFAULT_HITS,
    ) -> list[search.SearchHit]:
        return await search.search_leads(info.context.user, query, first)

    @permission_field(
        Action.READ,
        graphql_type=list[DuplicateCandidate],
        description="Leads in the caller's scope that look like the same person as this "
        "one, best first (see DuplicateCandidate for the rules). NOT_FOUND for an unknown "
        "lead.",
    )
    async def find_duplicates(
        self, info: Info, lead_id: LeadIdArgument
    ) -> list[search.DuplicateCandidate]:
        return await search.find_duplicates(info.context.user, lead_id)
