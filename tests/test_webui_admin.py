"""The admin dashboard in a real browser: an administrator logs in and sees the society; pausing
an agent from the dashboard silences it for a real agent worker (fake LLM) and resuming brings
it back; the persona editor saves; the graph shows every agent; the system page renders; on a
phone the navigation folds; a non-administrator is refused. Screenshots: tests/artifacts/admin-*.png."""

from __future__ import annotations

from pathlib import Path

from typing import Any

import httpx
import pytest

from townsquare.platform.actions import agents, users
from townsquare.platform.actions.context import Platform
from townsquare.platform.actions.users import authenticate
from townsquare.platform.core.config import Settings
from townsquare.worker.runtime.worker import AgentWorker

from .browser import Web, close_web, open_web
from .fakellm import FakeLLM, distinct_reply, speaker
from .helpers import Actor, RunningServer, name, wait_for
from .test_worker import society_with_human

PASSWORD = "correct horse battery"


@pytest.fixture
def llm() -> Any:
    fake = FakeLLM(reply=distinct_reply).start()  # lines that share nothing: no near-duplicate silences a turn
    yield fake
    fake.stop()


async def small_society(platform: Platform, client: httpx.AsyncClient) -> dict[str, Any]:
    """An administrator (with a known login), three agents of the village, a human, #general."""
    username = name("admin")
    row, token = await users.do_register(platform, username=username, password=PASSWORD, is_admin=True)
    admin = Actor(row.id, token)
    _, guild_id, cast, human, general = await society_with_human(platform, client, admin=admin, size=3)
    return {"admin": admin, "username": username, "guild_id": guild_id, "cast": cast, "human": human, "general": general}


async def replies(client: httpx.AsyncClient, human: Actor, channel_id: int, message_id: str, author: str) -> list[dict[str, Any]]:
    history = (await client.get(f"/api/v10/channels/{channel_id}/messages?limit=50", headers=human.headers)).json()
    return [m for m in history if m["author"]["id"] == author and (m.get("message_reference") or {}).get("message_id") == message_id]


async def mention(client: httpx.AsyncClient, soc: dict[str, Any], *agent_ids: str, text: str = "are you there?") -> dict[str, Any]:
    content = " ".join(f"<@{a}>" for a in agent_ids) + f" {text}"
    r = await client.post(f"/api/v10/channels/{soc['general']}/messages", json={"content": content}, headers=soc["human"].headers)
    assert r.status_code == 200, r.text
    return r.json()


def prompts_for(llm: FakeLLM, agent_name: str) -> int:
    return sum(1 for c in llm.calls if speaker(c) == agent_name)


