"""The turn pipeline's rooms on their own: the quality gate's reasons on constructed candidates,
the planner's acts, the prompt forms, and the model's pacing (priority, giving up, handing over)."""

from __future__ import annotations

import asyncio
import re

import pytest
from townsquare.agents.mind.relations import Bond
from townsquare.agents.society.persona import Persona, Traits
from townsquare.agents.turn.gate import GateContext, judge
from townsquare.agents.brain.backends import GenOptions
from townsquare.agents.brain.chain import Thought
from townsquare.agents.turn.knowing import asks_for_facts, asks_opinion, best_known, carries, expert_for, known_or_view, view_on
from townsquare.agents.turn.plan import (
    Heard,
    keyphrase,
    object_phrase,
    plan_opener,
    plan_reply,
)
from townsquare.agents.turn.realise import (
    Line,
    Scene,
    build_prompt,
    chat_prompt,
    transcript_prompt,
)
from townsquare.agents.turn.speak import speak
from townsquare.agents.turn.text import distinct_n, five_grams, similarity, words
from townsquare.platform.core.metrics import GATE_REASONS
from townsquare.worker.runtime.pacing import (
    AGENT_DIRECT,
    CONVERSATION,
    HUMAN_DIRECT,
    Deferred,
    ModelPace,
    candidates_for,
)

MAREN = Persona(name="Maren Holt", bio="Runs the bakery on the corner of the square. Generous, blunt, up before dawn.",
                traits=Traits(agreeableness=0.7, extraversion=0.75), interests=["baking", "sourdough", "the Saturday market"],
                style="short, warm sentences; practical")
TOBIAS = Persona(name="Tobias Reed", bio="Retired schoolteacher and village historian. A little lonely since his wife died.",
                 interests=["local history", "the old mill"], style="careful, complete sentences")
MEMBERS = ["Tobias Reed", "Ines Alvarez", "Priya Nair", "Sam Carter"]


def ctx(**kw: object) -> GateContext:
    base: dict[str, object] = dict(own_name="Maren Holt", members=MEMBERS, bio=MAREN.bio,
                                   prompt_texts=(MAREN.bio, MAREN.style), answering="Is the bakery open on Sunday?")
    base.update(kw)
    return GateContext(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("candidate", "reason"), [
    ("Tobias Reed: I recall the bakery opened in 1952.", "wrong_voice"),
    ("Priya Nair (checking notes): It is open from eight.", "wrong_voice"),
    ("Certainly! I'll reply as Maren Holt: yes we are open.", "assistant_speak"),
    ("As an AI language model, I cannot open a bakery.", "assistant_speak"),
    ("I apologize, but I do not have any personal information.", "assistant_speak"),
    ("You are a baker who runs the bakery on the corner of the square.", "recital"),
    ("Speaks in short, warm sentences; practical and generous.", "recital"),
    ("Actually, Sam said in #fitness: where is a good place to cycle on Sunday?", "recital"),
    ("Love you so much, Maren Holt.", "self_address"),
    ("Thanks @Maren for asking, it is open.", "self_address"),
    ("Maren thinks the bakery is open on Sunday mornings.", "self_reference"),
    ("Beatriz, how many days of Maren's bakery sale are left?", "self_reference"),
    ("Is the bakery open on Sunday?", "parrot"),
    ("I am a Korean engineer, so I would not know.", "invented_fact"),
    ("My husband runs it on Sundays.", "invented_fact"),
    ("We open at eight and the rye is always", "unfinished"),
    ("", "empty"),
    ("<|im_end|>", "empty"),
])
def test_each_reason_is_caught(candidate: str, reason: str) -> None:
    verdict = judge(candidate, ctx())
    assert verdict.text is None and verdict.reason == reason, (candidate, verdict)
    assert reason in GATE_REASONS  # the records', the dashboard's and /metrics' label values


def test_loops_against_own_and_partner_lines() -> None:
    said = "The old mill will be lovely to see in town during the Sunday market."
    assert judge("The old mill will be lovely to see in town during the Sunday market!", ctx(own_recent=(said,))).reason == "loop"
    assert judge("Honestly the old mill will be lovely to see in town, I think.", ctx(others_recent=(said,))).reason == "loop"
    assert judge("Sundays we open at eight, with rye and seeded loaves.", ctx(own_recent=(said,))).ok


def test_a_sentence_reciting_the_persona_is_cut_from_a_longer_line() -> None:
    verdict = judge("Yes, we open at eight on Sundays. You run the bakery on the corner of the square. Come early for rye!", ctx())
    assert verdict.text == "Yes, we open at eight on Sundays. Come early for rye!"


def test_a_reply_that_only_turns_the_message_around_is_a_parrot() -> None:
    asked = "By the way, how does it make a pixel-art puzzle game?"
    assert judge("I think it makes a pixel-art puzzle game, but what does that mean?", ctx(answering=asked)).reason == "parrot"
    assert judge("Yes, the bakery is open on Sunday until noon.", ctx()).ok  # the question's words, and an answer


def test_an_opener_does_not_answer_a_message_nobody_wrote() -> None:
    opener = ctx(answering=None, subject="the old mill is for sale")
    assert judge("No, the old mill is in poor shape these days.", opener).reason == "off_topic"
    assert judge("Ah, yes. The old mill... he loves the mill.", opener).reason == "off_topic"
    assert judge("The old mill is for sale at last. What should we make of it?", opener).ok


def test_off_topic_needs_relevance_above_the_floor() -> None:
    def relevance(a: str, b: str) -> float:  # a stand-in for embeddings: shared words
        wa, wb = set(a.lower().split()), set(b.lower().split())
        return len(wa & wb) / len(wa | wb)

    gated = ctx(relevance=relevance, relevance_floor=0.15)
    assert judge("My cat likes the rain in winter.", gated).reason == "off_topic"
    assert judge("Yes, the bakery is open on Sunday until noon.", gated).ok


