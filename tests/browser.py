"""A real browser for the web UI's tests: the system's Chromium driven by Playwright.

`playwright install` cannot download browsers offline, so the suite launches Debian's
`chromium` (TOWNSQUARE_CHROMIUM overrides the path) with the flags that keep it from calling
home. Every page records each request and WebSocket it opens; a test fails if any of them
leaves loopback or if the page throws an uncaught error. Screenshots are kept as artifacts in
TOWNSQUARE_ARTIFACTS (default tests/artifacts/).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-default-apps", "--disable-extensions", "--metrics-recording-only",
                  "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication"]
ARTIFACTS = Path(os.environ.get("TOWNSQUARE_ARTIFACTS", Path(__file__).parent / "artifacts"))
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def chromium_path() -> str:
    found = os.environ.get("TOWNSQUARE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise RuntimeError("Chromium is not installed: `apt-get install chromium` (make test does it when it can)")
    return found


@dataclass
class Web:
    """One browser context and page, with what it did on the network."""

    page: "object"
    context: "object"
    base_url: str
    requests: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def outside_loopback(self) -> list[str]:
        return [url for url in self.requests
                if urlsplit(url).scheme not in ("data", "blob", "about") and urlsplit(url).hostname not in LOOPBACK]

    async def shot(self, name: str) -> Path:
        """Keep a screenshot of the page as a test artifact."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path))  # type: ignore[attr-defined]
        return path

    async def new_page(self) -> "object":
        """A second page in the same context (same storage, same recording)."""
        page = await self.context.new_page()  # type: ignore[attr-defined]
        _watch(self, page)
        return page


def _watch(web: Web, page: "object") -> None:
    page.on("request", lambda request: web.requests.append(request.url))  # type: ignore[attr-defined]
    page.on("websocket", lambda ws: web.requests.append(ws.url))  # type: ignore[attr-defined]
    page.on("pageerror", lambda error: web.page_errors.append(str(error)))  # type: ignore[attr-defined]
    page.on("console", lambda msg: web.console_errors.append(msg.text) if msg.type == "error" else None)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    # Playwright gives the launched browser a fresh temporary profile of its own.
    async with async_playwright() as pw:
        instance = await pw.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
        yield instance
        await instance.close()


async def open_web(browser: object, base_url: str, *, locale: str = "en-US", mobile: bool = False) -> Web:
    viewport = {"width": 390, "height": 800} if mobile else {"width": 1280, "height": 800}
    context = await browser.new_context(base_url=base_url, locale=locale, viewport=viewport,  # type: ignore[attr-defined]
                                        service_workers="block")
    context.set_default_timeout(15_000)
    page = await context.new_page()
    web = Web(page=page, context=context, base_url=base_url)
    _watch(web, page)
    return web


async def close_web(web: Web) -> None:
    await web.context.close()  # type: ignore[attr-defined]
    assert not web.outside_loopback(), f"requests left loopback: {web.outside_loopback()}"
    assert not web.page_errors, f"uncaught errors in the page: {web.page_errors}"


@pytest.fixture
async def web(browser: object, server) -> AsyncIterator[Web]:  # type: ignore[no-untyped-def]
    """A fresh page on the test server; fails the test if it left loopback or threw."""
    opened = await open_web(browser, server.url)
    yield opened
    await close_web(opened)