async def test_admin_pauses_an_agent_and_it_stops_speaking(platform: Platform, settings: Settings, server: RunningServer,
                                                           client: httpx.AsyncClient, web: Web, llm: FakeLLM) -> None:
    soc = await small_society(platform, client)
    a, b = soc["cast"][0], soc["cast"][1]
    worker = AgentWorker(settings.model_copy(update={
        "ollama_host": llm.url, "public_url": server.url, "revive_idle_seconds": 1e6, "worker_claim_idle_ms": 1500,
        "memory_rate_idle_seconds": 1e6, "social_actions": False, "thread_after": 1000}), platform, name=name("w"))
    await worker.start()
    page = web.page
    try:
        # an administrator logs in and lands on the overview of this society
        await page.goto(f"/login?lang=en&next=/admin%3Fguild%3D{soc['guild_id']}")  # type: ignore[attr-defined]
        form = page.locator("#form-login")  # type: ignore[attr-defined]
        await form.get_by_label("Username").fill(soc["username"])
        await form.get_by_label("Password").fill(PASSWORD)
        await form.get_by_role("button", name="Log in").click()
        await page.wait_for_url("**/admin?guild=*")  # type: ignore[attr-defined]
        chips = page.locator(".agent-chip")  # type: ignore[attr-defined]
        await chips.nth(2).wait_for()
        assert await chips.count() == 3
        for agent in soc["cast"]:
            assert await chips.filter(has_text=agent["name"]).count() == 1
        await page.locator("figure.chart svg[role=img] title").first.wait_for(state="attached")  # type: ignore[attr-defined]
        await web.shot("admin-overview")

        # the agent speaks when mentioned
        first = await mention(client, soc, a["id"], text="what do you like most about your work?")
        await wait_for(lambda: replies(client, soc["human"], soc["general"], first["id"], a["id"]), timeout=20)

        # paused from the Agents page
        await page.get_by_role("link", name="Agents", exact=True).click()  # type: ignore[attr-defined]
        await page.get_by_role("button", name=f"Pause {a['name']}").click()  # type: ignore[attr-defined]
        row = page.locator(f"tr[data-agent-id='{a['id']}']")  # type: ignore[attr-defined]
        await row.locator(".status-paused").wait_for()
        await page.get_by_role("button", name=f"Resume {a['name']}").wait_for()  # type: ignore[attr-defined]
        await wait_for(lambda: _async(worker.state.agents[int(a["id"])].state == "paused"), timeout=10)

        # a message for both: the active agent's answer shows the worker handled it; the paused one stays silent
        calls_before = prompts_for(llm, a["name"])
        both = await mention(client, soc, a["id"], b["id"], text="what do you both think of the fair?")
        await wait_for(lambda: replies(client, soc["human"], soc["general"], both["id"], b["id"]), timeout=20)
        await wait_for(lambda: _async(not worker._inflight), timeout=20)
        assert await replies(client, soc["human"], soc["general"], both["id"], a["id"]) == []
        assert prompts_for(llm, a["name"]) == calls_before

        # resumed from the dashboard: it answers again
        await page.get_by_role("button", name=f"Resume {a['name']}").click()  # type: ignore[attr-defined]
        await page.get_by_role("button", name=f"Pause {a['name']}").wait_for()  # type: ignore[attr-defined]
        await wait_for(lambda: _async(worker.state.agents[int(a["id"])].state == "active"), timeout=10)
        again = await mention(client, soc, a["id"], text="what did you do this morning?")
        await wait_for(lambda: replies(client, soc["human"], soc["general"], again["id"], a["id"]), timeout=20)

        # the agent page: the persona editor saves; the LLM call log shows the calls
        await row.get_by_role("link", name=a["name"]).click()
        await page.get_by_role("heading", name=a["name"], exact=True).wait_for()  # type: ignore[attr-defined]
        bio = page.get_by_label("Biography")  # type: ignore[attr-defined]
        await bio.fill("A baker who now also keeps bees.")
        await page.locator(".persona-form").get_by_role("button", name="Save").click()  # type: ignore[attr-defined]
        await page.get_by_text("Persona saved.").wait_for()  # type: ignore[attr-defined]
        got = await agents.get_agent(platform, await authenticate(platform, "Bearer", soc["admin"].token), int(a["id"]))
        assert got["persona"]["bio"] == "A baker who now also keeps bees."
        await page.locator("section:has(#sec-llm-calls) tbody tr").first.wait_for()  # type: ignore[attr-defined]
        await web.shot("admin-agent")

        # the social graph: a node for each agent, and the same in the text list
        await page.get_by_role("link", name="Social graph").click()  # type: ignore[attr-defined]
        for agent in soc["cast"]:
            await page.locator(f"svg.graph-svg g.node[data-id='{agent['id']}']").wait_for()  # type: ignore[attr-defined]
            assert await page.locator(f"table.graph-list tr[data-id='{agent['id']}']").count() == 1  # type: ignore[attr-defined]
        await page.locator(f"svg.graph-svg g.node[data-id='{a['id']}']").click()  # type: ignore[attr-defined]
        await page.locator(".graph-details h2", has_text=a["name"]).wait_for()  # type: ignore[attr-defined]
        await web.shot("admin-graph")

        # the system page: processes, logs, configuration, backups, audit log (this pause among its entries)
        await page.get_by_role("link", name="System").click()  # type: ignore[attr-defined]
        await page.get_by_role("table", name="Townsquare's processes").wait_for()  # type: ignore[attr-defined]
        await page.get_by_role("cell", name="chain_cap").wait_for()  # type: ignore[attr-defined]
        await page.locator("table:has(caption:text('Audit log')) code", has_text="AGENT_STATE").first.wait_for()  # type: ignore[attr-defined]
        await web.shot("admin-system")
    finally:
        await worker.stop()