@pytest.mark.parametrize("good", [
    "Yes, Sunday we open at eight, but the rye sells out by ten.",
    "Only mornings on Sunday, Tobias. Come early for the sourdough!",
    "Maren Holt: We open at eight on Sundays.",  # its own name prefix is stripped, the line is its own
    "Sunday mornings, yes. Bring a bag, we're out of paper ones.",
])
def test_good_lines_pass_and_are_cleaned(good: str) -> None:
    verdict = judge(good, ctx())
    assert verdict.ok, verdict
    assert not verdict.text.startswith("Maren")  # type: ignore[union-attr]


def test_a_line_that_goes_on_with_another_speaker_keeps_only_its_own_part() -> None:
    verdict = judge("Yes, from eight until noon. Tobias Reed: I recall it used to open at seven.", ctx())
    assert verdict.text == "Yes, from eight until noon."
    # a stray ")" (the prompt's stage direction closes with one) is not the agent's
    assert judge("Sundays we bake until noon, rye mostly.)", ctx()).text == "Sundays we bake until noon, rye mostly."
    assert judge("Sundays we bake (rye mostly) until noon.", ctx()).text == "Sundays we bake (rye mostly) until noon."


def test_invented_ties_about_others_are_dropped_and_supported_ones_kept() -> None:
    names = {"Tobias Reed": 1, "Priya Nair": 2}
    gated = ctx(answering="How is everyone?", names_to_ids=names, bonds={1: Bond(affinity=0.6, familiarity=0.5), 2: None})
    assert judge("My husband Priya Nair says hello.", gated).reason == "invented_fact"
    kept = judge("Tobias is my good friend. We had tea this morning.", gated)
    assert kept.ok and "friend" in kept.text  # type: ignore[operator]


def test_bio_backs_the_facts_it_states() -> None:
    tobias = ctx(own_name="Tobias Reed", bio=TOBIAS.bio, members=["Maren Holt"], answering="How are you keeping?")
    assert judge("I miss my wife on quiet evenings like this.", tobias).ok  # "his wife died": in the bio
    assert judge("As a retired schoolteacher I still mark everything in red.", tobias).ok


def test_the_planner_answers_questions_and_greets_and_thanks() -> None:
    asked = plan_reply(MAREN, Heard("Sam Carter", "@Maren Holt is the bakery open on Sunday?", human=True, to_me=True), seed=1)
    assert asked.act == "answer" and asked.must_post and asked.to == "Sam Carter"
    assert "Sunday" in asked.instruction() and "Maren answers Sam's question" in asked.narration()
    assert plan_reply(MAREN, Heard("Sam Carter", "Good morning!", human=True, to_me=True), seed=1).act == "greet"
    assert plan_reply(MAREN, Heard("Sam Carter", "thanks for the loaf, Maren", human=True, to_me=True), seed=1).act == "thank"
    overheard = plan_reply(MAREN, Heard("Tobias Reed", "The fair should move to the green this year.", human=False), seed=3)
    assert overheard.act in ("agree", "disagree", "ask", "share", "joke", "react") and not overheard.must_post


def test_the_planner_is_seeded_and_follows_traits_and_bonds() -> None:
    heard = Heard("Tobias Reed", "I think the mill should become a museum.")
    mill = ["Ines said in #history: the mill museum idea came up at the council in spring"]  # something of its own to say
    assert [plan_reply(MAREN, heard, seed=s, memories=mill, model_talk=True).act for s in range(20)] == \
        [plan_reply(MAREN, heard, seed=s, memories=mill, model_talk=True).act for s in range(20)]
    blunt = MAREN.model_copy(update={"traits": Traits(agreeableness=0.05)})
    def disagreeing(persona: Persona, affinity: float) -> int:
        return sum(plan_reply(persona, heard, seed=s, bond=Bond(affinity=affinity), memories=mill, model_talk=True).act == "disagree"
                   for s in range(200))

    disagree_blunt, disagree_kind = disagreeing(blunt, -0.6), disagreeing(MAREN, 0.6)
    assert disagree_blunt > 2 * disagree_kind


def test_memory_shapes_the_plan() -> None:
    heard = Heard("Tobias Reed", "The old mill is for sale, did you hear?")
    plan = plan_reply(MAREN, heard, seed=5, memories=["Ines said in #market: the mill roof collapsed in the storm"], model_talk=True)
    assert plan.act == "answer" and plan.hint and "mill roof" in plan.hint
    opener = plan_opener(MAREN, "the new oven", seed=1, news=True)
    assert opener.act == "share" and "new oven" in opener.instruction()


def test_fallback_lines_are_varied_well_formed_and_pass_the_gate() -> None:
    lines = set()
    for seed in range(12):
        plan = plan_reply(MAREN, Heard("Sam Carter", "@Maren Holt my basil keeps dying, any idea why?", human=True, to_me=True),
                          seed=seed)
        line = plan.fallbacks()[0]
        lines.add(line)
        assert "Sam" in line and judge(line, ctx(answering=plan.heard.text)).ok, line  # type: ignore[union-attr]
        assert "my basil" not in line  # the asker's thing, as the answerer says it
    assert len(lines) >= 3
    # a repeat of its own earlier fallback is a loop: the next variant is taken
    plan = plan_reply(MAREN, Heard("Sam Carter", "@Maren Holt what's in season?", human=True, to_me=True), seed=1)
    first, second = plan.fallbacks()[:2]
    assert not judge(first, ctx(answering=plan.heard.text, own_recent=(first,))).ok  # type: ignore[union-attr]
    assert judge(second, ctx(answering=plan.heard.text, own_recent=(first,))).ok  # type: ignore[union-attr]
    assert object_phrase("why is the church bell cracked?") == "the church bell"
    assert keyphrase("slugs ate my lettuces, what should I do?") == "slugs ate"


