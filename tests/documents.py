"""GraphQL documents the tests send, as module constants."""

LEAD_FIELDS = """
  id leadId salutation firstName lastName fullName email mobile organization website
  jobTitle industry source status gender noOfEmployees annualRevenue territory leadOwner
  createdAt createdBy updatedAt convertedToDeal activitiesCount
  activities { type description by timestamp field oldValue newValue }
"""

CREATE_LEAD = f"""
mutation CreateLead($input: CreateLeadInput!) {{
  createLead(input: $input) {{ lead {{ {LEAD_FIELDS} }} }}
}}
"""

GET_LEAD = f"""
query GetLead($leadId: String!) {{
  lead(leadId: $leadId) {{
    {LEAD_FIELDS}
    emails {{ id leadId from to cc bcc subject body timestamp status sentBy }}
    calls {{ id leadId type duration from to phone timestamp status loggedBy }}
    tasks {{ id leadId title description status assignedTo dueDate priority
             createdAt createdBy updatedAt }}
    notes {{ id leadId title content createdAt createdBy }}
    deal {{ id dealId leadId status dealOwner annualRevenue
            organization {{ id name website industry }}
            contact {{ id firstName lastName email organization {{ name }} }} }}
  }}
}}
"""

UPDATE_LEAD = f"""
mutation UpdateLead($leadId: String!, $input: UpdateLeadInput!) {{
  updateLead(leadId: $leadId, input: $input) {{ lead {{ {LEAD_FIELDS} }} }}
}}
"""

UPDATE_LEAD_STATUS = f"""
mutation UpdateLeadStatus($leadId: String!, $status: LeadStatus!) {{
  updateLeadStatus(leadId: $leadId, status: $status) {{ lead {{ {LEAD_FIELDS} }} }}
}}
"""

DELETE_LEAD = """
mutation DeleteLead($leadId: String!) {
  deleteLead(leadId: $leadId) { leadId deletedEmails deletedCalls deletedTasks deletedNotes }
}
"""

SEND_EMAIL = """
mutation SendEmail($leadId: String!, $input: SendEmailInput!) {
  sendEmail(leadId: $leadId, input: $input) {
    email { id leadId from to cc bcc subject body timestamp status sentBy }
    lead { id leadId activitiesCount activities { type description by } }
  }
}
"""

LOG_CALL = """
mutation LogCall($leadId: String!, $input: LogCallInput!) {
  logCall(leadId: $leadId, input: $input) {
    call { id leadId type duration from to phone timestamp status loggedBy }
    lead { id leadId activitiesCount activities { type description by } }
  }
}
"""

CREATE_TASK = """
mutation CreateTask($leadId: String!, $input: CreateTaskInput!) {
  createTask(leadId: $leadId, input: $input) {
    task { id leadId title description status assignedTo dueDate priority createdAt createdBy }
    lead { id leadId activitiesCount activities { type description by } }
  }
}
"""

UPDATE_TASK = """
mutation UpdateTask($id: ID!, $input: UpdateTaskInput!) {
  updateTask(id: $id, input: $input) {
    task { id title status priority assignedTo dueDate updatedAt }
    lead { id leadId activities { type description by } }
  }
}
"""

CREATE_NOTE = """
mutation CreateNote($leadId: String!, $input: CreateNoteInput!) {
  createNote(leadId: $leadId, input: $input) {
    note { id leadId title content createdAt createdBy }
    lead { id leadId activitiesCount activities { type description by } }
  }
}
"""

CONVERT_LEAD = """
mutation Convert($leadId: String!, $input: ConvertLeadInput) {
  convertLeadToDeal(leadId: $leadId, input: $input) {
    lead { id leadId status convertedToDeal deal { dealId } activities { type description } }
    deal {
      id dealId leadId status dealOwner annualRevenue website territory industry source
      noOfEmployees createdAt createdBy
      organization { id name website industry noOfEmployees annualRevenue territory }
      contact { id salutation firstName lastName email mobile jobTitle organization { id name } }
    }
  }
}
"""

LIST_LEADS = """
query Leads($first: Int, $after: String, $filter: LeadFilter, $orderBy: LeadOrder) {
  leads(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { leadId } }
    nodes { leadId firstName annualRevenue createdAt }
  }
}
"""