async def _async(value: Any) -> Any:
    return value


async def test_phone_layout_and_non_admin_refusal(platform: Platform, client: httpx.AsyncClient, browser: object,
                                                  server: RunningServer) -> None:
    soc = await small_society(platform, client)
    phone = await open_web(browser, server.url, mobile=True, locale="fr-FR")
    try:
        page = phone.page
        await page.goto("/login")  # type: ignore[attr-defined]
        await page.evaluate("t => localStorage.setItem('ts_token', t)", soc["admin"].token)  # type: ignore[attr-defined]
        await page.goto(f"/admin/agents?guild={soc['guild_id']}")  # type: ignore[attr-defined]
        await page.locator("tr[data-agent-id]").first.wait_for()  # type: ignore[attr-defined]
        menu = page.get_by_role("button", name="Menu")  # type: ignore[attr-defined]
        assert await menu.is_visible()
        nav = page.locator("#admin-nav")  # type: ignore[attr-defined]
        assert not await nav.is_visible()  # folded on a phone
        await menu.click()
        assert await menu.get_attribute("aria-expanded") == "true"
        await page.get_by_role("link", name="Graphe social").wait_for()  # type: ignore[attr-defined]  (French texts)
        await phone.shot("admin-phone")
        await page.keyboard.press("Escape")  # type: ignore[attr-defined]
        assert not await nav.is_visible()
    finally:
        await close_web(phone)

    outsider = await open_web(browser, server.url)
    try:
        page = outsider.page
        await page.goto("/login")  # type: ignore[attr-defined]
        await page.evaluate("t => localStorage.setItem('ts_token', t)", soc["human"].token)  # type: ignore[attr-defined]
        await page.goto("/admin?lang=en")  # type: ignore[attr-defined]
        alert = page.get_by_role("alert")  # type: ignore[attr-defined]
        await alert.wait_for()
        assert "Administrators only" in await alert.text_content()
        assert await page.locator("#admin-nav").count() == 0  # type: ignore[attr-defined]
    finally:
        await close_web(outsider)


