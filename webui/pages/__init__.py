"""The web UI's pages: server-rendered Jinja2 shells (texts in the reader's language) whose plain
JavaScript modules talk to the same public REST API and gateway as every other client.

Every asset is served from `/static` by Townsquare itself, and each page carries a Content
Security Policy that forbids any other origin, so the UI works with no network at all.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from .i18n import LANG_COOKIE, LANGUAGES, choose_language, texts

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "static"

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(ROOT / "templates"), autoescape=select_autoescape(["html"]),
                       trim_blocks=True, lstrip_blocks=True)


@lru_cache(maxsize=1)
def asset_version() -> str:
    """A digest of every static file: the `?v=` that busts browser caches after an upgrade."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(STATIC).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _csp(request: Request) -> str:
    # Same origin only. The gateway is named explicitly because not every browser counts ws: as 'self'.
    host = request.headers.get("host", "")
    ws = f"ws://{host} wss://{host}" if host else ""
    return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            f"media-src 'self' blob:; connect-src 'self' {ws}; font-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")


def render(request: Request, template: str, **context: Any) -> HTMLResponse:
    lang = choose_language(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE),
                           request.headers.get("accept-language"))
    words = texts(lang)

    def t(key: str, **values: Any) -> str:
        text = words.get(key, key)
        return text.format(**values) if values else text

    html = _environment().get_template(template).render(
        request=request, lang=lang, languages=LANGUAGES, t=t, v=asset_version(),
        i18n_json=orjson.dumps(words).decode(), **context)
    response = HTMLResponse(html, headers={
        "Content-Security-Policy": _csp(request), "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"})
    if request.query_params.get("lang") == lang:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
    return response


@router.get("/")
async def index() -> Response:
    return RedirectResponse("/app", status_code=302)


@router.get("/login")
async def login(request: Request) -> HTMLResponse:
    return render(request, "auth.html", page="login")


@router.get("/app")
@router.get("/app/{path:path}")
async def chat(request: Request, path: str = "") -> HTMLResponse:
    return render(request, "chat.html", page="chat")


@router.get("/admin")
@router.get("/admin/{path:path}")
async def admin(request: Request, path: str = "") -> HTMLResponse:
    return render(request, "admin.html", page="admin")


class _Static(StaticFiles):
    """Static files that browsers may keep: every URL carries the asset version."""

    async def get_response(self, path: str, scope: Any) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
            response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def mount(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", _Static(directory=STATIC), name="static")
