"""What an agent's own day says about a line it hears, on the bundled village's world: asked about
an event, whether its routine takes it there; asked what everyone is doing, what it does; told
the news, whether it had seen it. The line is made from that, without the model; and another
agent's line it has nothing of its own to add to may get an emoji instead of words."""

from __future__ import annotations

import re

from townsquare.agents.brain.backends import GenOptions
from townsquare.agents.society.persona import Persona, load_society
from townsquare.agents.turn.gate import GateContext, judge
from townsquare.agents.turn.plan import Heard, plan_reach, plan_reply
from townsquare.agents.turn.realise import Line, Scene
from townsquare.agents.turn.speak import speak
from townsquare.agents.world.life import WorldTime, at_minutes, due_news
from townsquare.agents.world.replies import _tie, aside_for
from townsquare.agents.world.life import with_place

from .test_turn import ScriptedChain

VILLAGE = load_society("village")
WORLD = VILLAGE.world
assert WORLD is not None
FRIDAY_NINE = at_minutes(9 * 60, WORLD.first_day)  # day 0 is a Friday: the Saturday market is tomorrow


def agent(first: str) -> Persona:
    return next(a for a in VILLAGE.agents if a.name.split()[0] == first)


def aside(first: str, heard: str, t: WorldTime = FRIDAY_NINE):  # type: ignore[no-untyped-def]
    persona = agent(first)
    released = {n.id: n.at for n in due_news(WORLD, t)}  # type: ignore[arg-type]
    return aside_for(WORLD, persona.name, t, heard, released,  # type: ignore[arg-type]
                     lambda c: not persona.home_channels or c in persona.home_channels)


def lines_for(first: str, heard: str, author: str = "Priya Nair", t: WorldTime = FRIDAY_NINE) -> list[str]:
    found = aside(first, heard, t)
    assert found is not None, (first, heard)
    # (news with nothing of its own to add gets an emoji on most seeds: the first seed that gives a line)
    plan = next(p for seed in range(5, 60) if (p := plan_reply(agent(first), Heard(author, heard), seed=seed, aside=found)).act != "react")
    assert plan.composed and plan.aside == found
    return plan.fallbacks()


def test_asked_about_an_event_its_routine_says_whether_it_goes_and_what_keeps_it_away() -> None:
    market = "Anyone going to the Saturday market tomorrow?"
    assert aside("Maren", market).kind == "going"  # type: ignore[union-attr]  # her Saturday stall
    assert aside("Ines", market).kind == "going"  # type: ignore[union-attr]
    tobias = aside("Tobias", market)
    assert tobias is not None and tobias.kind == "not_going" and tobias.instead == "reading the paper over breakfast"
    assert any("I'll be selling bread at my market stall." in line for line in lines_for("Maren", market))
    away = lines_for("Tobias", market)
    assert all("reading the paper over breakfast" in line for line in away if "I'll be" in line)
    # the event on now: who is there says so
    saturday = at_minutes(24 * 60 + 10 * 60, WORLD.first_day)
    assert aside("Ines", "I'm at the Saturday market on the square. Anyone else here?", saturday).kind == "there"  # type: ignore[union-attr]
    assert aside("Tobias", "I'm at the Saturday market on the square. Anyone else here?", saturday).kind == "not_there"  # type: ignore[union-attr]


def test_asked_what_everyone_is_doing_it_says_what_it_does_in_the_first_person() -> None:
    line = "Busy sorting old parish records. What's everyone else up to?"
    found = aside("Ines", line)
    assert found is not None and found.kind == "doing" and "tomatoes" in found.what
    said = lines_for("Ines", line)
    assert all("my plots" in s and not re.search(r"\bher\b", s) for s in said), said[:3]
    assert aside("Maren", "The bakery smells lovely today.") is None  # nothing asked, nothing told