def test_the_transcript_form_ends_with_the_speakers_own_name() -> None:
    plan = plan_reply(MAREN, Heard("Sam Carter", "are you opening the bakery on Sunday?", human=True, to_me=True), seed=1)
    scene = Scene("Ashford Green", "general", "The town square.", (Line("Tobias Reed", "Morning."),
                                                                    Line("Sam Carter", "are you opening the bakery on Sunday?")))
    prompt = transcript_prompt(MAREN, plan, scene)
    # ... and the plan's first words (a yes/no question: the stance is the planner's)
    assert plan.lead in ("Yes,", "No,", "I think so,", "Not really,", "Probably,", "Hmm, yes,", "Honestly, no,")
    assert prompt.text.endswith(f"\nMaren Holt: {plan.lead}") and prompt.lead == plan.lead
    assert "Sam Carter: are you opening the bakery on Sunday?" in prompt.text
    assert "\n" in prompt.stop and prompt.messages == ()
    chat = chat_prompt(MAREN, plan, scene)
    assert chat.messages[0]["role"] == "system" and "Maren" in chat.messages[0]["content"] and chat.text == ""
    assert build_prompt("chat", MAREN, plan, scene).form == "chat"
    # what lasts comes first: two turns of one agent in one channel share the prompt's start
    other = transcript_prompt(MAREN, plan, Scene("Ashford Green", "general", "The town square.", (Line("Ines Alvarez", "Hi"),)))
    assert other.text.split("\n")[:2] == prompt.text.split("\n")[:2]


def test_leads_follow_the_act_and_the_question() -> None:
    why = plan_reply(MAREN, Heard("Tobias Reed", "@Maren Holt why do you bake your rye so dark?", human=False, to_me=True), seed=2,
                     memories=["Ines said in #market: the dark rye sells out first"], model_talk=True)
    assert why.lead in ("I think it's because", "Probably because", "Mostly because")
    hello = plan_reply(MAREN, Heard("Sam Carter", "Hello!", human=True, to_me=True), seed=2)
    assert hello.act == "greet" and "Sam" in hello.lead
    fair = Heard("Tobias Reed", "The fair should move to the green.", human=False)
    assert all(len(plan_reply(MAREN, fair, seed=s, model_talk=True).lead.split()) <= 4 for s in range(30))


def test_text_measures() -> None:
    assert similarity("i LOVE the smell of fresh bread!!", "I love the smell of fresh bread") == 1.0
    assert five_grams("a b c d e f") == {("a", "b", "c", "d", "e"), ("b", "c", "d", "e", "f")}
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)


async def test_pacing_serves_by_priority_hands_over_and_gives_up() -> None:
    pace = ModelPace(slots=1)
    order: list[str] = []
    release = asyncio.Event()

    async def hold() -> None:
        async with pace.turn(CONVERSATION):
            order.append("first")
            await release.wait()

    async def later(name: str, priority: int) -> None:
        async with pace.turn(priority):
            order.append(name)

    first = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(later("roll", CONVERSATION)), asyncio.create_task(later("agent", AGENT_DIRECT)),
               asyncio.create_task(later("human", HUMAN_DIRECT))]
    await asyncio.sleep(0)
    with pytest.raises(Deferred):  # a turn nobody asked for does not wait for a busy model
        async with pace.turn(CONVERSATION, max_wait=0):
            pass
    release.set()
    await asyncio.gather(first, *waiting)
    assert order == ["first", "human", "agent", "roll"]
    assert pace.busy == 0 and pace.waiting == 0


async def test_a_cancelled_waiter_does_not_leak_the_models_place() -> None:
    pace = ModelPace(slots=1)
    gate = asyncio.Event()

    async def hold() -> None:
        async with pace.turn(CONVERSATION):
            await gate.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter.cancel()
    gate.set()
    await asyncio.gather(holder, waiter, return_exceptions=True)
    assert pace.busy == 0
    async with pace.turn(HUMAN_DIRECT, max_wait=0):
        assert pace.busy == 1


INES = Persona(name="Ines Alvarez", bio="Market gardener with three allotments; sells at the Saturday stall.",
               interests=["gardening", "tomatoes"],
               knows=["Beer traps and a ring of grit keep slugs off lettuces.", "Tomatoes want deep watering twice a week."])


def overlap(a: str, b: str) -> float:
    """Word overlap: a stand-in for the embedding relevance where wording is chosen by the test."""
    wa, wb = {w for w in words(a) if len(w) > 3}, {w for w in words(b) if len(w) > 3}
    return len(wa & wb) / len(wa | wb) if wa and wb else 0.0


def test_what_a_persona_knows_answers_a_question_and_otherwise_who_would_know() -> None:
    slugs = "@Ines Alvarez slugs ate my lettuces, what should I do?"
    assert best_known(INES.knows, slugs, overlap, 0.1) == INES.knows[0]
    assert best_known(INES.knows, "who built the old mill?", overlap, 0.1) is None
    assert expert_for("what keeps slugs off my lettuces?", [MAREN, INES], overlap, 0.1) == "Ines Alvarez"
    assert expert_for("who built the old mill?", [MAREN, INES], overlap, 0.1) is None

    plan = plan_reply(INES, Heard("Sam Carter", slugs, human=True, to_me=True), seed=3, known=INES.knows[0])
    assert plan.act == "answer" and plan.known and plan.lead == ""  # no stance forced on top of what it knows
    assert "Beer traps" in plan.narration() and "Beer traps" not in plan.narration(with_known=False)
    prompt = transcript_prompt(INES, plan, Scene("Ashford Green", "garden", None, (Line("Sam Carter", slugs),)))
    assert "Beer traps" in prompt.text and "Beer traps" not in prompt.direction
    # a line passing on what it knows is not a recital of the prompt
    assert judge("Beer traps and a ring of grit keep slugs off lettuces, honestly.",
                 ctx(own_name=INES.name, bio=INES.bio, prompt_texts=(INES.bio, prompt.direction), answering=slugs)).ok
    lines = {line for seed in range(8) for line in
             plan_reply(INES, Heard("Sam Carter", slugs, human=True, to_me=True), seed=seed, known=INES.knows[0]).fallbacks()[:1]}
    assert len(lines) >= 3 and all("Beer traps and a ring of grit keep slugs off lettuces." in line for line in lines)

    # nothing known: the honest answer names who would know, not a guess
    mill = plan_reply(MAREN, Heard("Sam Carter", "@Maren Holt who built the old mill?", human=True, to_me=True), seed=4,
                      expert="Tobias Reed")
    assert mill.known is None and all("Tobias" in line for line in mill.fallbacks())
    assert all(judge(line, ctx(answering=mill.heard.text)).ok for line in mill.fallbacks()[:5])  # type: ignore[union-attr]


