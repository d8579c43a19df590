"""What is on an agent's mind, passed on without the model: quoted from whoever said it (a quote
of a quote keeps its first author), its own plan, an event it went to, a fact it was told; and
what is not repeated that way (its own words, a private message, a question, a reflection)."""

from __future__ import annotations

import time

from townsquare.agents.memory.model import Kind, Memory
from townsquare.agents.turn.gate import GateContext, judge
from townsquare.agents.turn.passing import pass_on_lines
from townsquare.agents.turn.plan import plan_opener
from townsquare.agents.turn.realise import Scene
from townsquare.agents.turn.speak import speak
from townsquare.agents.brain.backends import GenOptions
from townsquare.worker.runtime.turns import on_mind_subject

from .test_asides import agent
from .test_turn import ScriptedChain


def memory(text: str, kind: Kind = Kind.OBSERVATION) -> Memory:
    now = time.time()
    return Memory(id="m1", agent_id=1, kind=kind, text=text, importance=8.0, created_at=now, last_access=now)


def test_what_someone_said_is_quoted_and_named() -> None:
    lines = pass_on_lines("Maren Holt said in #market: The bakery will close on Monday for repairs. Bring your own bread!", "Theo")
    assert lines and all("Maren" in line and "#market" in line and "The bakery will close on Monday for repairs." in line
                         for line in lines)
    assert all(line.count('"') == 2 for line in lines)


def test_an_answers_framing_is_not_quoted() -> None:
    lines = pass_on_lines("Greta Novak said in #books: Good question, Sam. The central library stays open until nine on Thursdays.", "Omar")
    assert lines and all('"The central library stays open until nine on Thursdays."' in line for line in lines)


def test_a_quote_of_a_quote_keeps_its_first_author() -> None:
    relayed = 'Theo Park said in #general: Maren was saying in #market: "The bakery will close on Monday for repairs." Thoughts?'
    lines = pass_on_lines(relayed, "Ines")
    assert lines and all("Maren" in line and "#market" in line and "Theo" not in line for line in lines)
    assert all(line.count('"') == 2 for line in lines), lines[:2]
    assert pass_on_lines(relayed, "Maren") == []  # its own words come back: not quoted to others


def test_a_plan_a_visit_and_a_told_fact_are_said_as_the_speaker_says_them() -> None:
    planned = pass_on_lines("My plan: throw a party at the harbour cafe on Saturday evening", "Amara")
    assert planned and all("party at the harbour cafe on Saturday evening" in line for line in planned)
    assert any(line.startswith("I'm planning to throw a party") for line in planned)
    assert all("I am throwing a party" in line for line in pass_on_lines("My plan: I am throwing a party on Saturday", "Amara"))
    went = pass_on_lines("I was at the pub quiz at the Plough (every Thursday, 19:00 to 21:00)", "Oskar")
    assert went and all("the pub quiz at the Plough" in line and "(" not in line for line in went)
    told = pass_on_lines("The library will close early on Friday for a staff meeting.", "Ines")
    assert told and all("library will close early on friday" in line.lower() for line in told)


def test_what_is_not_worth_repeating_is_not_passed_on() -> None:
    assert pass_on_lines("Maren Holt said in #market: Morning all!", "Theo") == []  # small talk
    assert pass_on_lines("Beatriz Rocha said in #food: Here at the Saturday market, on now until 14:00. Lovely atmosphere.", "Omar") == []
    assert pass_on_lines("Lucia Ferraro said in #music: Can't make the Saturday club night, I'm afraid.", "Omar") == []
    assert pass_on_lines("Maren Holt said in #market: Is anyone going to the market tomorrow morning?", "Theo") == []
    assert on_mind_subject(memory("Maren Holt wrote to me privately: my sister is moving to Leeds next month"), "general", "Theo Park") is None
    assert on_mind_subject(memory("I said in #market: the bakery will close on Monday for repairs"), "general", "Theo Park") is None
    assert on_mind_subject(memory("Most of my friends care about the harbour", Kind.REFLECTION), "general", "Theo Park") is None
    said_here = memory("Maren Holt said in #market: The bakery will close on Monday for repairs.")
    assert on_mind_subject(said_here, "market", "Theo Park") is None  # the channel heard it already
    crier = memory("Town Crier said in #market: New at Saturday's market — A cheese stall joins the market this week.")
    assert on_mind_subject(crier, "general", "Theo Park", "Town Crier") is None  # the world's news is told as news, not quoted
    passed = on_mind_subject(said_here, "general", "Theo Park")
    assert passed is not None and passed.kind == "mind" and passed.share


async def test_a_memory_is_passed_on_without_the_model_and_passes_the_gate() -> None:
    text = "Maren Holt said in #market: The bakery will close on Monday for repairs."
    oskar = agent("Oskar")
    plan = plan_opener(oskar, text, seed=3, news=True, world="mind")
    chain = ScriptedChain("Actually, Sam will make the sourdough.")
    gate = GateContext(own_name=oskar.name, members=["Maren Holt"], subject=text)
    spoken = await speak(chain, agent_id=1, guild_id=1, persona=oskar, plan=plan,  # type: ignore[arg-type]
                         scene=Scene("Ashford Green", "general", None, ()), gate=gate, options=GenOptions(max_tokens=40))
    assert chain.calls == 0 and spoken.source == "plan" and spoken.text
    assert "The bakery will close on Monday for repairs." in spoken.text and "Maren" in spoken.text
    assert judge(spoken.text, gate).ok