def test_told_the_news_it_says_whether_it_had_seen_it() -> None:
    later = at_minutes(2 * 24 * 60 + 12 * 60, WORLD.first_day)
    news = "Did you hear? The church bells will be silent next week while the cracked bell is inspected. Thoughts?"
    seen, unseen = aside("Tobias", news, later), aside("Ines", news, later)  # #history's follower and a gardener who is not
    assert seen is not None and seen.kind == "news_seen" and unseen is not None and unseen.kind == "news_unseen"
    assert aside("Maren", "The bells fall silent? News to me. Time will tell.", later) is None  # an echo is not the news told
    persona = agent("Tobias")  # who told the news itself does not say it saw it
    assert aside_for(WORLD, persona.name, later, news, {n.id: n.at for n in due_news(WORLD, later)},  # type: ignore[arg-type]
                     lambda c: True, own_recent=["Heard the news? The church bells will be silent next week."]) is None
    said = lines_for("Ines", news, t=later)
    echoed = [s for s in said if s.startswith("The bells fall silent? ")]  # the headline said back, in most lines, not all
    assert 0.5 < len(echoed) / len(said) < 0.8, said[:6]
    unseen_words = ("Hadn't heard", "News to me", "Really?", "First I've heard", "Oh, hadn't", "Is that so?", "Well, I never",
                    "You don't say", "Missed that")
    assert all(any(b in s for b in unseen_words) for s in said)
    assert not any("I saw" in s or "I read" in s for s in said)


def test_a_place_is_named_once() -> None:
    assert with_place("watering the rooftop garden", "the rooftop garden on Block C") == "watering the rooftop garden"
    assert with_place("serving at the bakery counter", "the bakery") == "serving at the bakery counter"
    assert with_place("sorting old parish records", "the archive") == "sorting old parish records at the archive"
    assert with_place("driving the night taxi", "the city streets") == "driving the night taxi on the city streets"


async def test_an_aside_is_posted_without_the_model_and_passes_the_gate() -> None:
    market = "Anyone going to the Saturday market tomorrow?"
    plan = plan_reply(agent("Oskar"), Heard("Priya Nair", market), seed=2, aside=aside("Oskar", market))
    chain = ScriptedChain("I love the market, my wife sells cakes there.")
    gate = GateContext(own_name="Oskar Lind", members=["Priya Nair"], answering=market)
    spoken = await speak(chain, agent_id=1, guild_id=1, persona=agent("Oskar"), plan=plan,  # type: ignore[arg-type]
                         scene=Scene("Ashford Green", "market", None, (Line("Priya Nair", market),)), gate=gate,
                         options=GenOptions(max_tokens=40))
    assert chain.calls == 0 and spoken.source == "plan" and spoken.text and "wife" not in spoken.text
    assert all(judge(line, gate).ok for line in plan.fallbacks()[:10])


async def test_a_line_with_nothing_to_add_may_get_an_emoji_and_a_person_always_gets_words() -> None:
    said = "The weather has been strange this week."
    acts = [plan_reply(agent("Maren"), Heard("Tobias Reed", said), seed=s) for s in range(60)]
    reacts = [p for p in acts if p.act == "react"]
    assert len(reacts) == 60 and all(p.content in "👍🙂❤️😄🎉👏😢😮🤔🙄" for p in reacts)
    assert len({p.content for p in reacts}) > 1
    # a question another agent puts to it, with nothing known to answer it: an honest line, no model
    asked = plan_reply(agent("Maren"), Heard("Tobias Reed", "Maren, do you know a good farmer for eggs?", to_me=True), seed=1)
    assert asked.act == "answer" and asked.honest and asked.composed
    spoken = await speak(ScriptedChain("never asked"), agent_id=1, guild_id=1, persona=agent("Maren"), plan=reacts[0],
                         scene=Scene("Ashford Green", "general", None, ()), gate=GateContext(own_name="Maren Holt"),
                         options=GenOptions(max_tokens=40))
    assert spoken.text is None and spoken.source == "react"
    assert not any(plan_reply(agent("Maren"), Heard("Sam Carter", said, human=True), seed=s).act == "react" for s in range(60))
    # something of its own to add (what it knows about it): words, not an emoji
    known = agent("Maren").knows[0]
    assert not any(plan_reply(agent("Maren"), Heard("Tobias Reed", said), seed=s, known=known).act == "react" for s in range(60))