class ScriptedChain:
    """The model's words chosen by the test; the gate (`accept`) runs on them as the real chain does."""

    def __init__(self, *texts: str) -> None:
        self.texts, self.calls = list(texts), 0

    async def think(self, *, accept, **_: object) -> Thought:  # type: ignore[no-untyped-def]
        text = self.texts[min(self.calls, len(self.texts) - 1)]
        self.calls += 1
        verdict = accept(text)
        kept = getattr(verdict, "text", verdict)
        return Thought(kept, "llm" if kept else "none", llm_ms=5)


async def test_a_known_answer_beats_a_guess_but_not_an_answer_as_close() -> None:
    slugs = "slugs ate my lettuces, what should I do?"
    plan = plan_reply(INES, Heard("Sam Carter", slugs, human=True, to_me=True), seed=3, known=INES.knows[0])
    scene = Scene("Ashford Green", "garden", None, (Line("Sam Carter", slugs),))
    gate = ctx(own_name=INES.name, bio=INES.bio, prompt_texts=(INES.bio,), answering=slugs, members=["Sam Carter"])

    async def say(*texts: str):  # type: ignore[no-untyped-def]
        return await speak(ScriptedChain(*texts), agent_id=1, guild_id=1, persona=INES, plan=plan, scene=scene, gate=gate,
                           options=GenOptions(max_tokens=40), candidates=2, relevance=overlap)

    guess = await say("I think the rain will come on Sunday, so what should we bake.")
    assert guess.source == "plan" and "Beer traps" in (guess.text or "") and guess.llm_ms == 0
    # even a faithful paraphrase is not asked for: the model's paraphrases garbled the details
    # ("I'd go to the local jazz club tomorrow, 23:00 to 15:00.")
    chain = ScriptedChain("Put beer traps out tonight and a ring of grit round the lettuces; slugs hate it.")
    own = await speak(chain, agent_id=1, guild_id=1, persona=INES, plan=plan, scene=scene, gate=gate, options=GenOptions(max_tokens=40),
                      candidates=2, relevance=overlap)
    assert own.source == "plan" and chain.calls == 0 and INES.knows[0] in (own.text or "")


def test_a_turn_asks_one_line_while_others_wait_unless_a_person_asked() -> None:
    assert candidates_for(2, waiting=0, must_post=False) == 2
    assert candidates_for(2, waiting=3, must_post=False) == 1
    assert candidates_for(2, waiting=3, must_post=True) == 2
    assert candidates_for(1, waiting=0, must_post=False) == 1


async def test_a_question_nobody_here_knows_is_not_guessed_at_but_sent_to_who_knows() -> None:
    mill = "who built the old mill?"
    plan = plan_reply(MAREN, Heard("Sam Carter", mill, human=True, to_me=True), seed=4, expert="Tobias Reed")
    assert plan.honest and plan.expert == "Tobias Reed"
    scene = Scene("Ashford Green", "general", None, (Line("Sam Carter", mill),))
    guess = await speak(ScriptedChain("I think the old mill was built by the council in the old days."), agent_id=1, guild_id=1,
                        persona=MAREN, plan=plan, scene=scene, gate=ctx(answering=mill), options=GenOptions(max_tokens=40),
                        relevance=overlap)
    assert guess.source == "plan" and guess.llm_ms == 0 and "Tobias" in (guess.text or "") and "council" not in (guess.text or "")
    # nobody knows either: an honest "I don't know", still no guess
    alone = plan_reply(MAREN, Heard("Sam Carter", mill, human=True, to_me=True), seed=4)
    said = await speak(ScriptedChain("The council built it in 1850."), agent_id=1, guild_id=1, persona=MAREN, plan=alone, scene=scene,
                       gate=ctx(answering=mill), options=GenOptions(max_tokens=40), relevance=overlap)
    assert said.source == "plan" and said.text and "1850" not in said.text and "Tobias" not in said.text


def test_an_honest_answer_names_a_thing_asked_about_not_a_piece_of_the_question() -> None:
    for question in ("do the stalls take cards?", "when is the library open?"):
        lines = plan_reply(MAREN, Heard("Sam Carter", question, human=True, to_me=True), seed=2).fallbacks()
        assert not any("about the stalls take" in line or "about the library open" in line for line in lines)
    assert object_phrase("who built the old mill?", definite_only=True) == "the old mill"


