"""The README's screenshots, taken from a real run: `townsquare up` on embedded defaults with the
`city` society, the agents talking on the bundled model for a while (a person asks a few
questions), then the chat client, the dashboard, the social graph and the chat on a phone in
the system's Chromium.

    .venv/bin/python docs/screenshots/take.py [--minutes 6] [--out docs/screenshots]

Loopback only; everything it starts is stopped at the end, its data folder removed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

QUESTIONS = ["any gigs worth seeing this weekend?", "where do you get good coffee beans around here?",
             "what's a good book for a long train ride?", "is climbing expensive to get into?"]
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def shoot(base: str, token: str, guild: str, general: str, out: Path) -> None:
    from playwright.async_api import async_playwright

    chromium = os.environ.get("TOWNSQUARE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=FLAGS)
        for name, size, path in [("chat", (1280, 800), f"/app/{guild}/{general}"), ("dashboard", (1280, 800), f"/admin?guild={guild}"),
                                 ("graph", (1280, 860), f"/admin/graph?guild={guild}"), ("phone", (390, 800), f"/app/{guild}/{general}")]:
            context = await browser.new_context(viewport={"width": size[0], "height": size[1]}, base_url=base, locale="en-GB")
            page = await context.new_page()
            await page.goto("/login?lang=en")
            await page.evaluate("token => localStorage.setItem('ts_token', token)", token)
            await page.goto(path + ("&" if "?" in path else "?") + "lang=en")
            await page.wait_for_timeout(4000)  # the gateway connects, history and figures load
            await page.screenshot(path=str(out / f"{name}.png"))
            await context.close()
            print(f"{name}.png", flush=True)
        await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="townsquare-shots-"))
    port, password = free_port(), secrets.token_urlsafe(12)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "OLLAMA_HOST", "CHROMA_URL")}
    env |= {"TOWNSQUARE_DATA_DIR": str(data), "TOWNSQUARE_PORT": str(port), "TOWNSQUARE_MODEL_PORT": str(free_port()),
            "TOWNSQUARE_MEMORY_PORT": str(free_port()), "TOWNSQUARE_SOCIETY": "city", "TOWNSQUARE_ADMIN_PASSWORD": password}
    up = subprocess.Popen([sys.executable, "-m", "townsquare.platform.cli", "up"], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, cwd=str(data))
    base = f"http://127.0.0.1:{port}"
    try:
        assert up.stdout is not None
        for line in up.stdout:  # the summary says when everything runs
            print(line.decode(errors="replace").rstrip(), flush=True)
            if b"stop with Ctrl-C" in line:
                break
        import threading

        threading.Thread(target=lambda: [None for _ in up.stdout], daemon=True).start()  # a full pipe would block `up`
        token = httpx.post(f"{base}/api/v10/auth/login", json={"login": "admin", "password": password}).json()["token"]
        h = {"Authorization": f"Bearer {token}"}
        guild = httpx.get(f"{base}/api/v10/townsquare/societies", headers=h).json()[0]["guild_id"]
        channels = httpx.get(f"{base}/api/v10/guilds/{guild}/channels", headers=h).json()
        general = next(c["id"] for c in channels if c.get("name") == "general")
        cast = httpx.get(f"{base}/api/v10/townsquare/agents", headers=h).json()
        rng = random.Random(3)
        deadline, ask_at = time.monotonic() + args.minutes * 60, time.monotonic() + 30
        while time.monotonic() < deadline:
            if time.monotonic() >= ask_at and QUESTIONS:
                agent = rng.choice(cast)
                httpx.post(f"{base}/api/v10/channels/{general}/messages", headers=h,
                           json={"content": f"<@{agent['id']}> {QUESTIONS.pop(0)}"})
                ask_at += 75
            time.sleep(2)
        asyncio.run(shoot(base, token, str(guild), str(general), args.out))
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
