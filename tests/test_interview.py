"""Interviews: an administrator asks an agent a question out of band
(`POST /api/v10/townsquare/agents/{id}/interview`, and society-wide), the answer comes from its
memory, persona and relationships, and by default nothing enters its memory or the society's
chat. The LLM's content is faked where wording does not matter (tests/fakellm.py); the prompt it
was given is checked; the choice of what the agent knows is made in code and tested on its own.
One test runs the real bundled model (`model serve`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from townsquare.agents.brain.backends import GenOptions
from townsquare.agents.interview.answer import Interviewee, answer, chat_prompt, narrates, transcript_prompt, trim
from townsquare.agents.mind.mood import Mood
from townsquare.agents.mind.relations import Bond
from townsquare.agents.society.persona import Persona
from townsquare.agents.interview.evidence import Evidence, Recalled, choose, named_people
from townsquare.agents.memory.model import Kind, Memory
from townsquare.platform.actions.context import Platform
from townsquare.platform.core.config import Settings

from .browser import close_web, open_web
from .fakellm import FakeLLM
from .helpers import Actor, RunningServer, assert_discord_error, free_port, person, start_server
from .test_worker import bundled_model_for, found

FACT = "The old mill by the river will be sold at auction on Friday"
QUESTION = "Have you heard anything about the old mill?"


class Script:
    """What the fake model says next (a completion after the prompt's first words)."""

    def __init__(self) -> None:
        self.line = " the mill goes to auction on Friday."

    def __call__(self, messages: list[dict[str, str]]) -> str:
        return self.line


@pytest.fixture(scope="module")
def script() -> Script:
    return Script()


@pytest.fixture(scope="module")
def llm(script: Script) -> Iterator[FakeLLM]:
    fake = FakeLLM(reply=script).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def iv_server(settings: Settings, services: Any, llm: FakeLLM) -> Iterator[RunningServer]:
    """A server whose model is the fake one (the session's server has none)."""
    running = start_server(settings, services.database_url, services.redis_url, ollama_host=llm.url)
    yield running
    running.stop()


@pytest.fixture
async def api(iv_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=iv_server.url, timeout=60) as c:
        yield c


async def _society(platform: Platform, size: int = 3) -> tuple[Actor, int, list[dict[str, Any]]]:
    admin = await person(platform, is_admin=True)
    guild_id, cast = await found(platform, admin, size=size)
    return admin, guild_id, cast


async def _tell(api: httpx.AsyncClient, admin: Actor, agent_id: str, fact: str = FACT, importance: float = 9) -> dict[str, Any]:
    r = await api.post(f"/api/v10/townsquare/agents/{agent_id}/memories", json={"text": fact, "importance": importance},
                       headers=admin.headers)
    assert r.status_code == 201, r.text
    return r.json()


async def _memories(api: httpx.AsyncClient, admin: Actor, agent_id: str) -> dict[str, Any]:
    r = await api.get(f"/api/v10/townsquare/agents/{agent_id}/memories", params={"limit": 100}, headers=admin.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def _trace(platform: Platform, guild_id: int) -> tuple[int, int, int]:
    """The society's events, its MESSAGE_CREATE events and its messages (an interview adds none)."""
    async with platform.read() as conn:
        row = (await conn.execute(text(
            "SELECT (SELECT count(*) FROM events WHERE guild_id = :g), "
            "(SELECT count(*) FROM events WHERE guild_id = :g AND type = 'MESSAGE_CREATE'), "
            "(SELECT count(*) FROM messages WHERE guild_id = :g)"), {"g": guild_id})).one()
    return tuple(row)  # type: ignore[return-value]


def _interview_prompts(llm: FakeLLM, question: str) -> list[str]:
    return [c["prompt"] for c in llm.calls if "prompt" in c and f"Interviewer: {question}" in c["prompt"]]


async def test_an_interview_is_answered_from_memory_and_leaves_no_trace(platform: Platform, api: httpx.AsyncClient, llm: FakeLLM,
                                                                       script: Script) -> None:
    admin, guild_id, cast = await _society(platform)
    agent = cast[0]
    told = await _tell(api, admin, agent["id"])
    await _tell(api, admin, agent["id"], "I need to buy flour and yeast before the weekend", importance=3)
    before_memories = await _memories(api, admin, agent["id"])
    before_trace = await _trace(platform, guild_id)
    script.line = " the mill goes to auction on Friday."

    r = await api.post(f"/api/v10/townsquare/agents/{agent['id']}/interview", json={"question": QUESTION}, headers=admin.headers)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["answer"] == "Yes, the mill goes to auction on Friday."  # the plan's first words, then the model's
    assert got["knows"] is True and got["basis"] == "memory" and got["source"] == "llm"
    assert got["memories_used"][0]["id"] == told["id"] and got["memories_used"][0]["score"]["similarity"] > 0.35
    assert all("flour" not in m["text"] for m in got["memories_used"])  # unrelated memories stay out
    assert got["model"] == "smollm2:135m" and isinstance(got["latency_ms"], int) and got["remembered"] is None

    # the prompt held the memory, the question, and ends with the agent's own name
    prompt = _interview_prompts(llm, QUESTION)[-1]
    assert FACT in prompt and agent["persona"]["bio"].split()[0] in prompt
    assert prompt.rstrip().endswith(f"{agent['name']}: Yes,")

    # nothing entered its memory (not even as "recalled"), nothing was said or emitted in the society
    after = await _memories(api, admin, agent["id"])
    assert after["total"] == before_memories["total"] == 2
    assert {m["id"]: m["last_access"] for m in after["memories"]} == {m["id"]: m["last_access"] for m in before_memories["memories"]}
    assert await _trace(platform, guild_id) == before_trace

    # recorded like every LLM call, marked as an interview; audit-logged
    calls = (await api.get(f"/api/v10/townsquare/agents/{agent['id']}/llm-calls", headers=admin.headers)).json()
    assert calls and calls[0]["task"] == "interview" and calls[0]["outcome"] == "ok"
    audit = (await api.get(f"/api/v10/guilds/{guild_id}/audit-logs", params={"action_type": 209}, headers=admin.headers)).json()
    entry = next(e for e in audit["audit_log_entries"] if e["target_id"] == agent["id"])
    assert entry["user_id"] == str(admin.id) and entry["options"]["question"] == QUESTION and entry["options"]["remembered"] is False


async def test_an_agent_that_knows_nothing_says_so_and_a_rejected_model_gives_a_plain_answer(
        platform: Platform, api: httpx.AsyncClient, llm: FakeLLM, script: Script) -> None:
    admin, _, cast = await _society(platform)
    agent = cast[1]
    await _tell(api, admin, agent["id"])
    question = "Who won the football match yesterday?"
    script.line = " who won, I was baking all day."
    got = (await api.post(f"/api/v10/townsquare/agents/{agent['id']}/interview", json={"question": question},
                          headers=admin.headers)).json()
    assert got["knows"] is False and got["basis"] == "unknown" and got["memories_used"] == []
    assert got["answer"].endswith("who won, I was baking all day.") and got["source"] == "llm"
    prompt = _interview_prompts(llm, question)[-1]
    assert "remembers nothing about this" in prompt and FACT not in prompt

    # every candidate in the assistant's voice: none is used; the answer is a plain line that
    # still says it does not know, and each rejection is recorded with the gate's reason
    script.line = " As an AI language model, I cannot know about football."
    got = (await api.post(f"/api/v10/townsquare/agents/{agent['id']}/interview", json={"question": question},
                          headers=admin.headers)).json()
    assert got["source"] == "plan" and "AI" not in got["answer"]
    assert any(words in got["answer"] for words in ("haven't heard", "don't know", "No idea", "not sure"))
    calls = (await api.get(f"/api/v10/townsquare/agents/{agent['id']}/llm-calls", headers=admin.headers)).json()
    assert {c["error"] for c in calls[:4]} == {"gate:assistant_speak"} and {c["outcome"] for c in calls[:4]} == {"rejected"}

    # a model that ignores the memory it was given is not taken at its word either
    script.line = " it is a lovely building."
    got = (await api.post(f"/api/v10/townsquare/agents/{agent['id']}/interview", json={"question": QUESTION},
                          headers=admin.headers)).json()
    assert got["basis"] == "memory" and got["source"] == "plan" and "auction on Friday" in got["answer"]


async def test_remember_true_stores_the_exchange(platform: Platform, api: httpx.AsyncClient, script: Script) -> None:
    admin, guild_id, cast = await _society(platform)
    agent = cast[0]
    await _tell(api, admin, agent["id"])
    script.line = " the mill goes to auction on Friday."
    before = (await _memories(api, admin, agent["id"]))["total"]
    r = await api.post(f"/api/v10/townsquare/agents/{agent['id']}/interview", json={"question": QUESTION, "remember": True},
                       headers=admin.headers)
    assert r.status_code == 200, r.text
    got = r.json()
    after = await _memories(api, admin, agent["id"])
    assert after["total"] == before + 1
    kept = next(m for m in after["memories"] if m["id"] == got["remembered"])
    assert QUESTION in kept["text"] and got["answer"] in kept["text"] and kept["source"] == "interview"
    audit = (await api.get(f"/api/v10/guilds/{guild_id}/audit-logs", params={"action_type": 209}, headers=admin.headers)).json()
    assert any(e["target_id"] == agent["id"] and e["options"]["remembered"] is True for e in audit["audit_log_entries"])


async def test_bad_interviews_are_refused_in_discords_shape(platform: Platform, api: httpx.AsyncClient) -> None:
    admin, guild_id, cast = await _society(platform, size=2)
    other_admin, other_guild, other_cast = await _society(platform, size=1)
    human = await person(platform)
    url = f"/api/v10/townsquare/agents/{cast[0]['id']}/interview"
    assert_discord_error(await api.post("/api/v10/townsquare/agents/42/interview", json={"question": "hi?"}, headers=admin.headers),
                         404, 10100)
    for body in ({"question": ""}, {"question": "   \n "}, {"question": "x" * 501}, {"question": "bad\u0000byte"}, {},
                 {"question": 5}, {"question": "hi?", "remember": "maybe"}, ["a list"]):
        assert_discord_error(await api.post(url, json=body, headers=admin.headers), 400)
    assert_discord_error(await api.post(url, json={"question": "hi?"}, headers=human.headers), 403, 50013)
    assert_discord_error(await api.post(url, json={"question": "hi?"}), 401)

    batch = f"/api/v10/townsquare/societies/{guild_id}/interview"
    assert_discord_error(await api.post("/api/v10/townsquare/societies/42/interview", json={"question": "hi?"}, headers=admin.headers),
                         404, 10004)
    for body in ({"question": "hi?", "agent_ids": []}, {"question": "hi?", "agent_ids": [other_cast[0]["id"]]},
                 {"question": "hi?", "agent_ids": ["nope"]}, {"question": ""}):
        assert_discord_error(await api.post(batch, json=body, headers=admin.headers), 400)
    assert_discord_error(await api.post(batch, json={"question": "hi?"}, headers=human.headers), 403, 50013)


async def test_a_model_that_is_down_is_a_503_not_a_500(platform: Platform, settings: Settings, services: Any) -> None:
    admin, guild_id, cast = await _society(platform, size=2)
    dead = start_server(settings, services.database_url, services.redis_url, ollama_host=f"http://127.0.0.1:{free_port()}")
    try:
        async with httpx.AsyncClient(base_url=dead.url, timeout=60) as c:
            r = await c.post(f"/api/v10/townsquare/agents/{cast[0]['id']}/interview", json={"question": QUESTION},
                             headers=admin.headers)
            assert r.status_code == 503 and r.json()["code"] == 130003 and r.json()["message"], r.text
            r = await c.post(f"/api/v10/townsquare/societies/{guild_id}/interview", json={"question": QUESTION}, headers=admin.headers)
            assert r.status_code == 503 and r.json()["code"] == 130003, r.text
            calls = (await c.get(f"/api/v10/townsquare/agents/{cast[0]['id']}/llm-calls", headers=admin.headers)).json()
            assert calls and {x["task"] for x in calls} == {"interview"} and calls[-1]["outcome"] == "error"
    finally:
        dead.stop()


async def test_a_society_interview_asks_each_agent(platform: Platform, api: httpx.AsyncClient, script: Script) -> None:
    admin, guild_id, cast = await _society(platform, size=3)
    await _tell(api, admin, cast[2]["id"])
    script.line = " the mill goes to auction on Friday."
    before = await _trace(platform, guild_id)
    r = await api.post(f"/api/v10/townsquare/societies/{guild_id}/interview", json={"question": QUESTION}, headers=admin.headers)
    assert r.status_code == 200, r.text
    answers = {a["agent_id"]: a for a in r.json()["answers"]}
    assert set(answers) == {a["id"] for a in cast}
    assert answers[cast[2]["id"]]["knows"] is True and "auction" in answers[cast[2]["id"]]["answer"]
    for other in cast[:2]:  # told nothing: they say they have not heard (the plan's first words, or a plain line)
        assert answers[other["id"]]["knows"] is False and answers[other["id"]]["memories_used"] == []
    assert await _trace(platform, guild_id) == before

    r = await api.post(f"/api/v10/townsquare/societies/{guild_id}/interview",
                       json={"question": QUESTION, "agent_ids": [cast[1]["id"]]}, headers=admin.headers)
    assert [a["agent_id"] for a in r.json()["answers"]] == [cast[1]["id"]]
    audit = (await api.get(f"/api/v10/guilds/{guild_id}/audit-logs", params={"action_type": 209}, headers=admin.headers)).json()
    assert sum(1 for e in audit["audit_log_entries"] if e["options"]["batch"]) == 4


class Counting(FakeLLM):
    """A fake model that counts the requests it serves at once."""

    inflight: int = 0
    peak: int = 0

    async def _generate(self, request: Any) -> Any:
        self.inflight += 1
        self.peak = max(self.peak, self.inflight)
        try:
            return await super()._generate(request)
        finally:
            self.inflight -= 1


async def test_a_society_interview_asks_at_most_the_configured_number_at_once(platform: Platform, settings: Settings,
                                                                              services: Any) -> None:
    admin, guild_id, cast = await _society(platform, size=5)
    slow = Counting(reply=lambda messages: " anything about that, sorry.", delay=0.5).start()
    running = start_server(settings, services.database_url, services.redis_url, ollama_host=slow.url, interview_concurrency=2)
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=120) as c:
            r = await c.post(f"/api/v10/townsquare/societies/{guild_id}/interview", json={"question": "Who won the match?"},
                             headers=admin.headers)
        assert r.status_code == 200, r.text
        assert len(r.json()["answers"]) == 5 and all(a["knows"] is False for a in r.json()["answers"])
        assert len(slow.calls) >= 5 and 1 <= slow.peak <= 2, slow.peak
    finally:
        running.stop()
        slow.stop()


def test_the_basis_is_chosen_in_code() -> None:
    """What the agent knows decides the kind of answer, before any model is asked."""
    members = {"Tobias Reed": 2, "Priya Nair": 3, "Will Moss": 4}
    assert named_people("What do you think of Tobias?", members) == [(2, "Tobias Reed")]
    assert named_people("I will ask Priya Nair", members) == [(3, "Priya Nair")]  # "will" is not Will
    remembered = [Recalled(Memory("m", 1, Kind.OBSERVATION, FACT, 9.0, 0.0, 0.0), 3.1, 0.62)]
    assert choose(QUESTION, remembered, [], []).basis == "memory"
    assert choose(QUESTION, [], [], []).basis == "unknown"
    assert choose("How are you today?", [], [], []).basis == "self"
    assert choose("What do you think of Tobias?", [], [(2, "Tobias Reed")], []).basis == "person"
    assert choose("Where was Tobias born?", [], [(2, "Tobias Reed")], []).basis == "unknown"  # a fact it was never told
    assert choose("What's your favourite bread for sourdough?", [], [], ["baking", "sourdough"]).basis == "opinion"


def test_an_answer_is_cut_to_what_its_basis_backs() -> None:
    """A small model goes on after answering; what follows is mostly invented (lines seen from
    SmolLM2-135M on these questions)."""
    told = Evidence("memory", (Recalled(Memory("m", 1, Kind.OBSERVATION, FACT, 9.0, 0.0, 0.0), 3.1, 0.62),))
    assert trim("Yes, it will be sold on Friday. Now I'm not sure what to do with it.", QUESTION, told) == \
        "Yes, it will be sold on Friday."
    assert trim("Yes, of course. In the year 2015 it was sold at auction and it's now a museum.", QUESTION, told) is None
    assert trim("As far as I know, I have no idea. It will be sold on Friday.", QUESTION, told) is None
    assert trim("I remember it is a lovely old building.", QUESTION, told) is None  # nothing it remembers
    assert trim("I remember it was a Saturday in September. It's Friday, they sell everything.", "When is the auction?", told) is None
    assert trim("I remember the mill was built long ago.", "Any news?", told) is None  # one word of it is not the memory
    assert trim("I remember the mill's going to be sold.", "Any news?", told) == "I remember the mill's going to be sold."
    nothing = Evidence("unknown")
    assert trim("Honestly, I'm not sure, but I'm happy to say the bakery is open.", "Is the bakery open?", nothing) == \
        "Honestly, I'm not sure."
    assert trim("I don't know. The Reds won 3-1.", "Who won?", nothing) == "I don't know."
    assert trim("The Reds won 3-1.", "Who won?", nothing) is None
    assert trim("I don't know, it was 3-1 I think.", "Who won?", nothing) is None
    # the scene narrated instead of an answer (SmolLM2 in the chat form)
    assert narrates('The interviewer leans in, a little closer. "You know, I think my favourite bread is rye.')
    assert narrates("The interviewer, a bit of a busy one, said yes.") and not narrates("Yes, it will be sold on Friday.")
    about_ines = Evidence("person", (), ((3, "Ines Park"),))
    assert trim("I hardly know Ines, and I am still learning. He has been around for 40 years.", "What about Ines?", about_ines) == \
        "I hardly know Ines, and I am still learning."
    assert trim("I hardly know Ines, she is 40.", "What about Ines?", about_ines) is None  # a number it never heard


def test_both_prompt_forms_state_the_evidence_and_the_ties() -> None:
    persona = Persona(name="Maren Holt", bio="Runs the bakery on the square.", interests=["baking"], style="short sentences")
    who = Interviewee(persona, "Ashford Green", Mood(), {2: ("Tobias Reed", Bond(affinity=0.5, familiarity=0.5, trust=0.7))},
                      {"Tobias Reed": 2})
    told = Evidence("memory", (Recalled(Memory("m", 1, Kind.OBSERVATION, FACT, 9.0, 0.0, 0.0), 3.1, 0.62),), ((2, "Tobias Reed"),))
    transcript = transcript_prompt(who, "Did Tobias tell you about the mill?", told, "Yes,")
    assert transcript.text.endswith("\nMaren Holt: Yes,") and f"Maren remembers: - {FACT}" in transcript.text
    assert "Tobias Reed is a good friend Maren trusts" in transcript.text and "Interviewer:" in transcript.stop
    chat = chat_prompt(who, "Did Tobias tell you about the mill?", told)
    system, user = chat.messages[0]["content"], chat.messages[1]["content"]
    assert FACT in system and "Tobias Reed is a good friend you trust" in system and "first person" in system
    assert "Did Tobias tell you about the mill?" in user and "Answer from what you remember" in user
    nothing = chat_prompt(who, "Who won the match?", Evidence("unknown"))
    assert "You remember nothing about this." in nothing.messages[0]["content"] and "without guessing" in nothing.messages[1]["content"]


async def test_the_dashboard_interviews_an_agent(platform: Platform, api: httpx.AsyncClient, iv_server: RunningServer,
                                                 browser: object, script: Script) -> None:
    admin, guild_id, cast = await _society(platform, size=2)
    agent = cast[0]
    await _tell(api, admin, agent["id"])
    script.line = " the mill goes to auction on Friday."
    web = await open_web(browser, iv_server.url)
    try:
        page = web.page
        await page.goto("/login")  # type: ignore[attr-defined]
        await page.evaluate("t => localStorage.setItem('ts_token', t)", admin.token)  # type: ignore[attr-defined]
        await page.goto(f"/admin/agents/{agent['id']}?lang=en")  # type: ignore[attr-defined]
        form = page.locator("form.interview-form")  # type: ignore[attr-defined]
        await form.get_by_label("Question").fill(QUESTION)
        await form.get_by_role("button", name="Ask").click()
        answer = page.locator(".interview-answer")  # type: ignore[attr-defined]
        await answer.wait_for()
        assert await answer.locator(".interview-text").text_content() == "Yes, the mill goes to auction on Friday."
        assert FACT in await answer.locator(".interview-memories li").first.text_content()
        assert "from memory" in await answer.locator(".interview-meta").text_content()
        await web.shot("admin-interview")
        # an empty question is refused by the form; a question the server refuses shows its error
        await form.get_by_label("Question").fill("   ")
        await form.get_by_role("button", name="Ask").click()
        refused = page.locator(".interview-result .error")  # type: ignore[attr-defined]
        await refused.wait_for()
        assert "Invalid Form Body" in await refused.text_content()
        assert web.outside_loopback() == []
    finally:
        await close_web(web)
    assert (await _memories(api, admin, agent["id"]))["total"] == 1  # the dashboard's interview left no memory


async def test_the_real_bundled_model_answers_an_interview(platform: Platform, settings: Settings, services: Any) -> None:
    """Through `townsquare model serve`: the answer carries the fact the agent was told."""
    admin, guild_id, cast = await _society(platform, size=1)
    async with bundled_model_for(platform, admin, guild_id) as model_url:
        real = start_server(settings, services.database_url, services.redis_url, ollama_host=model_url)
        try:
            async with httpx.AsyncClient(base_url=real.url, timeout=120) as c:
                await _tell(c, admin, cast[0]["id"])
                r = await c.post(f"/api/v10/townsquare/agents/{cast[0]['id']}/interview", json={"question": QUESTION},
                                 headers=admin.headers)
                assert r.status_code == 200, r.text
                got = r.json()
                assert got["knows"] is True and got["model"] == "smollm2:135m"
                assert {"mill", "auction", "friday", "sold"} & set(got["answer"].lower().replace(".", " ").split()), got
        finally:
            real.stop()


def test_what_the_persona_knows_or_thinks_answers_an_interview_as_it_answers_in_its_turns() -> None:
    """Its `knows` and `views` (the turn's `known_or_view`) come after its memory: a fact to a
    question of fact, a view to a question of opinion, neither to "have you heard ...?"."""
    fact = "The old mill by the river ground flour until 1962."
    view = "The old mill ought to become a small museum of the village."
    remembered = [Recalled(Memory("m", 1, Kind.OBSERVATION, FACT, 9.0, 0.0, 0.0), 3.1, 0.62)]
    assert choose("When did the old mill stop grinding?", remembered, [], [], known=(fact, False)).basis == "memory"
    got = choose("When did the old mill stop grinding?", [], [], [], known=(fact, False))
    assert got.basis == "known" and got.statement == fact and got.knows
    assert choose("What should become of the old mill?", [], [], [], known=(view, True)).statement == view
    assert choose("What should become of the old mill?", [], [], [], known=(view, True)).basis == "view"
    assert choose("Have you heard anything about the old mill?", [], [], [], known=(fact, False)).basis == "unknown"
    assert choose("When did the old mill stop grinding?", [], [], [], known=(view, True)).basis == "unknown"  # a view is no fact


async def test_a_statement_it_knows_is_its_answer_without_the_model() -> None:
    persona = Persona(name="Tobias Reed", bio="Retired teacher and local historian.", interests=["history"],
                      knows=["The old mill by the river ground flour until 1962."])
    who = Interviewee(persona, "Ashford Green", Mood(), {}, {})

    class NoModel:  # the answer is said as the persona holds it: no model is asked
        routing = type("R", (), {"chain": staticmethod(lambda **_: [])})()
        backends: dict[str, Any] = {}

        async def think(self, **_: Any) -> Any:
            raise AssertionError("the model was asked")

    evidence = Evidence("known", statement=persona.knows[0])
    said = await answer(NoModel(), who, "When did the old mill stop grinding?", evidence, agent_id=1, guild_id=1,  # type: ignore[arg-type]
                        options=GenOptions(max_tokens=40))
    assert said.source == "plan" and said.reached and "ground flour until 1962" in said.text