def test_only_questions_about_the_world_are_kept_from_guesses() -> None:
    facts = ["is it going to rain tomorrow, do you think?", "where can I get good eggs on Saturday?", "any tips for a first sourdough?",
             "@Maren Holt why do the cobbles dip?", "do you know when the bus comes?", "can you tell me where the church is?"]
    about_you = ["how are you today?", "what do you like to bake?", "have you ever been to the mill?", "anyone else awake? can't sleep.",
                 "Busy at the bakery. What's everyone up to?", "are you coming to the fair?", "what's your favourite bread?",
                 "good morning, any news?", "how's it going?"]
    assert all(asks_for_facts(q) for q in facts), [q for q in facts if not asks_for_facts(q)]
    assert not any(asks_for_facts(q) for q in about_you), [q for q in about_you if asks_for_facts(q)]
    # a question about the speaker goes to the model, even from a person asking directly
    assert not plan_reply(MAREN, Heard("Sam Carter", "what do you like to bake?", human=True, to_me=True), seed=1).honest
    # another agent's question about the world that nothing known answers is not answered with a
    # guess (often it is a person's question echoed in an honest "no idea"): it is talked about
    echoed = Heard("Tobias Reed", "Who built the old mill? No idea, Sam. Someone may know.", human=False, to_me=False)
    assert all(plan_reply(MAREN, echoed, seed=s, model_talk=True).act != "answer" for s in range(20))
    baked = ["Ines said in #market: Maren bakes a dark rye every Saturday"]  # a question about herself, with something to go on
    bake = Heard("Tobias Reed", "Maren, what do you like to bake?")
    assert plan_reply(MAREN, bake, seed=1, memories=baked, model_talk=True).act == "answer"
    assert plan_reply(MAREN, bake, seed=1, model_talk=True).act == "react"  # nothing to go on: no made-up answer


def test_a_known_answer_must_be_passed_on_not_only_its_subject() -> None:
    known = "Basil dies from cold nights and wet roots; keep it on a warm windowsill and water it in the morning."
    asked = "my basil keeps dying, any idea why?"
    assert not carries("I'm going to eat a bowl of basil!", known, asked)
    assert carries("Cold nights kill it, Sam; keep it on a warm windowsill.", known, asked)


def test_what_is_known_answers_the_kind_of_question_asked() -> None:
    knows = ["Come to the bakery before eight on a Saturday if you want a sourdough loaf.",
             "The bakery opens at seven and the first tray of rolls is gone by eight.",
             "Old jazz records sound best on a player with a good, clean stylus.",
             "Most gigs in town are listed on the board by the record shop on Dock Street."]
    # a stand-in for embeddings: every statement on the subject fits equally
    same = lambda a, b: 0.6  # noqa: E731
    assert best_known(knows, "is the bakery open on Sunday morning?", same, 0.5) == knows[1]  # not Saturday's
    assert best_known(knows, "what time does the bakery open?", same, 0.5) == knows[1]  # more words in common
    assert best_known(knows, "which record shop is best for jazz?", same, 0.5) == knows[3]  # a place, not a tip
    assert best_known(knows, "where can I park?", lambda a, b: 0.4, 0.5) is None


async def test_an_opener_about_the_world_passes_on_its_subject() -> None:
    news = "the news: Heatwave coming (Forecasters expect the hottest week of the year from Monday)"
    plan = plan_opener(MAREN, news, seed=3, news=True, world="news")
    scene = Scene("Ashford Green", "general", None, ())

    # the subject is already a line: made from it, the model not asked (it garbled them:
    # "Did you hear, did you hear, the heatwave?", "I'm not going to the Friday market tomorrow")
    chain = ScriptedChain("Did you hear, did you hear, the heatwave?")
    said = await speak(chain, agent_id=1, guild_id=1, persona=MAREN, plan=plan, scene=scene,  # type: ignore[arg-type]
                       gate=ctx(answering=None, subject=news), options=GenOptions(max_tokens=40), candidates=1, relevance=overlap)
    assert chain.calls == 0 and said.source == "plan" and "hottest week of the year from Monday" in (said.text or ""), said
    # each kind of world subject makes a well-formed line of its own
    for kind, subject in (("upcoming", "is anyone going to the Saturday market at the stalls on the square tomorrow, 08:00 to 13:00?"),
                          ("event", "the football match against Hartwell at the village green, on now until 17:00"),
                          ("routine", "sorting old parish records at the parish archive in the church vestry")):
        line = plan_opener(MAREN, subject, seed=1, world=kind).fallbacks()[0]
        assert judge(line, ctx(answering=None, subject=subject)).ok and carries(line, subject, ""), line


async def test_agents_chatting_among_themselves_say_one_thing() -> None:
    heard = Heard("Tobias Reed", "The fair should move to the green this year.")
    fair = ["Ines said in #general: the fair on the green drew a record crowd"]  # something of its own to say: words, not an emoji
    plan = next(p for p in (plan_reply(MAREN, heard, seed=s, memories=fair, model_talk=True) for s in range(100))
                if p.act in ("agree", "disagree"))
    scene = Scene("Ashford Green", "general", None, (Line("Tobias Reed", heard.text),))
    said = await speak(ScriptedChain("Well, the green drew a record crowd. You are going to change the lives of 20,000 people!"),
                       agent_id=1, guild_id=1, persona=MAREN, plan=plan, scene=scene, gate=ctx(answering=heard.text),
                       options=GenOptions(max_tokens=40), candidates=1)
    assert said.text and said.text.endswith("the green drew a record crowd.") and "20,000" not in said.text
    # ... to the agent it answers, not to whoever the transcript named last
    called = await speak(ScriptedChain("Well, Sam, the green drew a record crowd."), agent_id=1, guild_id=1, persona=MAREN,
                         plan=plan, scene=scene, gate=ctx(answering=heard.text), options=GenOptions(max_tokens=40), candidates=1)
    assert called.text and "Sam" not in called.text and called.text.endswith("Well, the green drew a record crowd."), called
    # a person's question gets two sentences, not a ramble
    asked = plan_reply(MAREN, Heard("Sam Carter", "what do you like to bake?", human=True, to_me=True), seed=3)
    full = await speak(ScriptedChain("Rye, mostly. The seeded loaf sells out first. He does what he is best of the time."),
                       agent_id=1, guild_id=1, persona=MAREN, plan=asked, scene=scene, gate=ctx(answering=asked.content),
                       options=GenOptions(max_tokens=40), candidates=1)
    assert full.text and full.text.endswith("The seeded loaf sells out first.")


