"""A server process for the bench scripts: run a server command on a free loopback port with
its output in a log file, wait until `/readyz` answers 200 (or fail with the log), stop it.

Imported as `bench.server_process` by bench/run.py and bench/soak.py, which put the repository
root on `sys.path` first.
"""

import os
import re
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.live_server import free_port

START_TIMEOUT = 180.0  # generous for a loaded machine (serving never builds GraphiQL's files)
STOP_TIMEOUT = 30.0  # after terminate, how long to wait before kill


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    """`http://127.0.0.1:<port>`, no path."""
    log: Path
    """The process's stdout and stderr."""

    def process_cpu_seconds(self) -> float | None:
        """utime + stime of the whole server process, from outside (any checkout)."""
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss(self) -> int | None:
        """Resident set size of the server process in bytes (the embedded engine included:
        it runs on a thread of that process)."""
        with suppress(ImportError):
            import psutil  # type: ignore[import-not-found, import-untyped, unused-ignore]

            with suppress(psutil.Error):
                return int(psutil.Process(self.process.pid).memory_info().rss)
            return None
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        return int(match.group(1)) * 1024 if match else None


@contextmanager
def run_server(
    command: Sequence[str],
    env: Mapping[str, str],
    work: Path,
    *,
    start_timeout: float = START_TIMEOUT,
    stop_timeout: float = STOP_TIMEOUT,
) -> Iterator[ServerProcess]:
    """`command` (a server honouring CRM_HOST/CRM_PORT) until the block ends, with `work` as
    its working directory; its output goes to work/server.log. Exits with that log if it
    does not answer `/readyz` with 200 within `start_timeout` seconds or dies first."""
    port = free_port()
    log = work / "server.log"
    with log.open("wb") as output:
        # cwd outside any checkout: no stray `.env` changes the configuration.
        process = subprocess.Popen(
            list(command),
            cwd=work,
            env={**env, "CRM_HOST": "127.0.0.1", "CRM_PORT": str(port)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            with suppress(httpx.HTTPError):
                if httpx.get(f"{server.base_url}/readyz", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("server did not start:\n" + log.read_text(errors="replace"))
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
