"""Test and benchmark instruments cost nothing when off and never grow when on."""

from pymongo import monitoring

from config import Settings
from models.database import RECENT_COMMANDS, CommandCounter, Database


def started(name: str) -> monitoring.CommandStartedEvent:
    return monitoring.CommandStartedEvent({name: 1, "$db": "crm"}, "crm", 1, ("127.0.0.1", 1), 1)


def test_the_command_counter_keeps_totals_and_only_the_latest_names() -> None:
    counter = CommandCounter()
    for i in range(10 * RECENT_COMMANDS):
        counter.started(started(f"cmd{i}"))

    assert counter.count == 10 * RECENT_COMMANDS
    assert len(counter.names) == RECENT_COMMANDS
    assert counter.names[-1] == f"cmd{10 * RECENT_COMMANDS - 1}"


async def test_only_tests_and_benchmarks_register_a_command_listener(settings: Settings) -> None:
    """Production (neither CRM_BENCH nor CRM_COUNT_COMMANDS): the driver has no listener, so
    it publishes no command events and nothing is kept per command. CRM_BENCH counts."""
    for bench, listeners in ((False, 0), (True, 1)):
        database = Database(settings.model_copy(update={"bench": bench, "count_commands": False}))
        await database.connect()
        try:
            assert database.client is not None
            assert len(database.client.options.event_listeners) == listeners
            database.commands.reset()
            await database.ping()
            assert list(database.commands.names) == ["ping"] * listeners
            assert database.commands.count == listeners
        finally:
            await database.close()
