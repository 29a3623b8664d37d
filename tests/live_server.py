"""A real `crm serve` process (uvicorn, embedded database in its own data dir) for tests that
drive the server from outside: example scripts, Node clients, a browser."""

import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRM = str(Path(sys.executable).parent / "crm")
DEV_TOKEN = re.compile(r"Authorization: Bearer (\S+)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    """The GraphQL endpoint, `http://127.0.0.1:<port>/graphql`."""
    env: dict[str, str]
    """The environment the server runs with (its data dir, port, secret if any)."""
    output: list[str] = field(default_factory=list)
    """Everything the process printed so far, line by line."""

    @property
    def base_url(self) -> str:
        return self.url.removesuffix("/graphql")

    def dev_token(self) -> str:
        """The admin token a dev-mode server prints on start."""
        for line in self.output:
            if match := DEV_TOKEN.search(line):
                return match.group(1)
        raise AssertionError(f"no dev token printed: {self.output}")


@contextmanager
def serve(
    data_dir: Path,
    env: Mapping[str, str] | None = None,
    command: Sequence[str] = (CRM, "serve"),
    cwd: Path = ROOT,
) -> Iterator[LiveServer]:
    """Run `crm serve` (or `command`, from `cwd`) until the block ends; dev mode unless `env`
    sets CRM_JWT_SECRET."""
    port = free_port()
    server_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "MONGODB_URI"))},
        "CRM_DATA_DIR": str(data_dir),
        "CRM_PORT": str(port),
        # Tests send far more than a user would, as one principal (test_api_keys.py tests
        # the limit itself).
        "CRM_RATE_LIMIT_PER_MINUTE": "0",
        **(env or {}),
    }
    process = subprocess.Popen(
        list(command),
        cwd=cwd,
        env=server_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    live = LiveServer(url=f"http://127.0.0.1:{port}/graphql", env=server_env)
    assert process.stdout is not None
    reader = threading.Thread(target=live.output.extend, args=(process.stdout,), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{live.base_url}/readyz", timeout=1)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("server did not start:\n" + "".join(live.output)) from None
                time.sleep(0.2)
        yield live
    finally:
        process.terminate()
        process.wait(timeout=10)
