"""Realistic demo data: leads with emails, calls, tasks, notes and the timelines they leave.

Used by `crm seed-demo` and the benchmarks. Entries are worded by the timeline service, as
the API's own writes are, but dated over the past months so the data looks lived in.
"""

import itertools
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from models.activity import Activity, ActivityType
from models.base import CrmDocument, utc_now
from models.call import CallDocument, CallStatus, CallType
from models.email import EmailDocument
from models.fields import LeadStatus
from models.lead import LeadDocument
from models.note import NoteDocument
from models.task import TaskDocument, TaskPriority, TaskStatus
from services import normalize, sequence, timeline

BATCH_SIZE = 200

FIRST_NAMES = ("Ada", "Grace", "Alan", "Linus", "Margaret", "Barbara", "Dennis", "Ken", "Radia",
               "Frances", "Edsger", "Tim", "Guido", "Katherine", "Donald", "Sophie", "Hedy",
               "Niklaus", "Ivan", "Joan", "Leslie", "Shafi", "Lynn", "Anita")  # fmt: skip
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Liskov", "Ritchie",
              "Thompson", "Perlman", "Allen", "Dijkstra", "Rossum", "Johnson", "Knuth", "Wilson",
              "Lamarr", "Wirth", "Sutherland", "Clarke", "Lamport", "Conway")  # fmt: skip
COMPANIES = (
    "Acme Corp", "Globex", "Initech", "Umbrella Health", "Stark Industries", "Wayne Logistics",
    "Hooli", "Pied Piper", "Vandelay Imports", "Soylent Foods", "Tyrell Systems", "Cyberdyne",
    "Wonka Confectionery", "Gringotts Finance", "Oscorp", "Aperture Labs", "Black Mesa",
    "Monarch Travel", "Nakatomi Trading", "Dunder Mifflin",
)  # fmt: skip
INDUSTRIES = ("Software", "Healthcare", "Finance", "Manufacturing", "Retail", "Logistics",
              "Education", "Energy", "Media", "Travel")  # fmt: skip
SOURCES = ("Website", "Referral", "Cold Call", "Campaign", "Trade Show", "LinkedIn", "Partner")
TERRITORIES = ("North America", "EMEA", "APAC", "LATAM")
JOB_TITLES = ("CTO", "VP Engineering", "Head of Sales", "Operations Manager", "CEO",
              "Procurement Lead", "IT Director", "CFO", "Product Manager")  # fmt: skip
EMPLOYEE_RANGES = ("1-10", "11-50", "51-200", "201-500", "501-1000", "1000+")
OWNERS = ("Sam Seller", "Priya Patel", "Jonas Berg", "Mia Chen")
EMAIL_SUBJECTS = ("Introduction", "Following up on our call", "Pricing overview",
                  "Your case study", "Meeting next week?", "Proposal attached")  # fmt: skip
TASK_TITLES = ("Send proposal", "Schedule demo", "Prepare quote", "Check budget with finance",
               "Follow up by phone", "Book on-site visit")  # fmt: skip
NOTE_TEXTS = (
    "Interested in the enterprise plan; budget approval expected next quarter.",
    "Currently using a competitor; contract ends in six months.",
    "Asked for SSO and an audit log before a pilot.",
    "Decision maker is the CFO; keep her in copy.",
    "Prefers calls in the morning, Central European Time.",
)
# Where a lead ends up, and the path that gets it there.
STATUS_PATHS = (
    (LeadStatus.NEW,),
    (LeadStatus.NEW, LeadStatus.CONTACTED),
    (LeadStatus.NEW, LeadStatus.CONTACTED, LeadStatus.NURTURE),
    (LeadStatus.NEW, LeadStatus.CONTACTED, LeadStatus.QUALIFIED),
    (LeadStatus.NEW, LeadStatus.CONTACTED, LeadStatus.UNQUALIFIED),
    (LeadStatus.NEW, LeadStatus.JUNK),
)


@dataclass
class DemoBatch:
    """One batch of generated documents, inserted collection by collection."""

    leads: list[LeadDocument] = field(default_factory=list)
    children: list[CrmDocument] = field(default_factory=list)

    async def insert(self) -> None:
        await LeadDocument.insert_many(self.leads)
        for kind in (EmailDocument, CallDocument, TaskDocument, NoteDocument):
            documents = [child for child in self.children if isinstance(child, kind)]
            if documents:
                await kind.insert_many(documents)


