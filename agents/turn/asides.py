"""Lines made from what an agent's own day says about a line it hears (agents/world/replies.py):
"Just baking the day's bread at the bakery. You?", "Can't, I'll be working at the pharmacy
counter then.", "Yes, I saw that. Sad news." They need no model: the world holds their content,
so they are true to it, and every fixed part is short, so two agents' lines rarely read alike.
"""

from __future__ import annotations

import re

from ..mind.sentiment import sentiment
from ..world.replies import Aside
from ..world.life import being, first_person, with_place


def _reaction(title: str, seen: bool) -> list[str]:
    mood = sentiment(title)
    # every fixed part at most four words: a word 5-gram shared by two agents' lines then needs the
    # same draw in two slots (the quality benchmark counts them across a whole run)
    if mood > 0.2:
        return ["Good news.", "Lovely to hear.", "About time, too.", "That's cheering.", "Nice one.", "Glad to hear it.", ""]
    if mood < -0.2:
        return ["What a shame.", "Sad news.", "Not good at all.", "That's a worry.", "Oh dear.", "Poor things.", ""]
    # mostly nothing after it: "Makes you think." after the library's hours, "Time will tell." after a record
    # fair read as stock tags
    told = [] if seen else ["Thanks for that.", "Good to know."]
    return ["", "", "", "Interesting.", *told]


_FELT = frozenset({*_reaction("good", True), *_reaction("bad", True)}) - frozenset(_reaction("", True))  # not "Interesting."


