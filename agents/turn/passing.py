"""What is on an agent's mind, passed on without the model: the words of whoever said it,
quoted and named ("Ana was saying in #market: "The bakery closes on Monday.""), its own plan
("Planning to throw a party at the harbour cafe on Saturday. Who's in?"), an event it went to,
a fact it was told.

A small model handed a memory to pass on garbled it ("Actually, Sam will make the sourdough.
He can't find it, however."), and the turn then posted nothing, so news stopped travelling
from one conversation to the next. A quote is true to its source and carries the words the
next listener will remember; a quote of a quote keeps its first author (gossip that does not
drift).
"""

from __future__ import annotations

import re

from .text import lower_first, sentences, words

QUOTE_MAX = 150  # characters of what is quoted: a sentence or two, not a speech
MIN_WORDS = 5  # "Morning all!" is not worth passing on

# the frames agents/memory/remember.py writes
_SAID = re.compile(r"^(?P<who>[^:#]{1,60}?) (?:said|replied to me|spoke to me) in #(?P<channel>[\w-]+): (?P<said>.+)$", re.S)
# the four ways `pass_on_lines` quotes (a pass-on passed on keeps its first author)
_QUOTED = re.compile(r"(?:\b(?P<w1>[A-Z][\w'-]+) was saying in #(?P<c1>[\w-]+): |\bFrom #(?P<c2>[\w-]+), (?P<w2>[A-Z][\w'-]+) says: |"
                     r"\bDid you see what (?P<w3>[A-Z][\w'-]+) said in #(?P<c3>[\w-]+)\? |"
                     r"\bPassing this on from (?P<w4>[A-Z][\w'-]+) in #(?P<c4>[\w-]+): )\"(?P<said>[^\"]+)\"")
# an answer that says it does not know is not news to pass on
_NOT_KNOWN = re.compile(r"(?i)\b(?:no idea|not sure|don't know|couldn't say|can't say|wish i knew|beats me|no clue|haven't a clue|"
                        r"not my area|got me there|beyond me)\b")
def says_not_known(text: str) -> bool:
    """The line says its speaker does not know ("No idea, Sam. Anyone here know?")."""
    return _NOT_KNOWN.search(text) is not None


_PLAN = re.compile(r"^My plan: (?P<plan>.+)$", re.S)
_WENT = re.compile(r"^I was at (?P<event>.+)$", re.S)
_FIRST_PERSON_START = re.compile(r"^(?:I|I'm|I've|I'll|I'd|My|We|We're|Our)\b")
_BASE_VERB_START = re.compile(r"^(?:throw|host|hold|have|give|run|open|organise|organize|start|bring|make|cook|bake|build|"
                              r"plant|take|lead|play|show|sell|launch|set up|put on)\b", re.I)


# where the speaker was or what it was doing then ("Here at the Saturday market, on now until
# 14:00."): true when it was said, not news to pass on later
_WHEREABOUTS = re.compile(r"(?i)^(?:here at|i'm at|i am at|just got to|busy|just|out for|enjoying|off for|spent|been|currently|me\?)\b"
                          r"|\b(?:right now|on now)\b"
                          # ... nor whether it goes to an event ("Can't make the club night, I'm afraid.")
                          r"|^(?:can't make|not .{0,60} this time|i'll give it a miss|wish i could|count me in|yes, i'll be|"
                          r"i'm going to|wouldn't miss|i'll miss|i'll be there|i'm in)\b")


def _quotable(text: str) -> str | None:
    """The first sentence or two of what was said, if that is worth repeating."""
    if _WHEREABOUTS.search(text) or says_not_known(text):
        return None
    # what was said, without its questions and its short frames ("Good question, Sam.", "Hope that helps.")
    # (a memory clipped for a prompt ends mid-sentence: the fragment is not quoted)
    said = [s for s in sentences(" ".join(text.split())) if s.endswith((".", "!")) and len(words(s)) >= 4]
    kept = ""
    for s in said:
        if len(kept) + len(s) + 1 > QUOTE_MAX:
            break
        kept = f"{kept} {s}".strip()
    if not kept or len(words(kept)) < MIN_WORDS or kept.endswith("?"):  # a question is asked again, not passed on
        return None
    return kept