def test_a_question_put_to_someone_else_is_not_answered_by_whoever_read_it() -> None:
    asked = Heard("Dev Malhotra", "Samir, have you been to the new club yet?")
    assert all(plan_reply(agent("Maren"), asked, seed=s).act == "react" for s in range(20))
    mine = Heard("Dev Malhotra", "Maren, have you been to the new club yet?", to_me=True)
    club = ["Dev Malhotra said in #general: the new club on Dock Street opened last week"]  # something of her own to go on
    assert not any(plan_reply(agent("Maren"), mine, seed=s, memories=club, model_talk=True).act == "react" for s in range(20))
    # an interjection is not a name: a question to everyone stays open
    late = ["Tobias Reed said in #general: the bakery stays open late on Fridays now"]  # something of her own to add
    assert not all(plan_reply(agent("Maren"), Heard("Dev Malhotra", "Honestly, is it that late already?"), seed=s, memories=late,
                              model_talk=True).act
                   == "react" for s in range(20))


async def test_a_private_note_to_a_friend_is_made_from_the_plan() -> None:
    plan = plan_reach(agent("Priya"), "Ines Alvarez", "gardening", seed=3)
    chain = ScriptedChain("Ines, how do you work?")
    spoken = await speak(chain, agent_id=1, guild_id=1, persona=agent("Priya"), plan=plan,  # type: ignore[arg-type]
                         scene=Scene("Ashford Green", "dm", None, ()), gate=GateContext(own_name="Priya Nair", members=["Ines Alvarez"]),
                         options=GenOptions(max_tokens=40))
    assert chain.calls == 0 and spoken.text and "Ines" in spoken.text and "gardening" in spoken.text
    assert all("how are" in line or "How have" in line or "all well" in line
               for line in plan_reach(agent("Priya"), "Ines Alvarez", None, seed=3).fallbacks())


def test_a_person_thanked_asked_for_a_minute_or_greeted_gets_a_fitting_line_without_the_model() -> None:
    maren = agent("Maren")

    def plan(text: str):  # type: ignore[no-untyped-def]
        return plan_reply(maren, Heard("Sam Carter", text, human=True, to_me=True), seed=4,
                          aside=aside("Maren", text))

    thanked = plan("thanks for the tip yesterday, it really helped!")
    assert thanked.act == "thank" and thanked.composed and all("Sam" in line for line in thanked.fallbacks())
    assert not any(line.lower().startswith(("thank you", "thanks")) for line in thanked.fallbacks())  # welcomed, not thanked back
    assert plan("thanks! and where is the post office?").act == "answer"  # a question after the thanks is what is answered
    minute = plan("hi, do you have a minute? I wanted to ask you something.")
    assert minute.act == "listen" and minute.composed
    greeted = plan("good morning! how are you today?")
    assert greeted.act == "greet" and greeted.composed
    assert all("serving at the bakery counter" in line.lower() for line in greeted.fallbacks())


def test_a_place_a_doing_already_names_is_not_named_again() -> None:
    assert with_place("chasing a story for the Harbour Gazette", "the Harbour Gazette newsroom") == "chasing a story for the Harbour Gazette"
    assert with_place("delivering parcels across the city by bike", "the city streets") == "delivering parcels across the city by bike"


def test_a_question_another_agent_could_not_answer_is_answered_to_the_person_by_one_who_knows() -> None:
    said = Heard("Maren Holt", "Why is the church bell cracked? Hmm, no idea, Sam. Sorry!")
    tobias = agent("Tobias")
    bell = next(k for k in tobias.knows if "bell" in k)
    plan = plan_reply(tobias, said, seed=1, known=bell)
    assert plan.act == "answer" and plan.to_first == "Sam" and plan.fallbacks()[0].count(bell.rstrip(".")) == 1
    assert not any("Maren" in line for line in plan.fallbacks())
    assert plan_reply(agent("Priya"), said, seed=1).act == "react"  # nothing of her own to add


def test_news_told_by_its_headline_is_matched_to_its_own_item() -> None:
    later = at_minutes(3 * 24 * 60 + 12 * 60, WORLD.first_day)
    told = aside("Ines", "Did you hear? A draw on the green. Not sure what to think.", later)
    assert told is not None and told.what == "A draw on the green"


