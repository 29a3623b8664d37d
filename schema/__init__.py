"""The GraphQL schema: each domain's Query and Mutation fields merged into one."""

from datetime import datetime

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from schema.auth import AuthQuery
from schema.call import CallMutation
from schema.common import DateTime
from schema.deal import DealMutation, DealQuery
from schema.email import EmailMutation
from schema.errors import InputErrorCodes
from schema.lead import LeadMutation, LeadQuery
from schema.note import NoteMutation
from schema.task import TaskMutation

Query = merge_types("Query", (AuthQuery, LeadQuery, DealQuery))
Mutation = merge_types(
    "Mutation",
    (LeadMutation, EmailMutation, CallMutation, TaskMutation, NoteMutation, DealMutation),
)


class CrmSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Errors are logged where they are made public (`schema.errors.public_error`)."""


schema = CrmSchema(
    query=Query,
    mutation=Mutation,
    config=StrawberryConfig(scalar_map={datetime: DateTime}),
    extensions=[InputErrorCodes],
)