async def test_the_dashboard_says_why_agents_failed_and_what_the_gate_rejected(platform: Platform, client: httpx.AsyncClient,
                                                                                browser: object, server: RunningServer) -> None:
    """Each agent's last failure, in words, on its card (overview), its row (agents) and its page;
    the quality gate's rejections by reason on the overview; in English and in French."""
    soc = await small_society(platform, client)
    a, b = soc["cast"][0], soc["cast"][1]
    g = soc["guild_id"]
    turn = {"guild_id": g, "channel_id": soc["general"], "trigger": "mention", "llm_ms": 0, "total_ms": 10}
    await agents.record_turns(platform, [
        {**turn, "agent_id": int(a["id"]), "outcome": "timeout", "error": "the model did not answer in 30 s"},
        {**turn, "agent_id": int(b["id"]), "outcome": "error"},  # recorded without a reason
    ])
    call = {"agent_id": int(a["id"]), "guild_id": g, "task": "reply", "backend": "local", "model": "m", "prompt_tokens": 5,
            "completion_tokens": 5, "latency_ms": 100, "fallback_step": 0, "outcome": "rejected"}
    await agents.record_llm_calls(platform, [{**call, "error": "gate:wrong_voice"}] * 3 + [{**call, "error": "gate:off_topic"}])

    web = await open_web(browser, server.url)
    try:
        page = web.page
        await page.goto("/login?lang=en")  # type: ignore[attr-defined]
        await page.evaluate("t => localStorage.setItem('ts_token', t)", soc["admin"].token)  # type: ignore[attr-defined]
        await page.goto(f"/admin?guild={g}&lang=en")  # type: ignore[attr-defined]
        chip = page.locator(f".agent-chip[data-agent-id='{a['id']}'] .last-failure")  # type: ignore[attr-defined]
        await chip.wait_for()
        assert "the model did not answer in 30 s" in await chip.text_content()
        assert "Last failure" in await chip.text_content()
        panel = page.get_by_role("region", name="Quality gate rejections by reason")  # type: ignore[attr-defined]
        await panel.wait_for()
        assert "4 candidate replies were refused" in await panel.text_content()
        wrong = panel.locator("tr[data-reason='wrong_voice']")
        assert "in another member's voice" in await wrong.text_content()
        assert await wrong.locator("td.num").text_content() == "3"
        assert await panel.locator("tr[data-reason='off_topic'] td.num").text_content() == "1"
        assert await panel.locator("tr[data-reason='loop'] td.num").text_content() == "0"  # every reason has its row
        await web.shot("admin-overview-failures")

        await page.get_by_role("link", name="Agents", exact=True).click()  # type: ignore[attr-defined]
        row_a = page.locator(f"tr[data-agent-id='{a['id']}'] .last-failure")  # type: ignore[attr-defined]
        await row_a.wait_for()
        assert "the model did not answer in 30 s" in await row_a.text_content()
        row_b = page.locator(f"tr[data-agent-id='{b['id']}'] .last-failure")  # type: ignore[attr-defined]
        assert "the turn failed (no reason was recorded)" in await row_b.text_content()

        await page.locator(f"tr[data-agent-id='{a['id']}']").get_by_role("link", name=a["name"]).click()  # type: ignore[attr-defined]
        await page.get_by_role("heading", name=a["name"], exact=True).wait_for()  # type: ignore[attr-defined]
        on_page = page.locator(".agent-failure .last-failure")  # type: ignore[attr-defined]
        await on_page.wait_for()
        assert "the model did not answer in 30 s" in await on_page.text_content()
        # its LLM calls say what the gate rejected, in words
        rejected = page.locator("section:has(#sec-llm-calls) tbody tr", has_text="rejected by the quality gate")  # type: ignore[attr-defined]
        await rejected.first.wait_for()
        assert await rejected.count() == 4
        assert await rejected.filter(has_text="in another member's voice").count() == 3
        await web.shot("admin-agent-failure")
    finally:
        await close_web(web)

    french = await open_web(browser, server.url, locale="fr-FR")
    try:
        page = french.page
        await page.goto("/login")  # type: ignore[attr-defined]
        await page.evaluate("t => localStorage.setItem('ts_token', t)", soc["admin"].token)  # type: ignore[attr-defined]
        await page.goto(f"/admin?guild={g}")  # type: ignore[attr-defined]
        panel = page.get_by_role("region", name="Refus du contrôle qualité par raison")  # type: ignore[attr-defined]
        await panel.wait_for()
        assert "hors sujet" in await panel.locator("tr[data-reason='off_topic']").text_content()
        chip = page.locator(f".agent-chip[data-agent-id='{b['id']}'] .last-failure")  # type: ignore[attr-defined]
        await chip.wait_for()
        assert "aucune raison enregistrée" in await chip.text_content()
    finally:
        await close_web(french)


async def test_the_agents_page_pages_through_a_large_society(platform: Platform, client: httpx.AsyncClient, web: Web) -> None:
    """230 agents: the Agents page shows them 100 at a time, in id order, with next and previous
    pages (issue 18: the list's cost follows the page, not the society)."""
    from townsquare.agents.society.generate import generate

    username = name("admin")
    row, token = await users.do_register(platform, username=username, password=PASSWORD, is_admin=True)
    guild_id = await agents.do_found_society(platform, row.id, generate(230, seed=31, tag=name("")[:5].replace("_", "")),
                                             name("society"))
    me = await authenticate(platform, "Bearer", token)
    ids = [a["id"] for a in await agents.list_agents(platform, me, guild_id)]
    page = web.page
    await page.goto(f"/login?lang=en&next=/admin/agents%3Fguild%3D{guild_id}")  # type: ignore[attr-defined]
    form = page.locator("#form-login")  # type: ignore[attr-defined]
    await form.get_by_label("Username").fill(username)
    await form.get_by_label("Password").fill(PASSWORD)
    await form.get_by_role("button", name="Log in").click()
    rows = page.locator("table.agents-table tbody tr")  # type: ignore[attr-defined]

    async def shown(first: str, count: int) -> None:
        await page.locator(f"tr[data-agent-id='{first}']").wait_for()  # type: ignore[attr-defined]
        await wait_for(lambda: _count(rows, count), timeout=20)
        assert [await r.get_attribute("data-agent-id") for r in await rows.all()] == ids[ids.index(first):ids.index(first) + count]

    await shown(ids[0], 100)
    previous, following = page.get_by_role("button", name="Previous page"), page.get_by_role("button", name="Next page")  # type: ignore[attr-defined]
    assert await previous.is_disabled()
    await following.click()
    await shown(ids[100], 100)
    await following.click()
    await shown(ids[200], 30)
    assert await following.is_disabled()
    await previous.click()
    await shown(ids[100], 100)
    await web.shot("admin-agents-pages")