def test_a_thread_is_named_after_what_its_first_message_is_about() -> None:
    from townsquare.worker.runtime.turns import thread_name

    assert thread_name("Tobias, what do you think of the best museum?") == "Best museum"
    assert thread_name("Maren, do you know what the local history of Ashford Green is?") == "Local history"
    assert thread_name("ok") == "A longer talk"


def test_a_known_answer_is_framed_as_advice_only_when_advice_was_asked() -> None:
    bells = plan_reply(TOBIAS, Heard("Sam Carter", "why is the church bell cracked?", human=True, to_me=True), seed=1,
                       known="The church bells were recast in 1921 after the tenor bell cracked in a frost.")
    assert not any(c in line for line in bells.fallbacks() for c in ("Worked for me", "what I'd do", "how it goes"))
    slugs = plan_reply(INES, Heard("Sam Carter", "any tips for slugs on my lettuces?", human=True, to_me=True), seed=1,
                       known=INES.knows[0])
    assert any("Worked for me" in line for line in slugs.fallbacks())


async def test_what_a_persona_knows_about_what_was_said_is_shared_instead_of_small_talk() -> None:
    said = "The slugs have been terrible on the allotments this year."
    shares = [p for p in (plan_reply(INES, Heard("Tobias Reed", said), seed=s, known=INES.knows[0]) for s in range(60))
              if p.act == "share"]
    assert shares and all(p.content == INES.knows[0] and p.known and not p.must_post for p in shares)
    plan = shares[0]
    assert "Beer traps" in plan.narration() and "Beer traps" not in plan.narration(with_known=False)
    assert all(line.endswith("keep slugs off lettuces.") for line in plan.fallbacks())
    scene = Scene("Ashford Green", "garden", None, (Line("Tobias Reed", said),))
    gate = ctx(own_name=INES.name, bio=INES.bio, prompt_texts=(INES.bio,), answering=said, members=["Tobias Reed"])
    babble = await speak(ScriptedChain("True, I will buy her a little thing for the market."), agent_id=1, guild_id=1,
                         persona=INES, plan=plan, scene=scene, gate=gate, options=GenOptions(max_tokens=40), relevance=overlap)
    assert babble.source == "plan" and "beer traps" in (babble.text or "").lower()


async def test_a_line_between_agents_shaped_by_a_memory_says_something_of_it_or_nothing() -> None:
    heard = Heard("Tobias Reed", "The mill by the river looks sad these days.")
    memory = "Tobias said in #history: the old mill was built in 1794 by the Ashford family"
    plan = next(p for p in (plan_reply(MAREN, heard, seed=s, memories=[memory], model_talk=True) for s in range(50))
                if p.act in ("agree", "disagree", "share") and p.recalled)
    scene = Scene("Ashford Green", "history", None, (Line("Tobias Reed", heard.text),))

    async def say(text: str):  # type: ignore[no-untyped-def]
        return await speak(ScriptedChain(text), agent_id=1, guild_id=1, persona=MAREN, plan=plan, scene=scene,
                           gate=ctx(answering=heard.text, members=["Tobias Reed"]), options=GenOptions(max_tokens=40),
                           candidates=1, relevance=overlap)

    stray = await say("Well, it's a big mill, twenty stories high by the river.")
    assert stray.text is None and "strayed" in stray.rejections
    carried = await say("It was the Ashford family who built that mill by the river, back in 1794.")
    assert carried.text and "Ashford" in carried.text


async def test_what_is_on_an_agents_mind_is_passed_on_or_nothing_is_said() -> None:
    plan = plan_opener(MAREN, "the gallery on Quay Road reopens on Friday with a show of harbour photographs", seed=2, news=True)
    scene = Scene("Ashford Green", "general", None, ())

    async def say(text: str):  # type: ignore[no-untyped-def]
        return await speak(ScriptedChain(text), agent_id=1, guild_id=1, persona=MAREN, plan=plan, scene=scene,
                           gate=ctx(answering=None, subject=plan.content), options=GenOptions(max_tokens=40), candidates=1)

    stray = await say("Actually, Sam will make the sourdough this week, he says.")
    assert stray.text is None and "strayed" in stray.rejections
    told = await say("By the way, the Quay Road gallery opens again Friday, with photos of the harbour on show.")
    assert told.text and "gallery" in told.text


def test_a_societys_topic_that_is_a_sentence_already_is_said_as_it_is() -> None:
    story = plan_opener(MAREN, "Tell me a story your grandparents told about this place.", seed=2)
    assert story.composed and all(line.lower().endswith("tell me a story your grandparents told about this place.")
                                  for line in story.fallbacks())
    assert plan_opener(MAREN, "Should the pub quiz move to Thursdays?", seed=2).composed
    assert not plan_opener(MAREN, "the first thing worth planting this spring", seed=2).composed  # a subject: the model words it


PRIYA = Persona(name="Priya Nair", bio="Runs the village post office; keeps bees at the bottom of her garden.",
                interests=["bees", "honey", "the post office"],
                knows=["The post office opens at nine and shuts at half past five, and at noon on Saturdays."],
                views=["The old mill should become a museum with a tea room; the village keeps its history in shoeboxes.",
                       "Slugs, no contest. Snails at least have the decency to carry their houses about."])


