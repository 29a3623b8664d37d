"""The GraphiQL playground works offline: its page loads only what our server serves, and a
headless Chromium that may reach nothing but 127.0.0.1 runs a query with the dev token."""

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Page,
    Route,
    WebSocket,
    async_playwright,
    expect,
)
from starlette.applications import Starlette

import playground
from tests.live_server import CRM, ROOT, LiveServer, serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = ROOT / ".artifacts" / "graphiql.png"
RENDERED_MS = 15_000  # first render, generous for a busy CI machine
HTML = {"accept": "text/html"}
SUBSCRIPTION = "subscription Timeline { leadActivity { activity { type } } }"
CONFIG = re.compile(r'<script id="graphiql-config" type="application/json">(.*?)</script>', re.S)


class AssetLinks(HTMLParser):
    """The URLs of a page's scripts and stylesheets."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        url = attributes.get("src") if tag == "script" else attributes.get("href")
        if url and (tag == "script" or attributes.get("rel") == "stylesheet"):
            self.urls.append(url)


def page_config(page: str) -> dict[str, str]:
    match = CONFIG.search(page)
    assert match, page
    config: dict[str, str] = json.loads(match.group(1))
    return config


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # The build step the README runs before `crm serve` (which never builds anything).
    built = subprocess.run(
        [CRM, "build-playground"], cwd=ROOT, capture_output=True, text=True, timeout=660
    )
    assert built.returncode == 0, f"crm build-playground failed:\n{built.stdout}{built.stderr}"
    assert playground.assets_installed()
    with serve(tmp_path_factory.mktemp("playground-data")) as live:
        yield live


# --- HTTP ------------------------------------------------------------------------------


def test_page_loads_only_same_origin_assets(dev_server: LiveServer) -> None:
    with httpx.Client(base_url=dev_server.base_url) as client:
        response = client.get("/graphql", headers=HTML)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in response.headers["content-security-policy"]
        urls = AssetLinks(response.text).urls
        assert len(urls) == len(playground.ASSETS), urls
        for url in urls:
            assert url.startswith("/"), url  # a path on this server,
            assert not url.startswith("//"), url  # not another host's
            asset = client.get(url)
            assert asset.status_code == 200, url
            expected = "text/css" if url.endswith(".css") else "text/javascript"
            assert asset.headers["content-type"].startswith(expected), url
            assert "immutable" in asset.headers["cache-control"], url


def test_only_allowlisted_assets_are_served(dev_server: LiveServer) -> None:
    version = playground.asset_version()
    with httpx.Client(base_url=dev_server.base_url) as client:
        assert client.get(f"/graphiql/{version}/graphiql.min.js").status_code == 200
        for path in (
            f"/graphiql/{version}/nope.js",
            f"/graphiql/{version}/package.json",
            f"/graphiql/{version}/index.html",
            f"/graphiql/{version}/..%2F__init__.py",
            f"/graphiql/{version}/%2e%2e%2f%2e%2e%2fserver.py",
            "/graphiql/0000000000000000/graphiql.min.js",
        ):
            assert client.get(path).status_code == 404, path


def test_dev_mode_page_prefills_the_printed_token(dev_server: LiveServer) -> None:
    page = httpx.get(dev_server.url, headers=HTML).text
    headers = json.loads(page_config(page)["defaultHeaders"])
    assert headers == {"Authorization": f"Bearer {dev_server.dev_token()}"}


async def test_page_with_a_configured_secret_prefills_no_token(http: httpx.AsyncClient) -> None:
    page = (await http.get("/graphql", headers=HTML)).text  # conftest's app has CRM_JWT_SECRET
    assert json.loads(page_config(page)["defaultHeaders"]) == {"Authorization": "Bearer "}
    assert "eyJ" not in page


@contextmanager
def dev_token(app: Starlette, token: str) -> Iterator[None]:
    """The in-process app (not in dev mode) as if it had minted `token` on start."""
    app.state.dev_token = token
    try:
        yield
    finally:
        app.state.dev_token = None


async def test_dev_token_goes_to_loopback_browsers_only(app: Starlette) -> None:
    transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as client:
        with dev_token(app, "the-dev-token"):
            page = (await client.get("/graphql", headers=HTML)).text
    assert "the-dev-token" not in page
    assert json.loads(page_config(page)["defaultHeaders"]) == {"Authorization": "Bearer "}


async def test_injected_values_cannot_close_the_config_script(
    app: Starlette, http: httpx.AsyncClient
) -> None:
    with dev_token(app, "</script><script>alert(1)</script>"):
        page = (await http.get("/graphql", headers=HTML)).text
    assert "<script>alert(1)" not in page
    headers = json.loads(page_config(page)["defaultHeaders"])
    assert headers == {"Authorization": "Bearer </script><script>alert(1)</script>"}


@pytest.fixture
def unbuilt_playground(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The playground folder as a fresh clone has it (no node_modules), and no npm on PATH."""
    for name in ("package.json", "package-lock.json", "index.html", "playground.js"):
        (tmp_path / name).write_bytes((playground.ROOT / name).read_bytes())
    monkeypatch.setattr(playground, "ROOT", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm here
    return tmp_path


async def test_without_assets_the_page_says_to_run_build_playground(
    http: httpx.AsyncClient, unbuilt_playground: Path
) -> None:
    response = await http.get("/graphql", headers=HTML)
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>GraphiQL is not built</h1>" in response.text
    assert "<pre>crm build-playground</pre>" in response.text
    assert "uv run crm build-playground" in response.text
    # The API itself still answers (a GraphQL GET without a token: 401, not the page).
    assert (await http.get("/graphql", params={"query": "{ me { id } }"})).status_code == 401


def test_build_playground_without_npm_fails_saying_so(unbuilt_playground: Path) -> None:
    # `crm build-playground` in a process of its own (it sets up logging), on the copy.
    script = (
        "import sys, pathlib, cli, playground; playground.ROOT = pathlib.Path(sys.argv[1]); "
        "cli.main(['build-playground'])"
    )
    built = subprocess.run(
        [sys.executable, "-c", script, str(unbuilt_playground)],
        cwd=ROOT,
        env={**os.environ, "PATH": str(unbuilt_playground)},  # no npm
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert built.returncode == 1, built.stderr
    assert "npm not found" in built.stderr
    assert "crm build-playground: GraphiQL's files are not built" in built.stderr
    assert "Traceback" not in built.stderr
    assert not (unbuilt_playground / "node_modules").exists()


# --- the browser -----------------------------------------------------------------------
# Playwright's async API: its sync API runs an event loop of its own, which would stop
# pytest-asyncio from running the (async) fixtures of the tests that follow.


@pytest.fixture(scope="module")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing; the GraphiQL check needs it: "
            "`apt-get install -y chromium` (Debian/Ubuntu; .ci/run does this)"
        )
    return CHROMIUM


@pytest.fixture(scope="module")
async def browser(chromium_path: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as driver:
        chromium = await driver.chromium.launch(
            executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def offline_page(browser: Browser, dev_server: LiveServer) -> AsyncIterator[Page]:
    """A fresh page that may reach only 127.0.0.1; asserts afterwards it never tried more."""
    blocked: list[str] = []
    errors: list[str] = []

    async def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            blocked.append(route.request.url)
            await route.abort()

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":  # e.g. a 401 on the schema fetch, a CSP violation
            errors.append(message.text)

    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    await context.route("**/*", only_loopback)
    page = await context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", console)
    await page.goto(dev_server.url)
    yield page
    await context.close()
    assert blocked == [], "the page reached for other hosts"
    assert errors == [], "the page logged errors"


async def run_in_graphiql(page: Page, document: str) -> None:
    """Type a named operation into GraphiQL's query editor and press its execute button."""
    await page.locator(".graphiql-query-editor .CodeMirror").click(timeout=RENDERED_MS)
    await page.keyboard.press("Control+A")
    # insert_text, not type: CodeMirror would auto-close every bracket typed.
    await page.keyboard.insert_text(document)
    # GraphiQL parses the text a moment later (and only then knows a subscription is one);
    # the tab taking the operation's name shows that it has.
    name = document.split("{")[0].split()[-1]
    await expect(page.locator(".graphiql-tab-active")).to_have_text(name)
    await page.locator(".graphiql-execute-button").click()


async def test_graphiql_runs_a_query_offline_with_the_dev_token(offline_page: Page) -> None:
    started = time.monotonic()
    # The header editor is open and shows the dev token.
    header_editor = offline_page.locator(".graphiql-editor-tool")
    await expect(header_editor).to_contain_text("Bearer eyJ", timeout=RENDERED_MS)
    await run_in_graphiql(offline_page, "query Me { me { id name role } }")
    await expect(offline_page.locator(".graphiql-response")).to_contain_text('"dev-admin"')
    SCREENSHOT.parent.mkdir(exist_ok=True)
    await offline_page.screenshot(path=SCREENSHOT)
    print(f"GraphiQL ran the query in {time.monotonic() - started:.1f} s; see {SCREENSHOT}")


async def test_graphiql_subscribes_over_websocket_with_the_headers(
    offline_page: Page, dev_server: LiveServer
) -> None:
    frames: list[tuple[str, str | bytes]] = []

    def record(socket: WebSocket) -> None:
        socket.on("framesent", lambda frame: frames.append(("sent", frame)))
        socket.on("framereceived", lambda frame: frames.append(("received", frame)))

    offline_page.on("websocket", record)
    await run_in_graphiql(offline_page, SUBSCRIPTION)
    deadline = time.monotonic() + 10
    # graphql-ws subscribes once the server acknowledged connection_init (what then
    # happens to the subscription is the server's business, tested elsewhere).
    while not any(kind == "sent" and '"subscribe"' in str(frame) for kind, frame in frames):
        # A browser's graphql-ws reads text frames only (binary arrives as a Blob).
        assert all(isinstance(frame, str) for _, frame in frames), f"binary frames: {frames}"
        assert time.monotonic() < deadline, frames
        await asyncio.sleep(0.05)
    messages = [(kind, json.loads(frame)) for kind, frame in frames]
    init = {
        "type": "connection_init",
        "payload": {"Authorization": f"Bearer {dev_server.dev_token()}"},
    }
    assert messages[0] == ("sent", init)
    assert ("received", {"type": "connection_ack"}) in messages
    subscribe = next(message for _, message in messages if message["type"] == "subscribe")
    assert subscribe["payload"]["query"] == SUBSCRIPTION
