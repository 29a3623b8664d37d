"""The GraphQL schema: each domain's Query and Mutation fields merged into one."""

from datetime import datetime

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from observability.metrics import graphql_metrics
from schema.auth import AuthQuery
from schema.call import CallMutation
from schema.common import DateTime
from schema.deal import DealMutation, DealQuery
from schema.email import EmailMutation
from schema.errors import InputErrorCodes, error_code
from schema.lead import LeadMutation, LeadQuery
from schema.limits import QueryLimits
from schema.note import NoteMutation
from schema.subscription import LeadSubscription
from schema.task import TaskMutation


@strawberry.type(description="Reads. Every field but `me` needs the admin role (else FORBIDDEN).")
class Query(AuthQuery, LeadQuery, DealQuery):
    pass


@strawberry.type(description="Writes. All need the admin role; each returns the changed lead.")
class Mutation(LeadMutation, EmailMutation, CallMutation, TaskMutation, NoteMutation, DealMutation):
    pass


@strawberry.type(description="Live updates over graphql-transport-ws at /graphql.")
class Subscription(LeadSubscription):
    pass


class CrmSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Errors are logged where they are made public (`schema.errors.public_error`)."""


schema = CrmSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    config=StrawberryConfig(scalar_map={datetime: DateTime}),
    # QueryLimits first: a document over a limit gets that one error, before validation.
    extensions=[QueryLimits, InputErrorCodes, graphql_metrics(error_code)],
)
