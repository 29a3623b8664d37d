"""Beanie documents, one module per collection."""

from beanie import Document

from models.api_key import ApiKeyDocument
from models.call import CallDocument
from models.contact import ContactDocument
from models.counter import Counter
from models.deal import DealDocument
from models.email import EmailDocument
from models.import_job import (
    ImportDuplicateDocument,
    ImportFileChunk,
    ImportJobDocument,
    ImportRowDocument,
)
from models.lead import LeadDocument
from models.merge import LeadMergeDocument
from models.note import NoteDocument
from models.organization import OrganizationDocument
from models.task import TaskDocument

DOCUMENT_MODELS: list[type[Document]] = [
    LeadDocument,
    EmailDocument,
    CallDocument,
    TaskDocument,
    NoteDocument,
    DealDocument,
    OrganizationDocument,
    ContactDocument,
    Counter,
    ApiKeyDocument,
    ImportJobDocument,
    ImportFileChunk,
    ImportRowDocument,
    ImportDuplicateDocument,
    LeadMergeDocument,
]
