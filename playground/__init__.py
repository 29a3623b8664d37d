"""The GraphiQL playground: its HTML page and the browser assets it loads, all served by us.

The assets come from npm (versions pinned by `package-lock.json` in this folder) and are
installed into `node_modules/` here by `ensure_assets()`, so the browser never needs a CDN.
That is a build step (`crm build-playground`, the Docker build, the test session): serving
never runs npm, and while the files are missing the page says how to build them.
"""

import hashlib
import html
import ipaddress
import json
import logging
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Final

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

log = logging.getLogger("crm.playground")

ROOT: Path = Path(__file__).resolve().parent
"""This folder: package.json, package-lock.json, the page template and our boot script."""

ASSETS: Final[dict[str, str]] = {
    "react.production.min.js": "node_modules/react/umd/react.production.min.js",
    "react-dom.production.min.js": "node_modules/react-dom/umd/react-dom.production.min.js",
    "graphiql.min.js": "node_modules/graphiql/graphiql.min.js",
    "graphiql.min.css": "node_modules/graphiql/graphiql.min.css",
    "graphql-ws.min.js": "node_modules/graphql-ws/umd/graphql-ws.min.js",
    "playground.js": "playground.js",
}
"""Every file the asset route serves: URL name → path under ROOT. Nothing else is served."""

MEDIA_TYPES: Final = {".js": "text/javascript", ".css": "text/css"}
BUILD_COMMAND: Final = "crm build-playground"
INSTALL_HINT: Final = (
    "install Node.js >= 20 with npm, then run `" + BUILD_COMMAND + "` (it runs `npm ci` in {root})"
)
# The npm-installed files match the lockfile of this stamp (`npm ci` wrote them from it).
STAMP: Final = "node_modules/.crm-installed-lock"
# Asset URLs carry a version (see asset_version), so browsers may cache them for good.
IMMUTABLE: Final = "public, max-age=31536000, immutable"
# The page holds a token: nothing but our own origin may be loaded or contacted from it.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PLACEHOLDER: Final = re.compile(r"\{\{asset:([\w.-]+)\}\}")
DEFAULT_QUERY: Final = """\
# The CRM leads API. Run a query with Ctrl-Enter or the ▶ button;
# the Docs pane (top left) lists every type and field.
{
  me {
    id
    name
    role
  }
}
"""


def _lockfile_digest() -> str:
    return hashlib.sha256((ROOT / "package-lock.json").read_bytes()).hexdigest()


def assets_installed() -> bool:
    """Every npm asset is on disk, installed from the current lockfile."""
    stamp = ROOT / STAMP
    return (
        stamp.is_file()
        and stamp.read_text().strip() == _lockfile_digest()
        and all((ROOT / path).is_file() for path in ASSETS.values())
    )


def ensure_assets() -> bool:
    """Install the npm assets (`npm ci`) unless already installed; False if that failed."""
    if assets_installed():
        return True
    npm = shutil.which("npm")
    if npm is None:
        log.warning("GraphiQL assets missing and npm not found: %s", INSTALL_HINT.format(root=ROOT))
        return False
    log.info("installing the GraphiQL assets: npm ci in %s", ROOT)
    # --ignore-scripts: we only need the packages' files, never their install hooks.
    try:
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,  # an unreachable registry must not hold up the server for ever
        )
    except subprocess.TimeoutExpired:
        log.error("npm ci took over 10 minutes; gave up: %s", INSTALL_HINT.format(root=ROOT))
        return False
    if result.returncode != 0:
        log.error("npm ci failed (%s):\n%s%s", result.returncode, result.stdout, result.stderr)
        return False
    (ROOT / STAMP).write_text(_lockfile_digest() + "\n")
    return assets_installed()


@cache
def asset_version() -> str:
    """Changes whenever a served file may change: the lockfile or our own boot script."""
    digest = hashlib.sha256((ROOT / "package-lock.json").read_bytes())
    digest.update((ROOT / ASSETS["playground.js"]).read_bytes())
    return digest.hexdigest()[:16]


async def asset(request: Request) -> Response:
    """One allowlisted asset file, cacheable forever under its versioned URL."""
    path = ASSETS.get(request.path_params["name"])
    if path is None or request.path_params["version"] != asset_version():
        return PlainTextResponse("Not Found", status_code=404)
    file = ROOT / path
    if not file.is_file():
        return PlainTextResponse("Not Found", status_code=404)
    return FileResponse(
        file,
        media_type=MEDIA_TYPES[file.suffix],
        headers={"Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff"},
    )


routes: list[BaseRoute] = [Route("/graphiql/{version}/{name}", asset, name="graphiql-asset")]
"""The asset route(s) to mount on the app."""


MISSING_PAGE: Final = """<!doctype html>
<html lang="en"><meta charset="utf-8"><title>GraphiQL is not built</title>
<h1>GraphiQL is not built</h1>
<p>The GraphQL endpoint works (POST queries here with a bearer token); only the GraphiQL
playground's browser files are missing (the server log says where they go). Build them once,
with Node.js &ge; 20 and npm installed, then reload this page:</p>
<pre>{command}</pre>
<p>(In a source checkout: <code>uv run {command}</code>. The server never builds them itself.)</p>
</html>
"""
"""The page served instead of GraphiQL while its npm files are missing (HTTP 503)."""


def _is_loopback(request: Request) -> bool:
    try:
        return request.client is not None and ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


def render_page(request: Request, dev_token: str | None) -> Response:
    """The GraphiQL page for the endpoint at request's URL, headers prefilled with dev_token.

    The dev token only goes to browsers on this machine (it is printed on this machine's
    console anyway); anyone else gets the `Bearer ` placeholder to fill in.
    """
    if not assets_installed():
        return HTMLResponse(
            MISSING_PAGE.format(command=html.escape(BUILD_COMMAND)),
            status_code=503,
            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
        )
    token = dev_token if dev_token and _is_loopback(request) else ""
    config = {
        "endpoint": request.url.path,
        "defaultHeaders": json.dumps({"Authorization": f"Bearer {token}"}, indent=2),
        "defaultQuery": DEFAULT_QUERY,
    }

    def asset_url(match: re.Match[str]) -> str:
        name = match[1]
        if name not in ASSETS:
            raise KeyError(f"index.html uses an asset not in ASSETS: {name}")
        url = request.url_for("graphiql-asset", version=asset_version(), name=name)
        return html.escape(url.path)

    page = PLACEHOLDER.sub(asset_url, (ROOT / "index.html").read_text(encoding="utf-8"))
    # A JSON data block is never run, and with every `<` escaped no value can end it early.
    page = page.replace("{{config}}", json.dumps(config).replace("<", "\\u003c"))
    return HTMLResponse(
        page,
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )
