"""The lead field catalog: every field of a lead, defined once.

Each field is an `Annotated` type that says everything about it:

- its Python type (and so its GraphQL type: `str | None` is `String`, `LeadStatus` is
  `LeadStatus!`);
- its stored name, the seed's spelling (pydantic `alias`; none when it is the attribute name);
- its description (GraphQL, and every other door that documents fields);
- a `FieldSpec`: the rule clients' values must meet (`Text`, `Number`, `Choice`), or
  `ReadOnly` for fields only the server writes; and the column names a spreadsheet from
  another CRM may use for it (`import_aliases`).

`LeadFields` lists them in API order. From it come the Beanie document (`models/lead.py`),
the GraphQL `Lead` type and its inputs (`schema/lead.py`), input validation
(`services/validation.py`), and the fields a deal, organization or contact copies from a lead
(they declare those fields with the same types).
"""

from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.base import StoredDateTime

Format = Literal["email", "email_list", "phone"]


@dataclass(frozen=True, kw_only=True)
class FieldSpec:
    """What the catalog says of a field beyond its type, stored name and description."""

    import_aliases: tuple[str, ...] = ()
    """Column headers (besides the GraphQL and stored names) that mean this field."""
    default_hint: str = ""
    """How a new record fills the field when a client leaves it out (said in the docs)."""


@dataclass(frozen=True, kw_only=True)
class ReadOnly(FieldSpec):
    """Written by the server only (ids, timestamps, who did it)."""


@dataclass(frozen=True, kw_only=True)
class Text(FieldSpec):
    """A string: trimmed; blank means null (an error when required)."""

    max_length: int = 200
    required: bool = False
    format: Format | None = None


@dataclass(frozen=True, kw_only=True)
class Number(FieldSpec):
    """A number that cannot be negative."""

    maximum: float | None = None


@dataclass(frozen=True, kw_only=True)
class Choice(FieldSpec):
    """An enum value: may be left out of a partial update, never set to null."""


@dataclass(frozen=True, kw_only=True)
class ObjectIdText(FieldSpec):
    """A document id given as 24 hex digits (becomes an ObjectId)."""


WRITABLE = (Text, Number, Choice, ObjectIdText)


class LeadStatus(Enum):
    NEW = "New"
    CONTACTED = "Contacted"
    NURTURE = "Nurture"
    QUALIFIED = "Qualified"
    UNQUALIFIED = "Unqualified"
    JUNK = "Junk"