def test_asked_back_after_someone_said_what_they_do_it_says_what_it_does() -> None:
    found = aside("Ines", "Busy baking the day's bread at the bakery. You?")
    assert found is not None and found.kind == "doing"
    assert aside("Ines", "Did you?") is None  # a bare "did you?" asks nothing about her day


def test_asked_whether_it_is_coming_to_an_event_it_answers_from_its_week_or_asks_which() -> None:
    # named in part ("the market" for "the Saturday market", "the meeting" for the council's), days ahead (the pub quiz)
    assert aside("Ines", "are you going to the market tomorrow?").kind == "going"  # type: ignore[union-attr]
    quiz = aside("Oskar", "@Oskar Lind are you coming to the pub quiz?")
    assert quiz is not None and quiz.kind in ("going", "not_going") and quiz.what == "the pub quiz"
    meeting = aside("Ines", "are you coming to the meeting on Thursday?")
    assert meeting is not None and "council meeting" in meeting.what
    # nothing like it on the calendar: which one? (the model said "Yes, I am. Greetings, Sam.")
    concert = aside("Priya", "will you be going to a concert tonight?")
    assert concert is not None and concert.kind == "unknown_event"
    said = lines_for("Priya", "will you be going to a concert tonight?")
    assert said and all("concert" in s.lower() and "?" in s for s in said) and not any("I'll be there" in s for s in said)
    plan = plan_reply(agent("Priya"), Heard("Sam Carter", "will you be going to a concert tonight?", human=True, to_me=True), seed=1,
                      aside=concert)
    assert plan.composed and "concert" in plan.fallbacks()[0].lower()


def test_told_the_news_it_does_not_say_the_news_back_as_what_it_knows() -> None:
    later = at_minutes(2 * 24 * 60 + 12 * 60, WORLD.first_day)
    news = "Did you hear? The church bells will be silent next week while the cracked bell is inspected."
    found = aside("Tobias", news, later)
    same = "The church bells will be silent next week while the cracked bell is inspected by the diocese."
    assert plan_reply(agent("Tobias"), Heard("Maren Holt", news), seed=1, aside=found, known=same).known is None
    more = "The tenor bell was recast in 1921 after it cracked in a hard frost."
    assert plan_reply(agent("Tobias"), Heard("Maren Holt", news), seed=1, aside=found, known=more).known == more


def test_asked_whats_on_the_calendar_answers_not_no_idea() -> None:
    found = aside("Oskar", "Is there anything on this weekend?")
    assert found is not None and found.kind == "whats_on" and "Saturday market" in found.what
    lines = lines_for("Oskar", "Is there anything on this weekend?", author="Sam Carter")
    assert lines and all(found.what in line and "idea" not in line for line in lines)
    assert aside("Oskar", "What is going on with the bus?") is None  # not a question about what is on


def test_told_news_about_a_place_of_its_days_it_says_so_and_with_nothing_of_its_own_often_only_reacts() -> None:
    later = at_minutes(24 * 60 + 20 * 60, WORLD.first_day)  # the frost, the bells and the cut cable are out
    frost = "Frost is forecast for Friday night. Cover tender seedlings on the allotments before dusk."
    ines = aside("Ines", frost, later)
    assert ines is not None and ines.tie == "I'm at the allotments most days"
    said = lines_for("Ines", frost, t=later)
    assert all("I'm at the allotments most days" in s for s in said)
    assert not any(r in s for s in said for r in ("Interesting.", "Time will tell.", "Makes you think.", "We'll see."))
    bells = "The church bells will be silent next week while the cracked tenor bell is inspected."
    assert aside("Tobias", bells, later).tie == "I'm at St Aldric's church on Thursdays"  # type: ignore[union-attr]
    assert aside("Maren", bells, later).tie is None  # type: ignore[union-attr]  # nothing of her days is there
    city = load_society("city")
    assert city.world is not None
    cable = "A cut cable left Tech Row without fibre internet this morning."
    tied = {a.name.split()[0] for a in city.agents
            if (found := aside_for(city.world, a.name, later, cable, {n.id: n.at for n in due_news(city.world, later)},
                                   lambda c: True)) is not None and found.tie}
    assert "Amara" in tied and "Theo" not in tied
    # "harbour" names six places of the city: the harbour market's news is not tied to the harbour gallery
    assert _tie(city.world, "Chloe Dubois", "Boats crowd the harbour this morning.") is None  # she is at the Harbour gallery
    # news it has nothing of its own to add to: an emoji most of the time (plan.NEWS_QUIET), a line the rest
    acts = [plan_reply(agent("Maren"), Heard("Priya Nair", frost), seed=s, aside=aside("Maren", frost, later)).act for s in range(40)]
    assert 20 <= acts.count("react") <= 36 and "share" in acts
    assert {plan_reply(agent("Ines"), Heard("Priya Nair", frost), seed=s, aside=ines).act for s in range(20)} == {"share"}