async def _count(rows: Any, expected: int) -> bool:
    return await rows.count() == expected


async def test_the_scenarios_page_applies_interventions_and_lists_runs(platform: Platform, client: httpx.AsyncClient,
                                                                      browser: object, server: RunningServer) -> None:
    """An administrator tells an agent a fact and pauses another from the Scenarios page (the
    intervention route, audit-logged), and sees the scenario runs with their state and answers."""
    from townsquare.platform.actions import runs

    soc = await small_society(platform, client)
    a, b = soc["cast"][0], soc["cast"][1]
    run_id = await runs.start_run(platform, batch_id=7, name=name("scn"), arm="A", repeat=0, scenario="name: x", model="smollm2:135m",
                                  seed=9, created_by=soc["admin"].id)
    await runs.end_run(platform, run_id, "done", results={"questions": [{"name": "knows-party", "kind": "knows", "value": 0.25}]})
    web = await open_web(browser, server.url)
    try:
        page = web.page
        await page.goto("/login?lang=en")  # type: ignore[attr-defined]
        await page.evaluate("t => localStorage.setItem('ts_token', t)", soc["admin"].token)  # type: ignore[attr-defined]
        await page.goto(f"/admin/scenarios?guild={soc['guild_id']}&lang=en")  # type: ignore[attr-defined]
        await page.get_by_role("heading", name="Apply an intervention").wait_for()  # type: ignore[attr-defined]
        await page.get_by_label("Intervention", exact=True).select_option("tell")  # type: ignore[attr-defined]
        form = page.locator("form.intervention-form")  # type: ignore[attr-defined]
        await form.get_by_label("Agent", exact=True).select_option(a["name"])
        await form.get_by_label("Fact").fill("The village well has been cleaned and the water is sweet again.")
        await form.get_by_role("button", name="Apply").click()
        await page.locator(".applied li", has_text=f"told {a['name']}").wait_for()  # type: ignore[attr-defined]
        found = await platform.memory.search(int(a["id"]), "village well water", k=3)
        assert any("well has been cleaned" in s.memory.text for s in found)

        await page.get_by_label("Intervention", exact=True).select_option("pause_agent")  # type: ignore[attr-defined]
        await form.get_by_label("Agent", exact=True).select_option(b["name"])
        await form.get_by_role("button", name="Apply").click()
        await page.locator(".applied li", has_text=f"{b['name']} is now paused").wait_for()  # type: ignore[attr-defined]
        me = await authenticate(platform, "Bearer", soc["admin"].token)
        assert (await agents.get_agent(platform, me, int(b["id"])))["state"] == "paused"

        row = page.locator(f"tr[data-run-id='{run_id}']")  # type: ignore[attr-defined]
        await row.wait_for()
        assert "done" in await row.text_content() and "knows-party: 0.25" in await row.text_content()
        await web.shot("admin-scenarios")
        # its batch's report (the arms side by side), downloaded from the row
        async with page.expect_download() as info:  # type: ignore[attr-defined]
            await row.get_by_role("button", name="Batch report").click()
        download = await info.value
        report = Path(await download.path()).read_text(encoding="utf-8")
        assert download.suggested_filename.endswith(".html") and "knows-party" in report and "0.25" in report
        assert web.page_errors == [] and web.outside_loopback() == []
    finally:
        await close_web(web)
