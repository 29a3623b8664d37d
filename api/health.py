"""Operational routes: `/healthz` (process alive), `/readyz` (database reachable) and, with
CRM_BENCH=1, `/debug/stats` for the benchmarks."""

import logging
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from models.database import Database

log = logging.getLogger("crm.health")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    database: Database = request.app.state.database
    try:
        await database.ping()
    except Exception as error:  # noqa: BLE001 - any failure means "not ready"
        log.warning("readiness check failed: %s", error)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


async def debug_stats(request: Request) -> Response:
    """CRM_BENCH=1 only: counters bench/run.py reads before and after each operation."""
    database: Database = request.app.state.database
    embedded = database.embedded
    return JSONResponse(
        {
            "commands": database.commands.count,
            "command_seconds": database.commands.seconds,
            "cpu_seconds": time.process_time(),  # the whole process, the embedded engine too
            "embedded_cpu_seconds": embedded.cpu_seconds() if embedded else None,
        }
    )