def test_news_about_the_agent_itself_is_its_own_and_a_tie_said_before_is_not_said_again() -> None:
    city = load_society("city")
    assert city.world is not None
    later = at_minutes(24 * 60 + 20 * 60, city.world.first_day)
    released = {n.id: n.at for n in due_news(city.world, later)}
    mural = "Did you hear? The port authority approved Pablo Reyes's design for the harbour wall. Thoughts?"
    own = aside_for(city.world, "Pablo Reyes", later, mural, released, lambda c: True)
    assert own is not None and own.kind == "news_own"
    said = plan_reply(next(a for a in city.agents if a.name == "Pablo Reyes"), Heard("Zara Ahmed", mural), seed=3, aside=own).fallbacks()
    assert said and all("me" in s.lower() or "mine" in s for s in said) and not any("I'd heard" in s or "I saw" in s for s in said)
    assert aside_for(city.world, "Sofia Lindqvist", later, mural, released, lambda c: True).kind != "news_own"  # type: ignore[union-attr]
    # the market's news, told by one who said where she is on Saturdays: the next one there says "too"
    told = "Saw that earlier. New at Saturday's market, eh? That's my patch: I'm at the stalls on the square on Saturdays."
    later = at_minutes(12 * 60, WORLD.first_day)
    oskar = aside("Oskar", told, later)
    assert oskar is not None and oskar.tie == "I'm there on Saturdays too"
    assert not any("stalls on the square" in s for s in lines_for("Oskar", told, "Ines Alvarez", later))


def test_what_are_you_doing_put_to_someone_else_is_not_answered_by_whoever_read_it() -> None:
    to_sam = "Hm, Sam. Just selling honey at the market. You?"
    found = aside("Maren", to_sam)
    assert found is not None and found.kind == "doing"  # her day would answer "you?"
    plan = plan_reply(agent("Maren"), Heard("Priya Nair", to_sam), seed=5, aside=found)
    assert plan.aside is None and not any(line.startswith(("Just ", "Me? ")) for line in plan.fallbacks() if plan.composed)
    mine = plan_reply(agent("Maren"), Heard("Priya Nair", "Just selling honey at the market. You?"), seed=5,
                      aside=aside("Maren", "Just selling honey at the market. You?"))
    assert mine.aside is not None and mine.aside.kind == "doing"


def test_you_after_a_view_asks_for_a_view_not_what_one_is_doing() -> None:
    assert aside("Maren", "Vinyl, always! Callas on a crackly old record fills a room. You?") is None
    assert aside("Maren", "Me? Sorting seeds at the kitchen table. How about you?").kind == "doing"  # type: ignore[union-attr]
    assert aside("Maren", "Busy baking bread. You?").kind == "doing"  # type: ignore[union-attr]


def test_anyone_else_awake_is_answered_with_what_the_agent_is_doing() -> None:
    night = at_minutes(23 * 60, WORLD.first_day)
    found = aside("Oskar", "@Oskar Lind anyone else awake? can't sleep.", night)
    assert found is not None and found.kind == "doing"
    assert aside("Oskar", "Is anyone up for a walk by the river tomorrow?", night) is None or \
        aside("Oskar", "Is anyone up for a walk by the river tomorrow?", night).kind != "doing"  # type: ignore[union-attr]