def _after_name(text: str) -> str:
    """A line's first word after a vocative ("Maren, count me in."), "I" kept a capital."""
    return text if re.match(r"I\b", text) else text[:1].lower() + text[1:]


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def aside_lines(aside: Aside, who: str | None, asked: bool, known: str | None = None, own: str = "") -> list[str]:
    """Every line for `aside` (the caller shuffles them and takes the first the gate passes).
    `who`: the first name of whoever spoke; `asked`: they asked (a line may ask back); `known`:
    a sentence the speaker knows that bears on it (said after news instead of a reaction);
    `own`: the speaker's first name (an event named after it is its own)."""
    name = [f"{who}, "] if who else []
    instead = first_person(being(aside.instead), own) if aside.instead else None
    title = re.sub(rf"\b{re.escape(own)}'s\b", "my", aside.what) if own else aside.what  # "Tobias's history walk" said by Tobias
    if aside.kind == "doing":
        doing = first_person(with_place(aside.what, aside.place), own)
        is_ing = being(doing) == doing
        bodies = ([f"Just {doing}.", f"{_capital(doing)} right now.", f"Busy {doing}.", f"Me? {_capital(doing)}."] if is_ing
                  else [f"I'm {being(doing)}.", f"Me? {_capital(being(doing))}."])
        closers = ["You?", "How about you?", "", "Quiet day otherwise."] if asked else ["", "Quiet day otherwise."]
        return [f"{b} {c}".strip() for b in bodies for c in closers]
    if aside.kind == "going":
        if title != aside.what:  # its own event
            return [f"{b} {c}".strip() for b in ["Of course, I'm leading it!", "I'll be there, of course.", "Of course, it's mine!"]
                    for c in ["Come along!", "All welcome.", ""]]
        bodies = [f"Yes, I'll be at {title}.", f"I'm going to {title}!", f"Wouldn't miss {title}.", f"Count me in for {title}.",
                  f"{_capital(title)}? I'm in!", f"{_capital(title)}? Planning to, yes.", "Count me in."]
        extra = [f"I'll be {instead}." for _ in [0] if instead and not instead.startswith("at ")] + [""]
        closers = ["See you there!", "Should be fun.", "", "Save me a seat.", "Can't wait.", "Looking forward to it."]
        return [" ".join(filter(None, [n + _after_name(b) if n else b, e, c]))
                for n in ["", *name] for b in bodies for e in extra for c in closers]
    if aside.kind == "not_going":
        if instead:
            bodies = [f"Can't make {title}, I'll be {instead} then.", f"Not this time, I'll be {instead}.",
                      f"Wish I could, but I'll be {instead}.", f"I'll miss {title}, I'll be {instead}."]
        else:
            bodies = [f"Not {title} this time, sadly.", "I'll give it a miss.", f"Can't make {title}, I'm afraid.",
                      f"I'll miss {title} this time."]
        closers = ["Have fun!", "Enjoy it!", ""]
        return [f"{b} {c}".strip() for b in bodies for c in closers]
    if aside.kind == "there":
        bodies = ["I'm here too!", "Here as well.", "Yes, I'm here.", f"Yes, I'm at {title} too.", "Me too!", "Same here!"]
        extra = [f"{_capital(instead)} right now." for _ in [0] if instead and not instead.startswith("at ")] + [""]
        closers = ["Come say hello.", "Lovely day for it.", "", "Find me!", "Good turnout."]
        return [" ".join(filter(None, [b, e, c])) for b in bodies for e in extra for c in closers]
    if aside.kind == "not_there":
        bodies = [f"Not today, I'm {instead}." if instead else "Not today, sadly.",
                  f"Can't, I'm {instead} right now." if instead else "Can't get away, I'm afraid.",
                  f"Wish I were. I'm {instead}." if instead else "Wish I were there."]
        closers = ["Have fun!", "Enjoy it!", ""]
        return [f"{b} {c}".strip() for b in bodies for c in closers]
    if aside.kind == "whats_on":  # "anything on this weekend?": the next thing on the calendar
        what = aside.what
        return [f"{b}{what}.{c}" for b in ("There's ", "Well, there's ", "I know of ", "There's always ")
                for c in ("", " Worth a look.", " Could be fun.", " Fancy it?")]
    if aside.kind == "unknown_event":  # "the meeting": which one? nothing on the calendar says there is one
        noun = aside.what.split()[-1]
        named = _capital(re.sub(r"^(?:a|an)\b", "the", aside.what))
        bodies = [f"Which {noun} is that{', ' + who if who else ''}?", f"{named}? Which one?", f"What {noun} is that?",
                  f"{named}? Not that I know of."]
        closers = ["Haven't heard of one.", "First I've heard of it.", "Nothing in my diary.", "Tell me more.", ""]
        return [f"{b} {c}".strip() for b in bodies for c in closers if not (b.endswith("of.") and c.startswith("First"))]
    if aside.kind == "news_own":  # the news is about the speaker itself
        mood = sentiment(aside.what)
        felt = (["Still pinching myself.", "Thrilled, honestly.", "Can't quite believe it."] if mood > 0.2 else
                ["Don't remind me.", "Not my finest week.", "Rough one, that."] if mood < -0.2 else ["Word gets around.", ""])
        head = _capital(aside.what.rstrip(".!?"))
        bodies = [f"{head}? That's me, yes.", f"{head}? That's mine!", "Yes, that one's about me.", f"That's me they mean, {who}." if who
                  else "That's me they mean."]
        return [f"{b} {f}".strip() for b in bodies for f in felt]
    seen = aside.kind == "news_seen"
    plain = (["Yes, I saw that.", "Saw that earlier.", "I read that too.", "Caught that this morning.", "It's all over town.",
              "I know, I saw.", "Yes, I'd heard.", "So I read.", "Saw it, yes.", "Yep, heard that."]
             if seen else ["Hadn't heard that!", "News to me.", "Really? I missed that.", "First I've heard.",
                           "Oh, hadn't seen that.", "Is that so?", "Well, I never.", "You don't say.", "Missed that one.", "Really?"])
    if len(aside.what.split()) <= 8:  # a headline, said back as people do ("Frost tonight? News to me."): what was seen, named
        headline = _capital(aside.what.rstrip(".!?"))
        # in two lines of three, not all: the same "X? I read that too." from every agent read as a
        # template; none, and the line says nothing of what it answers
        # the headline said back first (two lines of three) or after ("Yes, I saw that. Frost tonight, eh?"):
        # a bare "Yes, I saw that." says nothing of what it answers
        plain = [f"{headline}? {b}" for b in plain if not b.endswith("?")] * 2 + [f"{b} {headline}, eh?" for b in plain]
    if known:
        return [f"{b} {known}" for b in plain]
    if aside.tie:  # what its own days have to do with it, where "Interesting." would be anyone's
        # ("That's my patch: ..." read as a stock phrase to three raters of four)
        ties = ([f"{aside.tie}.", f"Same here: {_after_name(aside.tie)}."] if aside.tie.startswith("I'm there ")
                else [f"{aside.tie} myself.", f"{aside.tie}, so that one matters to me."])
        felt = [r for r in _reaction(aside.what, seen) if r in _FELT] + [""]
        return [" ".join(filter(None, [b, t, r])) for b in plain for t in ties for r in felt]
    return [f"{b} {r}".strip() for b in plain for r in _reaction(aside.what, seen)]