def _lower_first(text: str) -> str:
    return text if _FIRST_PERSON_START.match(text) else lower_first(text)


def _sentence(text: str) -> str:
    text = " ".join(text.split()).rstrip()
    return text if not text or text[-1] in ".!?" else text + "."


def pass_on_lines(memory: str, own: str) -> list[str]:
    """Every line that passes `memory` (its text with its frame: "Ana said in #market: ...",
    "My plan: ...", "I was at ...", or a fact told as it is) on to a channel, or [] when it is
    not something to repeat. `own`: the speaker's first name (it does not quote itself)."""
    memory = " ".join(memory.split())
    if (said := _SAID.match(memory)) is not None:
        who, channel, text = said.group("who"), said.group("channel"), said.group("said")
        if (inner := _QUOTED.search(text)) is not None:  # a pass-on passed on: its first author, not the messenger
            n = next(i for i in range(1, 5) if inner.group(f"w{i}"))
            who, channel, text = inner.group(f"w{n}"), inner.group(f"c{n}"), inner.group("said")
        elif '"' in text:  # some other quote: not ours to pass on
            return []
        first = who.split()[0]
        quote = _quotable(text)
        if quote is None or first in (own, "I"):  # its own words ("I said in #x: ...") are not quoted
            return []
        leads = [f"{first} was saying in #{channel}: \"{quote}\"", f"From #{channel}, {first} says: \"{quote}\"",
                 f"Did you see what {first} said in #{channel}? \"{quote}\"", f"Passing this on from {first} in #{channel}: \"{quote}\""]
        closers = ["", "Thoughts?", "Anyone know more?", "Worth knowing."]
        return [f"{lead} {c}".strip() for lead in leads for c in closers]
    if (plan := _PLAN.match(memory)) is not None:
        text = _sentence(plan.group("plan"))
        if _BASE_VERB_START.match(text):  # "throw a party ..." -> "I'm planning to throw a party ..."
            body = [f"I'm planning to {_lower_first(text)}", f"Planning to {_lower_first(text)}", f"Heads up: I'm going to {_lower_first(text)}"]
        elif _FIRST_PERSON_START.match(text):  # "I am throwing a party ..." is already said as the speaker says it
            body = [text, f"Heads up: {text}", f"News from me: {text}"]
        else:
            body = [f"My plan: {_lower_first(text)}", f"Heads up, my plan: {_lower_first(text)}"]
        closers = ["", "Who's in?", "Spread the word!", "Hope to see you there."]
        return [f"{b} {c}".strip() for b in body for c in closers]
    if (went := _WENT.match(memory)) is not None:
        event = went.group("event").split(" (")[0].rstrip(".")
        return [f"{b} {c}".strip() for b in (f"Went to {event} earlier.", f"I was at {event} earlier.", f"Been to {event} today.")
                for c in ("", "Anyone else go?", "Did anyone else make it?")]
    if len(words(memory)) < MIN_WORDS or memory.endswith("?") or ": " in memory[:80]:  # another frame ("I said in #x to Ana:")
        return []
    fact = _sentence(memory)
    if _FIRST_PERSON_START.match(fact):  # told about itself ("I won the raffle"): its own news
        return [f"{fact} {c}".strip() for c in ("", "Just so you know.", "Thought I'd share.")]
    leads = [f"Heard something: {fact}", f"Did you know? {fact}", f"Word is, {_lower_first(fact)}", f"Someone told me {_lower_first(fact)}"]
    return [f"{lead} {c}".strip() for lead in leads for c in ("", "Anyone heard more?", "Pass it on.")]
