"""One definition per lead field: the catalog (models/fields.py) is what every layer serves.

Each check walks the catalog, so a field added there is covered here without a new test, and
a field declared by hand anywhere else (a second definition) makes one fail.
"""

from typing import Any

import pytest
from graphql import GraphQLInputObjectType, GraphQLNonNull, GraphQLObjectType, get_named_type
from strawberry.utils.str_converters import to_camel_case

from models.contact import ContactDocument
from models.deal import DealDocument
from models.fields import (
    Choice,
    LeadFields,
    Number,
    Text,
    copied_from_lead,
    specs,
    stored_name,
)
from models.lead import NORMALIZED_KEYS, LeadDocument
from models.organization import OrganizationDocument
from schema.root import schema
from tests.conftest import GraphQLClient

GRAPHQL = schema._schema
# What storage alone needs (never in the API): everything else on the document is the catalog's.
# Normalized keys (services/normalize.py) are storage too: queries use them, no client sees them.
STORAGE_ONLY = {"id", "revision_id", "lead_number", "deal_id", "activities", *NORMALIZED_KEYS}


def graphql_type(name: str) -> Any:
    found = GRAPHQL.get_type(name)
    assert isinstance(found, GraphQLObjectType | GraphQLInputObjectType), name
    return found


def test_the_document_declares_no_lead_field_of_its_own() -> None:
    own = set(LeadDocument.model_fields) - STORAGE_ONLY
    assert own == set(LeadFields.model_fields)
    for name in LeadFields.model_fields:
        assert stored_name(LeadDocument, name) == stored_name(LeadFields, name), name


def test_the_lead_type_is_the_catalog() -> None:
    lead = graphql_type("Lead").fields
    for name, field in LeadFields.model_fields.items():
        served = lead[to_camel_case(name)]
        assert served.description == field.description, name
        nullable = field.default is None and not field.is_required()
        assert isinstance(served.type, GraphQLNonNull) is not nullable, name


def test_the_inputs_are_the_catalogs_writable_fields() -> None:
    writable = {
        to_camel_case(name): spec for name, spec in specs(LeadFields, writable=True).items()
    }
    create = graphql_type("CreateLeadInput").fields
    update = graphql_type("UpdateLeadInput").fields
    assert set(create) == set(update) == set(writable)
    for name, spec in writable.items():
        required = isinstance(spec, Text) and spec.required
        # Required text, and choices (which have a default), are non-null on create.
        non_null = required or isinstance(spec, Choice)
        assert isinstance(create[name].type, GraphQLNonNull) is non_null, name
        assert not isinstance(update[name].type, GraphQLNonNull), name  # partial update
        if isinstance(spec, Text):
            assert f"at most {spec.max_length} characters" in str(create[name].description).lower()
        if isinstance(spec, Choice):
            assert create[name].default_value is not None, name


@pytest.mark.parametrize(
    ("document", "type_name"),
    [(DealDocument, "Deal"), (OrganizationDocument, "Organization"), (ContactDocument, "Contact")],
)
def test_copies_of_lead_fields_have_the_lead_fields_types(
    document: type[Any], type_name: str
) -> None:
    copied = copied_from_lead(document)
    assert copied, f"{type_name} copies no lead field"
    fields = graphql_type(type_name).fields
    for name in copied:
        lead_field = graphql_type("Lead").fields[to_camel_case(name)]
        if name == "organization":
            continue  # on Deal, `organization` is the linked Organization
        assert get_named_type(fields[to_camel_case(name)].type) == get_named_type(lead_field.type)


async def test_every_writable_field_round_trips_and_conversion_copies_it(
    gql: GraphQLClient,
) -> None:
    values: dict[str, Any] = {}
    for name, spec in specs(LeadFields, writable=True).items():
        if isinstance(spec, Text):
            values[to_camel_case(name)] = {
                "email": "ada@example.com",
                "phone": "+44 20 7946 0000",
            }.get(spec.format or "", f"{name} value")
        elif isinstance(spec, Number):
            values[to_camel_case(name)] = 1234.5
        elif isinstance(spec, Choice):
            values[to_camel_case(name)] = "CONTACTED"
    selection = " ".join(values)
    created = await gql(
        f"mutation($input: CreateLeadInput!) {{ createLead(input: $input) "
        f"{{ lead {{ leadId {selection} }} }} }}",
        {"input": values},
    )
    lead = created["createLead"]["lead"]
    assert {name: lead[name] for name in values} == values

    converted = await gql(
        "mutation($id: String!) { convertLeadToDeal(leadId: $id) "
        "{ deal { website territory industry source noOfEmployees annualRevenue "
        "organization { name website } contact { firstName email jobTitle } } } }",
        {"id": lead["leadId"]},
    )
    deal = converted["convertLeadToDeal"]["deal"]
    for name in copied_from_lead(DealDocument):
        if name != "organization":
            assert deal[to_camel_case(name)] == values[to_camel_case(name)], name
    assert deal["organization"] == {"name": values["organization"], "website": values["website"]}
    assert deal["contact"] == {
        "firstName": values["firstName"],
        "email": values["email"],
        "jobTitle": values["jobTitle"],
    }