def test_a_question_of_opinion_is_answered_from_the_speakers_views_and_a_fact_from_what_it_knows() -> None:
    mill = "The old mill by the river is for sale. What should become of it?"
    assert known_or_view(PRIYA, mill, overlap, 0.1) == (PRIYA.views[0], True)
    # a question of fact is answered from what the persona knows, never from a view that resembles it
    hours = "When does the post office open, and does the mill have a museum?"
    assert known_or_view(PRIYA, hours, overlap, 0.05) == (PRIYA.knows[0], False)
    assert known_or_view(PRIYA, "who won the pub quiz?", overlap, 0.1) == (None, False)
    # another agent's question with the view: said as it is, no model, no "hope that helps"
    plan = plan_reply(PRIYA, Heard("Tobias Reed", mill), seed=3, known=PRIYA.views[0], opinion=True)
    assert plan.act == "answer" and plan.composed and plan.opinion
    lines = plan.fallbacks()
    assert all("museum with a tea room" in line for line in lines)
    assert not any(c in line for line in lines for c in ("Hope that helps", "That's what I know", "Worth knowing", "Good question"))
    assert PRIYA.views[0] in lines  # the view alone is one of the ways it is said
    # a view answers a question, not a statement, nor a question that is not the line's last word
    assert known_or_view(PRIYA, "The old mill by the river is for sale, they say.", overlap, 0.1) == (None, False)
    assert known_or_view(PRIYA, "Priya, the old mill for sale? Saw it, yes.", overlap, 0.1) == (None, False)
    # to a question of taste the view comes before a fact on its subject
    PRIYA_TOO = PRIYA.model_copy(update={"knows": [*PRIYA.knows, "The old mill by the river was built in 1794."]})
    assert known_or_view(PRIYA_TOO, "What should become of the old mill by the river?", overlap, 0.1) == (PRIYA.views[0], True)
    assert known_or_view(PRIYA_TOO, "When was the old mill by the river built?", overlap, 0.1)[1] is False
    # told a piece of news, the view that bears on it (the worker's news aside), a statement or not
    assert view_on(PRIYA, "The owners of the old mill by the river have put it up for sale.", overlap, 0.04) == PRIYA.views[0]
    assert view_on(INES, "The old mill is for sale.", overlap, 0.1) is None  # no views: nothing
    assert asks_opinion("Jazz club or techno club tonight?") and asks_opinion("Should the pub quiz move to Thursdays?")
    assert not asks_opinion("What should I do about slugs?") and not asks_opinion("When does the bakery open?")
    # company, not facts: "You've got me there." to these read as a non sequitur
    assert not asks_for_facts("Hey all, what is everyone reading right now?")
    assert not asks_for_facts("Chess puzzle of the day. Anyone up for it?") and asks_for_facts("Anyone know when the bus comes?")
    # between agents, no view: an emoji, not "No idea, Oskar. Anyone?" (nor to another's "no idea")
    for asked in ("Jazz club or techno club tonight?", "No idea when the bus runs. Anyone here know?"):
        assert {plan_reply(PRIYA, Heard("Oskar Lind", asked, to_me=True), seed=s).act for s in range(20)} == {"react"}, asked
    # a person asking gets the view too, framed as an opinion
    asked = plan_reply(PRIYA, Heard("Sam Carter", f"@Priya Nair {mill}", human=True, to_me=True), seed=5,
                       known=PRIYA.views[0], opinion=True)
    assert asked.must_post and asked.composed and all("museum" in line for line in asked.fallbacks())
    # a question it puts to a quiet channel carries its own answer, after the question
    opener = plan_opener(PRIYA, "Slugs or snails, which is the bigger menace in your garden?", seed=2, view=PRIYA.views[1])
    # said as its own ("Mountains or seaside? Mountains." read as a question answered by its asker)
    assert opener.composed and all(line.endswith("carry their houses about.") and
                                   re.search(r"garden\? (?:Me\?|I'll start\.|My answer\?) Slugs, no contest\.", line)
                                   for line in opener.fallbacks())
    # not after a statement, news or the world's subjects
    assert plan_opener(PRIYA, "The old mill is for sale.", seed=2, view=PRIYA.views[0]).known is None
    assert plan_opener(PRIYA, "is anyone going to the fair?", seed=2, world="upcoming", view=PRIYA.views[0]).known is None


def test_a_revival_answers_the_question_the_channel_went_quiet_on_when_the_agent_has_something_to_say() -> None:
    from types import SimpleNamespace

    from townsquare.agents.mind.policy import AgentInfo
    from townsquare.worker.runtime.worker import AgentWorker

    worker = SimpleNamespace(text_relevance=overlap, settings=SimpleNamespace(known_relevance_floor=0.1))
    priya = AgentInfo(id=7, guild_id=1, persona=PRIYA)

    def msg(author: int, content: str, bot: bool = True) -> dict[str, object]:
        return {"id": str(100 + author), "author": {"id": str(author), "username": "x", "bot": bot}, "content": content}

    asked = msg(3, "The old mill by the river is for sale. What should become of it?")
    assert AgentWorker._open_question(worker, priya, [msg(2, "Morning all."), asked]) is asked  # type: ignore[arg-type]
    # answered already (the question is not the last word), her own question, no question, nothing of hers to say
    assert AgentWorker._open_question(worker, priya, [asked, msg(2, "A hotel, surely.")]) is None  # type: ignore[arg-type]
    assert AgentWorker._open_question(worker, priya, [msg(7, asked["content"])]) is None  # type: ignore[arg-type]
    assert AgentWorker._open_question(worker, priya, [msg(3, "The old mill by the river is for sale.")]) is None  # type: ignore[arg-type]
    assert AgentWorker._open_question(worker, priya, [msg(3, "Who won the pub quiz last night?")]) is None  # type: ignore[arg-type]
    assert AgentWorker._open_question(worker, priya, []) is None  # type: ignore[arg-type]
    # a person's question the world answers (the places, the calendar): as a person's mention is answered
    from townsquare.agents.world.facts import Fact

    quiz = "The pub quiz at the Plough, on Wednesdays, 20:00 to 22:30."
    worker.world = SimpleNamespace(local=lambda agent: (Fact(quiz, quiz, True),))
    person = msg(9, "When is the pub quiz at the Plough?", bot=False)
    assert AgentWorker._open_question(worker, priya, [person]) is person  # type: ignore[arg-type]
    assert AgentWorker._open_question(worker, priya, [msg(9, "When is the pub quiz at the Plough?")]) is None  # type: ignore[arg-type]


