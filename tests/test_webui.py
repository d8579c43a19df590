"""The web UI's shell: pages in English and French, assets served by Townsquare itself under a
same-origin Content Security Policy, and the login/register page in a real browser."""

from __future__ import annotations

import re

import httpx
import orjson

from townsquare.webui.pages import STATIC
from townsquare.webui.pages.i18n import FOLDER, LANGUAGES, choose_language, own_texts

from .browser import Web
from .helpers import name


def test_every_language_has_every_text() -> None:
    english = own_texts("en")
    for lang in LANGUAGES:
        other = own_texts(lang)
        assert set(other) == set(english), f"{lang}: missing {set(english) - set(other)}, extra {set(other) - set(english)}"
        # the same {placeholders} in both, or a translation would lose a value
        for key, text in english.items():
            assert set(re.findall(r"\{(\w+)\}", other[key])) == set(re.findall(r"\{(\w+)\}", text)), f"{lang}: {key}"
    # every file is a flat dictionary of texts, and no two parts define the same key
    seen: dict[str, str] = {}
    for path in sorted(FOLDER.glob("*.en.json")):
        data = orjson.loads(path.read_bytes())
        assert all(isinstance(v, str) for v in data.values()), path.name
        for key in data:
            assert key not in seen, f"{key} in both {seen[key]} and {path.name}"
            seen[key] = path.name


def test_language_choice() -> None:
    assert choose_language("fr", None, None) == "fr"
    assert choose_language(None, "fr", "en") == "fr"
    assert choose_language(None, None, "de-DE,fr;q=0.8,en;q=0.5") == "fr"
    assert choose_language("xx", "yy", "zz") == "en"
    assert choose_language(None, None, "fr;q=nonsense") == "en"


async def test_pages_render_in_both_languages(client: httpx.AsyncClient) -> None:
    r = await client.get("/login", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<html lang="fr">' in r.text and "Se connecter" in r.text
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    r = await client.get("/login?lang=en", headers={"Accept-Language": "fr"})
    assert '<html lang="en">' in r.text and "Log in" in r.text
    assert r.cookies.get("ts_lang") == "en"
    for path in ("/app", "/app/123/456", "/admin", "/admin/agents/1"):
        r = await client.get(path)
        assert r.status_code == 200, path
    r = await client.get("/")
    assert r.status_code == 302 and r.headers["location"] == "/app"


async def test_every_referenced_asset_is_served_locally(client: httpx.AsyncClient) -> None:
    for page in ("/login", "/app", "/admin"):
        html = (await client.get(page)).text
        refs = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert refs
        for ref in refs:
            if ref.startswith("#") or ref.startswith("?"):
                continue
            assert ref.startswith("/static/"), f"{page} references {ref} (not served by Townsquare)"
            r = await client.get(ref)
            assert r.status_code == 200, ref
            assert "immutable" in r.headers["cache-control"]
    r = await client.get("/static/js/lib/api.js")
    assert r.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert (await client.get("/static/../pyproject.toml")).status_code == 404
    assert (await client.get("/static/nothing-here.js")).status_code == 404
    assert any(STATIC.rglob("*.js"))


async def test_register_then_login_in_the_browser(web: Web) -> None:
    page = web.page
    username = name("web")
    await page.goto("/login?lang=en")  # type: ignore[attr-defined]
    await page.get_by_role("tab", name="Register").click()  # type: ignore[attr-defined]
    form = page.locator("#form-register")  # type: ignore[attr-defined]
    await form.get_by_label("Username").fill(username)
    await form.get_by_label("Password").fill("correct horse battery")
    await web.shot("login-register")
    await form.get_by_role("button", name="Register").click()
    await page.wait_for_url("**/app")  # type: ignore[attr-defined]
    token = await page.evaluate("localStorage.getItem('ts_token')")  # type: ignore[attr-defined]
    assert token
    # let the chat client finish loading: a request of its still in flight when the token goes would
    # be answered 401 and send the page to the login page while the test navigates there itself
    await page.wait_for_load_state("networkidle")  # type: ignore[attr-defined]

    # Logged out, a wrong password shows the server's error; the right one gets back in.
    await page.evaluate("localStorage.clear()")  # type: ignore[attr-defined]
    await page.goto("/login?next=/app/settings")  # type: ignore[attr-defined]
    form = page.locator("#form-login")  # type: ignore[attr-defined]
    await form.get_by_label("Username").fill(username)
    await form.get_by_label("Password").fill("wrong password!")
    await form.get_by_role("button", name="Log in").click()
    alert = page.get_by_role("alert")  # type: ignore[attr-defined]
    await alert.wait_for()
    assert (await alert.text_content()).strip()
    await form.get_by_label("Password").fill("correct horse battery")
    await form.get_by_role("button", name="Log in").click()
    await page.wait_for_url("**/app/settings")  # type: ignore[attr-defined]


async def test_an_open_redirect_is_refused(web: Web) -> None:
    page = web.page
    await page.goto("/login?next=//evil.example/")  # type: ignore[attr-defined]
    form = page.locator("#form-register")  # type: ignore[attr-defined]
    await page.get_by_role("tab", name="Register").click()  # type: ignore[attr-defined]
    await form.get_by_label("Username").fill(name("web"))
    await form.get_by_label("Password").fill("correct horse battery")
    await form.get_by_role("button", name="Register").click()
    await page.wait_for_url("**/app")  # type: ignore[attr-defined]
    assert page.url.startswith(web.base_url)  # type: ignore[attr-defined]
    # Logged in, the page leaves at once for `next`: every spelling of another origin lands on /app
    # (the requests are recorded: the fixture fails the test if one left loopback).
    for hostile in ("/%5Cevil.example/", "/%09/evil.example/", "https://evil.example/", "javascript:alert(1)", "/\\evil.example"):
        await page.goto(f"/login?next={hostile}")  # type: ignore[attr-defined]
        await page.wait_for_url(f"{web.base_url}/app")  # type: ignore[attr-defined]
    await page.goto("/login?next=/app%3Fx%3D1")  # type: ignore[attr-defined]
    await page.wait_for_url(f"{web.base_url}/app?x=1")  # type: ignore[attr-defined]