def demo_lead(
    rng: random.Random, number: int, now: datetime
) -> tuple[LeadDocument, list[CrmDocument]]:
    """One lead created up to 120 days ago, its children, and its timeline in time order."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    company = rng.choice(COMPANIES)
    owner = rng.choice(OWNERS)
    domain = company.lower().replace(" ", "") + ".example"
    created = now - timedelta(days=rng.uniform(1, 120))
    moments = sorted(created + timedelta(hours=rng.uniform(1, 24 * 30)) for _ in range(16))
    lead_id = sequence.format_id("LEAD", number)

    emails = [
        EmailDocument(
            lead_id=lead_id, from_=f"{owner.split()[0].lower()}@crm.example",
            to=f"{first.lower()}@{domain}", subject=rng.choice(EMAIL_SUBJECTS),
            body=f"Hi {first},\n\n{rng.choice(NOTE_TEXTS)}\n\nBest,\n{owner}",
            timestamp=moments.pop(), sent_by=owner,
        )
        for _ in range(rng.randint(0, 3))
    ]  # fmt: skip
    calls = [
        CallDocument(
            lead_id=lead_id, type=rng.choice(list(CallType)), duration=rng.randint(20, 1800),
            from_=owner, to=f"{first} {last}", phone=f"+1-555-{rng.randint(1000, 9999)}",
            timestamp=moments.pop(), status=rng.choice(list(CallStatus)), logged_by=owner,
        )
        for _ in range(rng.randint(0, 3))
    ]  # fmt: skip
    tasks = []
    for _ in range(rng.randint(0, 2)):
        at = moments.pop()
        tasks.append(
            TaskDocument(
                lead_id=lead_id, title=rng.choice(TASK_TITLES), status=rng.choice(list(TaskStatus)),
                assigned_to=owner, due_date=at + timedelta(days=rng.randint(1, 14)),
                priority=rng.choice(list(TaskPriority)), created_at=at, created_by=owner,
                updated_at=at,
            )
        )  # fmt: skip
    notes = [
        NoteDocument(
            lead_id=lead_id, content=rng.choice(NOTE_TEXTS), created_at=at, created_by=owner
        )
        for at in (moments.pop() for _ in range(rng.randint(0, 2)))
    ]

    entries: list[Activity] = [
        timeline.activity(ActivityType.CREATED, "Lead created", by=owner, at=created)
    ]
    entries += [timeline.email_sent(email) for email in emails]
    entries += [timeline.call_logged(call, at=call.timestamp) for call in calls]
    entries += [timeline.task_created(task) for task in tasks]
    entries += [timeline.note_added(note) for note in notes]
    path = rng.choice(STATUS_PATHS)
    entries += [
        timeline.lead_field_changed("status", old, new, by=owner, at=moments.pop())
        for old, new in itertools.pairwise(path)
    ]
    entries.sort(key=lambda entry: entry.timestamp)

    lead = LeadDocument(
        lead_id=lead_id, lead_number=number, salutation=rng.choice(("Mr", "Ms", "Dr", None)),
        first_name=first, last_name=last, email=f"{first.lower()}.{last.lower()}@{domain}",
        mobile=f"+1-555-{rng.randint(1000, 9999)}", organization=company,
        website=f"https://{domain}", job_title=rng.choice(JOB_TITLES),
        industry=rng.choice(INDUSTRIES), source=rng.choice(SOURCES), status=path[-1],
        no_of_employees=rng.choice(EMPLOYEE_RANGES),
        annual_revenue=float(rng.randrange(100_000, 50_000_000, 50_000)),
        territory=rng.choice(TERRITORIES), lead_owner=owner, created_at=created,
        created_by="demo", updated_at=entries[-1].timestamp, activities=entries,
    )  # fmt: skip
    for name, value in normalize.lead_keys(lead.model_dump()).items():
        setattr(lead, name, value)
    return lead, [*emails, *calls, *tasks, *notes]


async def add_demo_leads(
    count: int, *, random_seed: int | None = None, progress: Callable[[int], None] | None = None
) -> range:
    """Insert `count` demo leads in batches; returns their numbers."""
    rng = random.Random(random_seed)
    numbers = await sequence.reserve("lead", count) if count else range(0)
    now = utc_now()
    for start in range(0, count, BATCH_SIZE):
        batch = DemoBatch()
        for number in numbers[start : start + BATCH_SIZE]:
            lead, children = demo_lead(rng, number, now)
            batch.leads.append(lead)
            batch.children += children
        await batch.insert()
        if progress:
            progress(len(batch.leads))
    return numbers


class ProgressBar:
    """`[#####.....] 500/1000 leads` on stderr, redrawn in place."""

    WIDTH = 30

    def __init__(self, total: int, unit: str) -> None:
        self.total, self.unit, self.done = total, unit, 0

    def __call__(self, advanced: int) -> None:
        self.done += advanced
        filled = self.WIDTH * self.done // max(self.total, 1)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        end = "\n" if self.done >= self.total else ""
        print(
            f"\r[{bar}] {self.done}/{self.total} {self.unit}", end=end, file=sys.stderr, flush=True
        )