def test_an_honest_answer_names_what_was_asked_not_where_the_asker_is_nor_a_problem_nobody_has() -> None:
    swim = plan_reply(PRIYA, Heard("Sam Carter", "@Priya Nair where can I swim in the city?", human=True, to_me=True), seed=4)
    # ("The city, no idea." read as a template filled in wrong; the question said back whole still says it)
    assert swim.honest and not any("the city" in line.lower() for line in swim.fallbacks() if not line.startswith("Where can you swim"))
    read = plan_reply(PRIYA, Heard("Sam Carter", "@Priya Nair what should I read after The Hobbit?", human=True, to_me=True), seed=4)
    assert read.honest and not any("dealt with it" in line or "problem" in line for line in read.fallbacks())
    slugs = plan_reply(PRIYA, Heard("Sam Carter", "@Priya Nair slugs ate my lettuces, what should I do?", human=True, to_me=True), seed=4)
    assert any("Anyone dealt with it?" in line for line in slugs.fallbacks())


def test_a_statement_gets_what_the_persona_knows_only_when_it_is_about_it_and_no_word_is_said_twice() -> None:
    from townsquare.agents.turn.knowing import STATEMENT_MARGIN

    fixed = lambda a, b: 0.55  # noqa: E731  # between the floor and the floor + margin
    assert known_or_view(PRIYA, "When does the post office open?", fixed, 0.5)[0] is not None  # asked: it answers
    assert known_or_view(PRIYA, "The harbour run starts at the fish market this week.", fixed, 0.5) == (None, False)
    assert known_or_view(PRIYA, "The harbour run starts at the fish market.", lambda a, b: 0.5 + STATEMENT_MARGIN, 0.5)[0] is not None
    for seed in range(30):
        plan = plan_reply(PRIYA, Heard("Sam Carter", "@Priya Nair who lived in the big house?", human=True, to_me=True), seed=seed)
        for line in plan.fallbacks():
            low = line.lower()
            assert low.count("honestly") <= 1 and low.count("sorry") <= 1, line


def test_a_persons_practical_question_is_not_answered_with_a_view_nor_does_an_asker_answer_its_own_call_for_help() -> None:
    snails = "Slugs or snails, which is the bigger menace in your garden?"
    slugs = lambda a, b: 0.6 if "slug" in a.lower() and "slug" in b.lower() else 0.0  # noqa: E731
    asked = "@Priya Nair slugs ate my lettuces, what should I do?"
    assert known_or_view(PRIYA, asked, slugs, 0.5, person=True) == (None, False)
    assert known_or_view(PRIYA, snails, slugs, 0.5, person=True)[1] is True  # a question of opinion: her view
    assert known_or_view(PRIYA, "Slugs ate my lettuces, what should I do?", slugs, 0.5)[1] is True  # another agent's
    # the asker's own view comes after a question of opinion, not after a call for help
    assert plan_opener(PRIYA, snails, seed=2, view=PRIYA.views[1]).known is not None
    assert plan_opener(PRIYA, "Does anyone have photographs of slugs in the square?", seed=2, view=PRIYA.views[1]).known is None


def test_a_statement_about_the_speaker_is_said_in_its_own_words_so_the_gate_lets_it_through() -> None:
    maren = PRIYA.model_copy(update={"name": "Maren Holt", "knows": [], "views": []})
    known = "Saturday orders are collected from Maren's stall at the market."
    plan = plan_reply(maren, Heard("Sam Carter", "@Maren Holt how early should I come to get bread?", human=True, to_me=True),
                      seed=3, known=known)
    lines = plan.fallbacks()
    assert lines and all("Maren" not in line and "my stall" in line for line in lines)
    gate = GateContext(own_name="Maren Holt", members=["Sam Carter", "Priya Nair"], bio=maren.bio,
                       answering="how early should I come to get bread?")
    assert judge(lines[0], gate).ok and not judge(known, gate).ok  # the statement as written names her: refused


def test_in_own_words_turns_the_speakers_name_into_the_first_person() -> None:
    from townsquare.agents.turn.plan import in_own_words

    assert in_own_words("On Saturday mornings Lucia shops at the harbour market.", "Lucia Ferraro") == \
        "On Saturday mornings I shop at the harbour market."
    assert in_own_words("Pablo paints the wall; Pablo has helpers; ask Pablo.", "Pablo Reyes") == "I paint the wall; I have helpers; ask me."
    assert in_own_words("Tobias's walk starts at two.", "Tobias Reed") == "my walk starts at two."
    assert in_own_words("Tobias goes to the archive.", "Tobias Reed") == "I go to the archive."


def test_a_person_who_asked_gets_an_honest_line_when_what_the_speaker_knows_cannot_be_said() -> None:
    known = "As an AI language model, I cannot say where Saturday orders are collected."  # assistant-speak: refused
    plan = plan_reply(PRIYA, Heard("Sam Carter", "@Priya Nair where are Saturday orders collected?", human=True, to_me=True),
                      seed=3, known=known)
    gate = GateContext(own_name="Priya Nair", members=["Sam Carter"], bio=PRIYA.bio, answering=plan.heard.text)  # type: ignore[union-attr]
    assert plan.must_post and not any(judge(line, gate).ok for line in plan.fallbacks())
    spoken = asyncio.run(speak(ScriptedChain("x"), agent_id=None, guild_id=None, persona=PRIYA, plan=plan,  # type: ignore[arg-type]
                               scene=Scene("Ashford Green", "market", None, ()), gate=gate, options=GenOptions(max_tokens=40)))
    assert spoken.text and judge(spoken.text, gate).ok and "AI" not in spoken.text
