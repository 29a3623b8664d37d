"""The GraphQL schema: each domain's Query, Mutation and Subscription fields (resolvers/) merged."""

from datetime import datetime

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from api.errors import InputErrorCodes, error_code
from api.limits import QueryLimits
from api.validation import ValidOnce
from observability.metrics import graphql_metrics
from resolvers.api_key import ApiKeyMutation, ApiKeyQuery
from resolvers.auth import AuthQuery
from resolvers.call import CallMutation
from resolvers.deal import DealMutation, DealQuery
from resolvers.email import EmailMutation
from resolvers.imports import ImportMutation, ImportQuery, ImportSubscription
from resolvers.lead import LeadMutation, LeadQuery
from resolvers.merge import MergeMutation
from resolvers.note import NoteMutation
from resolvers.search import SearchQuery
from resolvers.subscription import LeadSubscription
from resolvers.task import TaskMutation
from schema.common import DateTime


@strawberry.type(
    description="Reads. Each field declares the permission it needs (README: Teams); a lead "
    "out of the caller's scope is NOT_FOUND, never FORBIDDEN."
)
class Query(AuthQuery, LeadQuery, SearchQuery, DealQuery, ApiKeyQuery, ImportQuery):
    pass


@strawberry.type(
    description="Writes. Each field declares the permission it needs (README: Teams); lead "
    "mutations return the changed lead."
)
class Mutation(
    LeadMutation,
    EmailMutation,
    CallMutation,
    TaskMutation,
    NoteMutation,
    MergeMutation,
    DealMutation,
    ApiKeyMutation,
    ImportMutation,
):
    pass


@strawberry.type(description="Live updates over graphql-transport-ws at /graphql.")
class Subscription(LeadSubscription, ImportSubscription):
    pass


class CrmSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Errors are logged where they are made public (`api.errors.public_error`)."""


schema = CrmSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    config=StrawberryConfig(scalar_map={datetime: DateTime}),
    # QueryLimits first: a document over a limit gets that one error, before validation.
    # ValidOnce after InputErrorCodes, which sets the rules it keys on.
    extensions=[QueryLimits, InputErrorCodes, ValidOnce, graphql_metrics(error_code)],
)
