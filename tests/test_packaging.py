"""The package as users install it: `uv build` makes the wheel, a fresh venv gets it (not
editable, dependencies from uv.lock), and it runs from outside the checkout, so nothing can
be imported from the repository's files by accident.

What the wheel must hold is derived from the code, not from pyproject.toml's list: every
module of the checkout (all but tests/, bench/, examples/) must import from the installed
wheel, so a new top-level module that the wheel leaves out fails here. Dependencies come from
uv's cache (offline) when they are there, as after `uv sync`; otherwise from the index.
"""

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.live_server import ROOT, serve

NOT_SHIPPED = {"tests", "bench", "examples", "docs", "docker"}
"""Top-level folders of the checkout that are not part of the server."""
TIMEOUT = 300
HTML = {"Accept": "text/html"}
CREATE_AND_READ = """
mutation { createLead(input: {firstName: "Wheel", email: "wheel@example.com"}) {
  lead { leadId fullName } } }
"""


@pytest.fixture(autouse=True)
def clean_database() -> None:
    """These tests run their own processes: no database (overrides conftest's fixture)."""


def files_of_the_checkout() -> Iterator[tuple[str, ...]]:
    """Relative paths (as parts) of the server's files: not tests, caches, installed packages."""
    for folder, subfolders, files in os.walk(ROOT):
        here = Path(folder).relative_to(ROOT).parts
        subfolders[:] = sorted(
            name
            for name in subfolders
            if not name.startswith(".")
            and name not in {"node_modules", "__pycache__"}
            and not (not here and name in NOT_SHIPPED)
        )
        for name in sorted(files):
            yield (*here, name)


def modules_of_the_checkout() -> list[str]:
    """Every module the server consists of, from the files: `cli`, `api.limits`, …"""
    found = []
    for parts in files_of_the_checkout():
        if parts[-1].endswith(".py"):
            names = [*parts[:-1], parts[-1].removesuffix(".py")]
            found.append(".".join(names[:-1] if names[-1] == "__init__" else names))
    return found


def package_data_of_the_checkout() -> list[str]:
    """The non-Python files the packages read at run time (the playground's page, lockfile)."""
    return [
        "/".join(parts)
        for parts in files_of_the_checkout()
        if len(parts) > 1
        and (ROOT / parts[0] / "__init__.py").is_file()
        and not parts[-1].endswith((".py", ".pyc"))
    ]


def uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    if found is None:
        pytest.fail("uv is not installed (`pip install uv`); the packaging test builds with it")
    return found


def run(*command: str | Path, cwd: Path = ROOT, offline_first: bool = False) -> str:
    """Run a uv command; with offline_first, from the cache only if that can do it."""
    args = [str(part) for part in command]
    for offline in (True, False) if offline_first else (False,):
        result = subprocess.run(
            [*args, *(["--offline"] if offline else [])],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        if result.returncode == 0:
            return result.stdout
    raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}")


@dataclass
class Installed:
    venv: Path
    elsewhere: Path
    """A working directory outside the checkout."""

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def crm(self) -> Path:
        return self.venv / "bin" / "crm"

    def env(self, **extra: str) -> dict[str, str]:
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("CRM_", "MONGODB_URI", "PYTHON", "VIRTUAL_ENV", "UV_"))
        }
        return {**inherited, **extra}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel `uv build` makes, installed with uv.lock's dependencies into a fresh venv."""
    work = tmp_path_factory.mktemp("wheel")
    dist = work / "dist"
    run(uv(), "build", "--wheel", "--out-dir", dist, ROOT, offline_first=True)
    (wheel,) = dist.glob("*.whl")
    requirements = work / "requirements.txt"
    run(
        uv(), "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes",
        "--output-file", requirements,
    )  # fmt: skip
    venv = work / "venv"
    run(uv(), "venv", "--python", sys.executable, venv, offline_first=True)
    run(
        uv(), "pip", "install", "--python", venv / "bin" / "python",
        "-r", requirements, wheel,
        offline_first=True,
    )  # fmt: skip
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    return Installed(venv, elsewhere)


def test_every_module_of_the_checkout_imports_from_the_installed_wheel(
    installed: Installed,
) -> None:
    modules = modules_of_the_checkout()
    assert {"cli", "config", "server", "api.limits", "services.events"} <= set(modules)
    script = """
import importlib, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        found[name] = importlib.import_module(name).__file__
    except ImportError as error:
        found[name] = f"ImportError: {error}"
print(json.dumps(found))
"""
    # -I: no current directory on sys.path, no PYTHONPATH: only the venv's site-packages.
    result = subprocess.run(
        [installed.python, "-I", "-c", script, *modules],
        cwd=installed.elsewhere,
        env=installed.env(CRM_DATA_DIR=str(installed.elsewhere / "data")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    files: dict[str, str] = json.loads(result.stdout)
    site_packages = str(installed.venv / "lib")
    missing = {name: file for name, file in files.items() if not file.startswith(site_packages)}
    assert not missing, (
        "modules of the checkout missing from the wheel (pyproject.toml's "
        f"[tool.hatch.build.targets.wheel]): {missing}"
    )


def test_the_wheel_holds_the_playground_files(installed: Installed) -> None:
    located = subprocess.run(
        [installed.python, "-I", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        cwd=installed.elsewhere,
        capture_output=True,
        text=True,
        check=True,
    )
    site_packages = Path(located.stdout.strip())
    expected = package_data_of_the_checkout()
    assert "playground/index.html" in expected
    missing = [path for path in expected if not (site_packages / path).is_file()]
    assert not missing, f"files the packages read at run time, missing from the wheel: {missing}"


def test_the_installed_crm_serves_outside_the_checkout_without_building(
    installed: Installed, tmp_path: Path
) -> None:
    # An npm that reports being run: serving must never build GraphiQL's files.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ran_npm = tmp_path / "npm-ran"
    (bin_dir / "npm").write_text(f'#!/bin/sh\necho "$@" >> {ran_npm}\nexit 1\n')
    (bin_dir / "npm").chmod(0o755)
    # PYTHONPATH empty (Python ignores it then): serve() starts from this process's environment.
    path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    env = installed.env(PATH=path, PYTHONPATH="")
    data = tmp_path / "data"
    with serve(
        data, env=env, command=[str(installed.crm), "serve"], cwd=installed.elsewhere
    ) as live:
        with urllib.request.urlopen(f"{live.base_url}/healthz", timeout=10) as response:
            assert response.status == 200
        # A token from the installed `crm token`, with the server's configuration (data dir).
        minted = subprocess.run(
            [installed.crm, "token", "--name", "Wheel Test"],
            cwd=installed.elsewhere,
            env=live.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert minted.returncode == 0, minted.stderr
        request = urllib.request.Request(
            live.url,
            data=json.dumps({"query": CREATE_AND_READ}).encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {minted.stdout.strip()}",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
        assert body == {
            "data": {"createLead": {"lead": {"leadId": "LEAD-001", "fullName": "Wheel"}}}
        }, body
        # No GraphiQL files in a fresh install: the page says how to build them.
        with pytest.raises(urllib.error.HTTPError) as page:
            urllib.request.urlopen(urllib.request.Request(live.url, headers=HTML), timeout=10)
        assert page.value.code == 503
        assert "crm build-playground" in page.value.read().decode()
    assert not ran_npm.exists(), f"`crm serve` ran npm: {ran_npm.read_text()}"