LeadId = Annotated[
    str,
    Field(description='Human id, "LEAD-001".'),
    ReadOnly(import_aliases=("Lead ID", "Lead Id", "ID", "Record ID")),
]
Salutation = Annotated[
    str | None,
    Field(description='Form of address, e.g. "Mr", "Dr".'),
    Text(max_length=20, import_aliases=("Prefix", "Salutation")),
]
FirstName = Annotated[
    str,
    Field(alias="firstName", description="First name; never empty."),
    Text(max_length=100, required=True, import_aliases=("First Name", "Given Name", "First")),
]
LastName = Annotated[
    str | None,
    Field(alias="lastName", description="Last name."),
    Text(max_length=100, import_aliases=("Last Name", "Surname", "Family Name", "Last")),
]
Email = Annotated[
    str | None,
    Field(description="Email address; sendEmail's default recipient."),
    Text(
        max_length=254,
        format="email",
        import_aliases=("E-mail", "Email Address", "E-mail Address", "Mail"),
    ),
]
Mobile = Annotated[
    str | None,
    Field(description="Mobile number; logCall's default `phone`."),
    Text(
        max_length=32,
        format="phone",
        import_aliases=("Phone", "Mobile Phone", "Phone Number", "Cell", "Telephone"),
    ),
]
Organization = Annotated[
    str | None,
    Field(description="Company name."),
    Text(import_aliases=("Company", "Company Name", "Account", "Account Name")),
]
Website = Annotated[
    str | None,
    Field(description="Company website."),
    Text(max_length=2048, import_aliases=("Web", "URL", "Web Site", "Company Website")),
]
JobTitle = Annotated[
    str | None,
    Field(alias="jobTitle", description="Job title."),
    Text(import_aliases=("Title", "Job", "Position", "Role")),
]
Industry = Annotated[
    str | None,
    Field(description="Industry of the company."),
    Text(max_length=100, import_aliases=("Sector",)),
]
Source = Annotated[
    str | None,
    Field(description="Where the lead came from."),
    Text(max_length=100, import_aliases=("Lead Source", "Origin", "Channel")),
]
Status = Annotated[
    LeadStatus,
    Field(description="Where the lead stands."),
    Choice(import_aliases=("Lead Status", "Stage")),
]
Gender = Annotated[
    str | None,
    Field(description="Gender, free text."),
    Text(max_length=50, import_aliases=("Sex",)),
]
NoOfEmployees = Annotated[
    str | None,
    Field(alias="noOfEmployees", description='A range, e.g. "100-500".'),
    Text(
        max_length=50,
        import_aliases=("Employees", "No. of Employees", "Number of Employees", "Company Size"),
    ),
]
AnnualRevenue = Annotated[
    float | None,
    Field(alias="annualRevenue", description="Annual revenue of the company; never negative."),
    # 1e15 is beyond any company; it keeps sums and sorts sane.
    Number(maximum=1e15, import_aliases=("Revenue", "Annual Revenue")),
]
Territory = Annotated[
    str | None,
    Field(description="Sales territory (region)."),
    Text(max_length=100, import_aliases=("Region",)),
]
LeadOwner = Annotated[
    str | None,
    Field(alias="leadOwner", description="Name of the user who owns the lead."),
    Text(
        default_hint="Defaults to the caller's name.",
        import_aliases=("Owner", "Lead Owner", "Assigned To"),
    ),
]
LeadOwnerId = Annotated[
    str | None,
    Field(
        alias="leadOwnerId",
        description="User id (`sub`) of the owner: a `sales` user sees and changes only the "
        "leads they own. Set at creation (the creator, or the owner given); changed by "
        "assignLead / assignLeads only. Null for leads that predate ownership.",
    ),
    ReadOnly(import_aliases=("Owner ID", "Lead Owner ID")),
]
CreatedAt = Annotated[
    StoredDateTime, Field(alias="createdAt", description="When the lead was created."), ReadOnly()
]
CreatedBy = Annotated[
    str | None, Field(alias="createdBy", description="User id of the creator."), ReadOnly()
]
UpdatedAt = Annotated[
    StoredDateTime,
    Field(
        alias="updatedAt",
        description="When the lead or its timeline last changed (a sent email counts too).",
    ),
    ReadOnly(),
]
ConvertedToDeal = Annotated[
    bool,
    Field(
        alias="convertedToDeal",
        description="Whether the lead was converted to a deal (see `deal`).",
    ),
    ReadOnly(),
]


class LeadFields(BaseModel):
    """A lead's fields, in API order; `LeadDocument` adds what only storage needs."""

    model_config = ConfigDict(populate_by_name=True)

    lead_id: LeadId
    salutation: Salutation = None
    first_name: FirstName
    last_name: LastName = None
    email: Email = None
    mobile: Mobile = None
    organization: Organization = None
    website: Website = None
    job_title: JobTitle = None
    industry: Industry = None
    source: Source = None
    status: Status = LeadStatus.NEW
    gender: Gender = None
    no_of_employees: NoOfEmployees = None
    annual_revenue: AnnualRevenue = None
    territory: Territory = None
    lead_owner: LeadOwner = None
    lead_owner_id: LeadOwnerId = None
    created_at: CreatedAt
    created_by: CreatedBy = None
    updated_at: UpdatedAt
    converted_to_deal: ConvertedToDeal = False


def spec_of(model: type[BaseModel], name: str) -> FieldSpec | None:
    """The catalog's spec of one of `model`'s fields (None for a field not from a catalog)."""
    return next(
        (item for item in model.model_fields[name].metadata if isinstance(item, FieldSpec)), None
    )


def specs(model: type[BaseModel], *, writable: bool = False) -> dict[str, FieldSpec]:
    """`{python_name: spec}` of `model`'s catalog fields (only client-writable ones if asked)."""
    found = {name: spec_of(model, name) for name in model.model_fields}
    kinds = WRITABLE if writable else FieldSpec
    return {name: spec for name, spec in found.items() if isinstance(spec, kinds)}


def stored_name(model: type[BaseModel], name: str) -> str:
    return model.model_fields[name].alias or name


def copied_from_lead(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields `model` declares with a lead field's own type: what it copies from a lead."""
    lead_specs = specs(LeadFields)
    return tuple(
        name
        for name in model.model_fields
        if name in lead_specs and spec_of(model, name) is lead_specs[name]
    )


def default_of(model: type[BaseModel], name: str) -> Any:
    return model.model_fields[name].get_default(call_default_factory=True)