async def test_another_agents_line_gets_a_memory_as_it_was_said_what_it_knows_the_news_or_an_emoji() -> None:
    """Between agents, no model (the bundled model's lines were nonsense, some offensive): a memory
    that bears on the line, passed on as it was said; what the agent knows; the news; an emoji."""
    from townsquare.agents.turn.plan import Heard, plan_reply

    oskar = agent("Oskar")
    heard = Heard("Tobias Reed", "What will the parish council decide about the old mill?")
    memory = "Maren Holt said in #general: The parish council will discuss the old mill on Tuesday evening in the village hall."
    plans = [plan_reply(oskar, heard, seed=s, memories=[memory]) for s in range(40)]
    passed = [p for p in plans if p.act == "share"]
    assert passed and all(p.composed and p.world == "mind" for p in passed) and {p.act for p in plans} <= {"share", "react"}
    line = passed[0].fallbacks()[0]
    assert "Maren" in line and '"The parish council will discuss the old mill on Tuesday evening in the village hall."' in line
    chain = ScriptedChain("By the way, you know, the old mill was built by strangers.")
    spoken = await speak(chain, agent_id=1, guild_id=1, persona=oskar, plan=passed[0],  # type: ignore[arg-type]
                         scene=Scene("Ashford Green", "history", None, ()), gate=GateContext(own_name=oskar.name, answering=heard.text),
                         options=GenOptions(max_tokens=40))
    assert chain.calls == 0 and spoken.text and "Maren" in spoken.text
    # the memory of the very line it answers is not "something it remembers"
    itself = "Tobias Reed said in #history: What will the parish council decide about the old mill?"
    assert all(p.act == "react" for p in (plan_reply(oskar, heard, seed=s, memories=[itself]) for s in range(20)))
    # what it knows: said as it is
    knows = "The old mill ground flour until 1962 and was later used as a grain store."
    told = plan_reply(oskar, heard, seed=1, known=knows)
    assert told.composed and told.known == knows and any(knows in line for line in told.fallbacks())
    # a line that quotes the memory already does not get it quoted back
    quoting = Heard("Tobias Reed", 'Did you see what Maren said in #general? "The parish council will discuss the old mill on Tuesday '
                                   'evening in the village hall." Thoughts?')
    assert all(p.act == "react" for p in (plan_reply(oskar, quoting, seed=s, memories=[memory]) for s in range(20)))
    # a memory that only touches it (one word in common), or small talk: not passed on
    chat = "Maren Holt said in #general: The mill looks pretty in the snow."
    assert all(p.act == "react" for p in (plan_reply(oskar, heard, seed=s, memories=[chat]) for s in range(20)))
    # nothing of its own: an emoji, never the model
    assert all(plan_reply(oskar, heard, seed=s).act == "react" for s in range(20))


def test_every_way_a_line_was_passed_on_keeps_its_first_author_and_non_answers_are_not_passed_on() -> None:
    said = "The Cellar holds a vinyl fair next Sunday afternoon."
    for relayed in (f'Beatriz was saying in #music: "{said}"', f'From #music, Beatriz says: "{said}" Thoughts?',
                    f'Did you see what Beatriz said in #music? "{said}"', f'Passing this on from Beatriz in #music: "{said}" Worth knowing.'):
        lines = pass_on_lines(f"Marcus Bell said in #books: {relayed}", "Kwame")
        assert lines and all("Beatriz" in line and "#music" in line and f'"{said}"' in line and "Marcus" not in line
                             for line in lines), relayed
    for answer in ("Who sells the best cheese? Not sure, Sam. Others might know.", "What's a good first laptop? Don't know, Sam.",
                   "Good question, Sam. Wish I knew. I'll ask around."):
        assert pass_on_lines(f"Maren Holt said in #market: {answer}", "Oskar") == []
    assert pass_on_lines('Maren Holt said in #market: She said "call me" and left the stall early today.', "Oskar") == []


def test_what_it_knows_is_not_said_again_right_after_someone_said_it() -> None:
    from townsquare.agents.turn.plan import Heard, plan_reply

    knows = "After a run longer than ninety minutes, eat carbohydrate and some protein within the hour to recover."
    answered = Heard("Mia Chen", f"Right, Sam. {knows} Hope that helps.")
    assert all(plan_reply(agent("Oskar"), answered, seed=s, known=knows).act == "react" for s in range(20))


def test_a_sentence_after_a_comma_keeps_a_names_capital_and_a_statement_is_not_answered_as_a_question() -> None:
    from townsquare.agents.turn.plan import Heard, plan_reply
    from townsquare.agents.turn.text import lower_first

    assert lower_first("The bakery closes at one.") == "the bakery closes at one."
    assert lower_first("Harbour Ward win the derby.") == "Harbour Ward win the derby."
    # "Frost tonight? So I read." ends with a statement: not a question to answer with "no idea"
    echo = Heard("Tobias Reed", "Frost tonight? So I read. Time will tell.", to_me=True)
    assert all(plan_reply(agent("Oskar"), echo, seed=s).act == "react" for s in range(20))


def test_a_memory_clipped_mid_sentence_is_not_quoted_as_if_whole() -> None:
    lines = pass_on_lines("Zara Ahmed said in #general: The ward council hears residents on Tuesday. Bike lanes on Quay Road will take out", "Omar")
    assert lines and all('"The ward council hears residents on Tuesday."' in line for line in lines)
    assert pass_on_lines("Zara Ahmed said in #general: Derby tomorrow — Harbour Ward FC play Northgate tomorrow at 3 pm at the ward", "Omar") == []
