"""Plan in code: what a turn does (the dialogue act) and what it is about (the content).

A small model asked "write your next message" drifts; asked "answer Sam's question about slugs
with one tip from your allotments" it mostly does that. So the planner decides, from the message
being answered, the persona, the mood, the relationship and memory, which act the turn performs
and with what content, and the model only puts it in words (realise.py). Every decision is a
seeded draw, so a retried event plans the same turn.

When every candidate fails the gate, a turn that must happen (a person asked this agent
directly) posts one of `Plan.fallbacks()`: a short, well-formed line made from the plan itself,
never the rejected text. Some lines are made from the plan alone, without asking the model: an
honest "I don't know" to a person's question about the world that nothing the persona knows
answers (knowing.py), and a world opener whose model lines strayed from their subject.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from ..mind.relations import Bond
from ..mind.sentiment import emoji_for, sentiment
from ..society.persona import Persona
from ..world.replies import Aside
from .asides import aside_lines
from ..world.life import first_person
from .knowing import asks_for_facts, asks_opinion, without_locative
from .passing import pass_on_lines, says_not_known
from .text import STOP_WORDS as _STOP, lower_first, similarity, stems, unmention, words

_QUESTION_START = re.compile(r"(?i)^\s*(?:@\S+\s+)?(?:what|why|how|when|where|who|which|whose|is|are|was|were|do|does|did|can|could|"
                             r"should|would|will|have|has|any(?:one|body)|shall|may)\b")
_GREETING = re.compile(r"(?i)^\s*(?:@\S+\s+)?(?:hi|hello|hey|hiya|howdy|morning|good (?:morning|afternoon|evening|night)|evening|"
                       r"welcome|greetings)\b")
_ASKS_TIME = re.compile(r"(?i)\b(?:have|got)\s+(?:you\s+got\s+)?(?:a\s+)?(?:minute|moment|sec|second)\b|\bcan i ask you\b")
_THANKS = re.compile(r"(?i)\b(?:thanks|thank you|thx|cheers|much appreciated|appreciate it|you're a star|lifesaver)\b")


@dataclass(frozen=True)
class Heard:
    """The message a turn answers, as the agent read it."""

    author: str
    text: str
    human: bool = False
    to_me: bool = False  # it mentions, replies to or DMs this agent


@dataclass(frozen=True)
class Plan:
    act: str
    speaker: str  # the persona's name
    content: str  # the question answered, the subject, the news, the stance's view
    to: str | None = None  # who the line is for
    heard: Heard | None = None
    hint: str | None = None  # a remembered thing or an interest that may shape the line
    recalled: bool = False  # the hint is a memory or the news: a line between agents must say something of it
    must_post: bool = False  # a person asked this agent directly: the turn posts something
    channel: str | None = None  # invite: where to
    others: tuple[str, ...] = ()  # invite: who is invited
    seed: int = 0
    lead: str = ""  # the first words of the line, chosen with the act ("No,", "I agree,"): the model goes on from them
    known: str | None = None  # what the speaker knows that answers the question (its persona's `knows`)
    opinion: bool = False  # `known` is a view of the speaker's own (its persona's `views`), not a fact
    expert: str | None = None  # a member who would know better, when the speaker knows nothing that fits
    honest: bool = False  # a person asked something the speaker knows nothing about: the line says so, no guess
    world: str | None = None  # an opener's subject from the world (event | upcoming | news | routine): the line must carry it
    aside: Aside | None = None  # what the speaker's own day says about what it heard: the line is made from it, no model

    @property
    def composed(self) -> bool:
        """The line is made from the plan alone (an honest "I don't know", an aside, a private
        note to a friend, "you're welcome", "go ahead", an opener whose subject is already a line:
        the world's, or a question of the society's, what the speaker knows that answers or bears
        on what it heard): no model call. A small model asked to say them garbled them ("I'm not
        going to the Friday market tomorrow" for "anyone going to the Saturday market tomorrow?";
        "I'd go to the local jazz club tomorrow, 23:00 to 15:00." for a jazz night at 21:00)."""
        return (self.honest or self.aside is not None or self.act in ("reach", "thank", "listen", "greet")
                or (self.act in ("answer", "share") and self.known is not None)  # what it knows, framed: see below
                or (self.heard is None and self.world is not None)  # the world's own news, event, outing, routine
                or self.world == "mind"  # a memory passed on as it was said (passing.py)
                # the society's own question or prompt, a sentence already ("Tell me a story your grandparents
                # told about this place."; the model made one up: "She's a big fan of jam, ...")
                or (self.act == "open" and self.content.rstrip().endswith(("?", ".", "!"))))

    @property
    def first(self) -> str:
        return self.speaker.split()[0]

    @property
    def to_first(self) -> str | None:
        return (self.to.split() or [None])[0] if self.to else None

    def instruction(self) -> str:
        """The act, in the words of a director's note to the model (second person)."""
        who = self.to_first or "them"
        content = _clip(self.content, 140)
        hint = f" You could mention: {_clip(self.hint, 110)}." if self.hint else ""
        if self.known:
            hint = f" What you {'think' if self.opinion else 'know'}: {_clip(self.known, 200)}."
        return {
            "answer": f"Answer {who}'s question directly: \"{content}\". Give one concrete, practical answer from your own experience.{hint}",
            "ask": f"Ask {who} one short, friendly question about {content}.",
            "share": f"Tell the others your news or thought about {content}, briefly.{hint}",
            "agree": f"Agree with {who} about \"{content}\" and add one reason of your own.{hint}",
            "disagree": f"Politely disagree with {who} about \"{content}\" and say briefly why.{hint}",
            "joke": f"Make a light, friendly joke about {content}.",
            "greet": f"Greet {who} back warmly and ask how their day is going.",
            "thank": f"Tell {who} they are welcome.",
            "invite": f"Welcome {', '.join(o.split()[0] for o in self.others) or 'everyone'} to #{self.channel or 'here'}, "
                      f"the new channel you just opened about {content}, and ask what they think.",
            "open": f"Start a conversation about this: {content}. Ask the others what they think.{hint}",
        }.get(self.act, f"Say something short about {content}.")

    def narration(self, *, with_known: bool = True) -> str:
        """The act as a stage direction in the third person (for a transcript prompt). With the
        known answer in it the model mostly passes it on; without it (`with_known=False`) it is
        what a line reciting the prompt would repeat."""
        who = self.to_first or "the others"
        content = _clip(self.content, 120)
        if self.act == "answer" and self.known and with_known:
            return f"{self.first} answers {who}'s question ({content}) with what {self.first} knows: {_clip(self.known, 200)}"
        if self.act == "share" and self.known:
            return (f"{self.first} adds something {self.first} knows: {_clip(self.known, 200)}" if with_known
                    else f"{self.first} adds something {self.first} knows.")
        return {
            "answer": f"{self.first} answers {who}'s question ({content}) in a sentence, from experience.",
            "ask": f"{self.first} asks {who} about {content}.",
            "share": f"{self.first} tells the others about {content}.",
            "agree": f"{self.first} agrees with {who} and adds a new reason in a few words.",
            "disagree": f"{self.first} politely disagrees with {who} and says why in a few words.",
            "joke": f"{self.first} jokes about {content}.",
            "greet": f"{self.first} greets {who} back.",
            "thank": f"{self.first} tells {who} they are welcome.",
            "invite": f"{self.first} welcomes everyone to #{self.channel or 'the new channel'} to talk about {content}.",
            "open": f"{self.first} asks everyone: {content}",
        }.get(self.act, f"{self.first} speaks.")

    def fallbacks(self) -> list[str]:
        """Varied, well-formed lines made from the plan alone (no model), for a turn that must
        post, in a seeded order: the caller takes the first the gate accepts (not a repeat)."""
        rng = random.Random(self.seed)
        who = self.to_first or "everyone"
        thing = object_phrase(self.content)
        about = f" about {thing}" if thing else ""
        if self.aside is not None:
            options = aside_lines(self.aside, self.to_first, asked=self.heard is not None and is_question(self.heard.text),
                                  known=sentence(self.known) if self.known else None, own=self.first)
            if self.act == "greet":  # "morning! how are you?": greeted back, and what it is doing
                options = [f"{g} {line}" for g in (f"Hi {who}!", f"Hello {who}!", f"Morning, {who}! Good, thanks.", "Good, thanks!")
                           for line in options]
        elif self.act == "reach":
            options = _reach_lines(who, self.content)
        elif self.known and self.opinion and self.act != "open":  # a view of its own, as a person gives one
            options = _view_lines(who if self.to_first else None, sentence(self.known))
        elif self.act == "answer" and self.known:  # what the speaker knows, framed in its own words
            # every fixed part at most four words (see the honest answers below)
            # mostly the statement alone: raters read the frames on every answer as a template
            openers = ["", "", "", f"Good question, {who}.", f"Ah, {who}.", f"{who}:", f"Right, {who}.", f"Oh, {who}!"]
            if self.heard is not None and not self.heard.human:  # "Hope that helps." to an agent's "chess puzzle, anyone?"
                closers = [""]
            elif _ADVICE.search(self.content):  # advice asked for: the closer speaks of trying it
                # (raters read a closer on most answers as filler: mostly none)
                closers = ["", "", "", "", "Worked for me.", "That's what I'd do.", "Good luck!"]
            else:
                closers = ["", "", "", "", "Hope that helps."]
            known = sentence(self.known)
            options = [" ".join(filter(None, [o, known, c])) for o in openers for c in closers]  # repeats weigh the bare line
        elif self.act == "share" and self.known:
            known = sentence(self.known)
            after_comma = lower_first(known)  # "By the way, the bakery..." ("Harbour Ward" keeps its capital)
            options = [f"By the way, {after_comma}", f"That reminds me. {known}", f"Speaking of which, {after_comma}",
                       f"For what it's worth, {after_comma}", known, f"Fun fact: {after_comma}", f"Oh, and {after_comma}"]
        elif self.world == "mind":  # "Tobias was saying in #history: "..."" (also in a reply: it bears on the line)
            options = pass_on_lines(self.content, self.first)
        elif self.heard is None and self.world:
            options = _world_lines(self.world, self.content, self.first)
        elif self.act == "answer":  # composed, short and varied, so that two agents' lines rarely read alike
            # "the old mill", not "the adult" from "as an adult", nor "the city" from "where can I swim in the city?"
            asked = object_phrase(without_locative(self.content), definite_only=True)
            about = f" about {asked}" if asked else ""
            # every fixed part is at most four words (with the name): a repeated word 5-gram then needs
            # the same draw in two slots, so a society's honest answers rarely repeat one another
            # (not "Good question, Sam." before "no idea": raters read it as wrong)
            openers = [f"Hm, {who}.", f"Ah, {who}.", f"Honestly, {who}?", f"Let me think, {who}.",
                       f"Oh, {who}.", f"Sorry, {who}.", f"Well, {who}.", f"Hmm, {who}.", f"Oh dear, {who}."]
            bodies = [f"No idea{about}.", f"Not sure{about}.", f"Couldn't say{about}.", f"Don't know much{about}.",
                      "Beats me.", "Wish I knew.", "No clue, honestly.", "You've got me there.", "That's beyond me.",
                      "Not my area.", "No idea, sorry.", "Haven't a clue."]
            if asked:  # the thing itself said back, not the whole question ("The big house? No clue.")
                thing_back = asked[:1].upper() + asked[1:]
                bodies += [f"{thing_back}? No clue.", f"{thing_back}? Not a clue.", f"{thing_back}, no idea.",
                           f"{thing_back}? Couldn't tell you."]
            closers = ["Someone may know.", "I'll ask around.", "Anyone here know?", "", "Sorry!",
                       "Try asking around.", "Can't help, sorry.", "Anyone?", "Others might know.",
                       "Worth asking around."]
            if _PROBLEM.search(self.content):  # a problem to solve: the speaker has not had it, and asks
                bodies.append("Never had that problem.")
                closers += ["Anyone dealt with it?", "What have you tried?"]
            if self.expert:  # an honest "I don't know" that still helps: who would
                expert = self.expert.split()[0]
                closers = [f"{expert} would know.", f"Ask {expert}.", f"Try {expert}, maybe.", f"{expert} might know.",
                           f"{expert} knows this stuff.",
                           f"{expert} is the one to ask." if expert.endswith("s") else f"{expert}'s the one to ask."]  # not "Marcus's the one"
            options = [" ".join(filter(None, [o, b, c])) for o in openers for b in bodies for c in closers
                       if not _says_twice(f"{o} {b} {c}")]  # not "Sorry, Kwame. Beats me. Sorry!", "Honestly, Sam? No clue, honestly."
            if about:  # what is not known named in the line ("Not sure about the market."): these first
                rng.shuffle(options)
                options.sort(key=lambda line: about not in line and asked[1:] not in line)
            asked = as_heard(sentence(unmention(self.content)))
            # the question echoed, as people do ("Why is the bell cracked? No idea, Sam."; "my basil" said
            # back as "your basil"): what is not known is named, not only "no idea"
            if asked.endswith("?") and len(asked.split()) <= 12 and _QUESTION_START.match(asked):  # not "your basil ..., why?"
                replies = [f"No idea, {who}.", f"Not sure, {who}.", f"Beats me, {who}.", f"Wish I knew, {who}.",
                           f"Couldn't say, {who}.", f"Hmm, no idea, {who}.", f"No clue, {who}.",
                           f"Sorry, {who}, no idea.", f"Don't know, {who}.", f"Not a clue, {who}.", f"Can't say, {who}.",
                           f"Hmm, not sure, {who}."]
                echoes = [" ".join([asked, r, c]) for r in replies for c in closers  # a bare echo would be a parrot
                          if c and not _says_twice(f"{r} {c}")]
                if not about:
                    rng.shuffle(options)
                rng.shuffle(echoes)
                # the echo first in most answers, not all: it says what is not known (relevance), but every
                # "X? No idea, Sam." read as a dodge template
                # (fewer when the line can name what is not known without saying the question back)
                pairs = zip(echoes, options) if rng.random() < (ECHO_SHARE_NAMED if about else ECHO_SHARE) else zip(options, echoes)
                return [line for pair in pairs for line in pair]
        else:
            options = {
                "greet": _greet_lines(who, self.heard.text if self.heard else ""),
                "thank": [f"{w} {c}".strip() for w in (f"You're welcome, {who}!", f"Glad it helped, {who}.", f"Any time, {who}!",
                                                       f"Happy to help, {who}.", f"My pleasure, {who}.")
                          for c in ("", "Let me know how it goes.", "Good luck with it!")],
                "listen": [f"Of course, {who}. What's up?", f"Sure, {who}, go ahead.", f"Yes, of course. What is it, {who}?",
                           f"Always, {who}. Ask away.", f"Go on, {who}, I'm listening."],
                "invite": [f"Welcome, everyone! This is the place{about}. What got you into it?"],
                "open": [lead + (asked[:1].lower() + asked[1:] if lead.endswith((": ", ", ")) else asked) + own
                         for asked in [sentence(self.content)]
                         # its own answer after the question, when it has one ("Best bread for a Sunday? Rye, toasted.")
                         # (said as its own: "Mountains or seaside? Mountains." read as a question answered by its asker)
                         for own in ([f" {start}{sentence(self.known)}" for start in ("Me? ", "I'll start. ", "My answer? ")]
                                     if self.known and self.opinion and asked.endswith("?") else [""])
                         for lead in (("", "Question for everyone: ", "Been wondering: ", "So, ", "Hey all, ")
                                      if asked.endswith("?") else ("", "Hey all. ", "Go on, "))],
            }.get(self.act, [f"I hear you, {who}. Tell me more?", f"Interesting, {who}. What makes you say that?",
                             f"Go on, {who}, I'm listening.", f"Is that so, {who}? How did that come about?"])
        rng.shuffle(options)
        return options


_TIME_OF_DAY = re.compile(r"(?i)\b(?:good\s+)?(morning|afternoon|evening)\b")
_HOW_ARE_YOU = re.compile(r"(?i)\bhow(?:'s| is| are)\s+(?:you|things|it going|your day|life)\b|\bhow do you do\b")


def _greet_lines(who: str, heard: str) -> list[str]:
    """A greeting back, as it was given ("Morning" for "good morning"), with "good, thanks" for a
    "how are you?" (a small model continuing "Morning Sam!" wrote "How's that morning? Sam!")."""
    hello = [f"{part.capitalize()}, {who}!" for part in [_TIME_OF_DAY.search(heard).group(1)]] if _TIME_OF_DAY.search(heard) else []
    hello += [f"Hello {who}!", f"Hi {who}!", f"Hey {who}!"]
    if _HOW_ARE_YOU.search(heard):
        bodies = ["Good, thanks. You?", "Not bad at all, thanks. And you?", "All well here, thanks. You?", "Fine, thanks! How about you?"]
    else:
        bodies = ["Good to see you.", "Nice to hear from you.", "How's your day going?", "How are things?", "What are you up to today?"]
    return [f"{h} {b}" for h in hello for b in bodies]


def _view_lines(who: str | None, view: str) -> list[str]:
    """A view said as the answer to a question of opinion: mostly the view alone (a frame on every
    line read as a template), sometimes a short frame or a question back (a conversation goes on
    from it)."""
    name = f", {who}" if who else ""
    openers = ["", "", "", f"Hm{name}.", f"Oh, easy{name}.", f"Well{name}.", "For me?"]
    closers = ["", "", "", "You?", "And you?", "What about you?", f"How about you{name}?"]
    return [" ".join(filter(None, [o, view, c])) for o in openers for c in closers]  # repeats weigh the bare view


def _reach_lines(friend: str, interest: str) -> list[str]:
    """A private note to a friend about something both care about (a small model asked for one
    wrote "Amara, how do you work?")."""
    if interest == HOW_THEY_ARE:
        return [f"Hi {friend}, how are you doing?", f"Hey {friend}! How have you been?", f"{friend}, all well with you?",
                f"Hi {friend}. Been a while, how are things?"]
    return [f"Hey {friend}, been thinking about {interest}. Anything new on that front?",
            f"Hi {friend}, fancy a chat about {interest} sometime?", f"Hey {friend}, how are you? Still into {interest}?",
            f"{friend}! Anything new with {interest} lately?"]


def _world_lines(kind: str, subject: str, own: str = "") -> list[str]:
    """An opener made from a world subject itself (agents/world/subjects.py gives its shape):
    the news told, the event the speaker is at, the question about one coming up, what the
    speaker is doing. `own`: the speaker's first name ("Theo's jazz night" is "my jazz night").
    A memory on the speaker's mind (kind "mind") is passed on as it was said (passing.py)."""
    if kind == "mind":  # quoted words stay as they were said: no "my" for the speaker's name in them
        return pass_on_lines(subject, own)
    subject = re.sub(rf"\b{re.escape(own)}'s\b", "my", subject) if own else subject
    if kind == "news":
        headline, _, first = subject.removeprefix("the news: ").partition(" (")
        first = first.rstrip(")")
        body = sentence(first if first and not first.endswith("…") else headline)  # a clipped sentence reads cut off: the headline
        leads = ["Did you hear?", "Seen this?", "News just in.", "Saw this earlier.", "Heard the news?", "", "Just read:", "Heads up:",
                 "In the news:"]
        # the news mostly on its own: raters read "Who knew?" after a forecast, "Fancy that." after a road closure,
        # as tags that do not fit
        closers = ["", "", "", "What do you think?", "Anyone else heard?", "Good to know."]
        return [" ".join(filter(None, [lead, body, c])) for lead in leads for c in closers]
    if kind == "upcoming":  # already a question ("is anyone going to the market tomorrow, 08:00 to 13:00?")
        question = sentence(subject)
        going = re.match(r"(?i)is anyone going to (.+)\?$", question)
        if going:  # said in several ways: the template's own words would repeat across the society
            event = going.group(1)
            return [question, f"Anyone going to {event}?", f"Who's going to {event}?", f"Is anyone else off to {event}?",
                    f"Thinking of going to {event}. Anyone?", f"Anyone fancy {event}?"]
        lowered = question[:1].lower() + question[1:]
        return [question, f"So, {lowered}", f"Hey all, {lowered}"]
    if kind == "event":  # the speaker is there now
        return [f"{opener} {subject}. {closer}".strip() for opener in ("I'm at", "Here at", "Just got to")
                for closer in ("Anyone else here?", "Come along if you can!", "Lovely atmosphere.", "")]
    doing = first_person(subject, own)
    if doing.split()[0].endswith("ing"):  # "sorting old parish records at the archive"
        starts = [f"Busy {doing} right now.", f"Just {doing}.", f"Spent a while {doing}.", f"Currently {doing}.", f"Been {doing}."]
    else:  # "an evening walk along the river"
        starts = [f"Out for {doing}.", f"Enjoying {doing}.", f"Off for {doing}."]
    return [f"{start} {closer}".strip() for start in starts
            for closer in ("What's everyone up to?", "Anyone else about?", "", "You lot?", "How's everyone?")]


# against agree ~1.5-2.5, ask ~1-1.5, disagree ~0.2-0.6, share 1.2: a reply whose only ground is
# the news (its line must carry it) is still mostly an emoji; a small model's lines about the news
# between agents rated 0.4 of 2 blind
REACT_WEIGHT = 20.0
ECHO_SHARE = 0.4  # of honest answers, those that say the question back first (without: relevance above the
# shuffled baseline 64-69% instead of 78-86% on three seeds; but two of four blind raters scored every echo 0 as
# parroting, the other two 1 as a dodge template)
ECHO_SHARE_NAMED = 0.2  # ... when the question names a thing that the line can name instead ("Not sure about the market.")
NEWS_QUIET = 0.7  # news with nothing of the agent's own to add to it: this share gets an emoji instead of a line
MEMORY_SHARE = 0.5  # another agent's line that a memory bears on: passed on as it was said, else an emoji
NEWS_SHARE = 0.2  # ... that the news bears on: the news told, else an emoji

_VOCATIVE = re.compile(r"^\s*([A-Z][a-z]+)(?=,\s)|(?<=,\s)([A-Z][a-z]+)(?=[.!?,])")
_NOT_A_NAME = frozenset({"well", "yes", "no", "oh", "hm", "hmm", "ah", "sorry", "honestly", "okay", "ok", "so", "right", "true",
                         "exactly", "funny", "really", "actually", "anyway", "hey", "hi", "hello", "morning", "evening", "thanks",
                         "good", "great", "sure", "wow", "look", "listen", "guess", "also", "now", "then", "still", "maybe",
                         "perhaps", "indeed", "same", "agreed", "folks", "everyone", "all", "friends", "say", "wait", "alright"})


_VOCATIVE_FIRST = re.compile(r"^\s*(?!(?:" + "|".join(sorted(_NOT_A_NAME)) + r")\b)[A-Z][a-z]+,\s", re.IGNORECASE)


def _addressee(text: str, speaker: str) -> str | None:
    """Whom the line calls on by name ("Samir, have you ...?", "Hm, Sam. No idea."), when not the speaker."""
    for found in _VOCATIVE.finditer(unmention(text)):
        name = found.group(1) or found.group(2)
        if name.lower() not in _NOT_A_NAME:
            return name if name != speaker.split()[0] else None
    return None


_SAID_BACK = {"i": "you", "me": "you", "my": "your", "mine": "yours", "myself": "yourself", "i'm": "you're", "i've": "you've",
              "i'd": "you'd", "i'll": "you'll"}


def as_heard(question: str) -> str:
    """A question said back by the one it was put to ("how do I fix my bike?" -> "how do you fix
    your bike?")."""
    question = re.sub(r"\b([Aa])m I\b", r"\1re you", re.sub(r"\bI am\b", "you are", question))

    def swap(found: re.Match[str]) -> str:
        word = _SAID_BACK[found.group(0).lower()]
        return word.capitalize() if found.start() == 0 else word

    return re.sub(r"(?i)\b(?:i'm|i've|i'd|i'll|myself|mine|my|me|i)\b", swap, question)


_FIRST_PERSON = re.compile(r"(?i)\b(?:i|i'm|i've|i'd|me|my|mine|we|our|us)\b")
# a trouble the asker has ("slugs ate my lettuces", "my basil keeps dying", "my laptop is slow"), not any advice
# asked for ("what should I read after The Hobbit? ... Anyone dealt with it?" read as a template misfiring)
_PROBLEM = re.compile(r"(?i)\b(?:keeps?|kept|ate|eaten|dying|died|dead|broken|broke|slow|stuck|leak\w*|problem|trouble|won't|"
                      r"can't|doesn't|isn't working|stopped|injur\w*|hurt\w*|sick|pests?)\b")
_ADVICE = re.compile(r"(?i)\b(?:how (?:do|can|should|would) (?:i|we|you)|what should|what (?:do|can) i do|any (?:tips?|ideas?|advice)|"
                     r"advice|should i|tips?|recommend)\b")


_OBJECT = re.compile(r"(?i)\b(my|the|your|our|this|that|a|an) ((?:[a-z]+ ){0,2}?[a-z]{3,})\b(?= (?:is|are|was|were|keeps|has|have|"
                     r"ate|got|looks|seems|dip|dips)\b|[?.!,]|$)")


_NOT_A_NOUN = frozenset({"open", "closed", "close", "shut", "take", "work", "start", "end", "run", "go", "come", "cost", "sell",
                         "serve", "taste", "look", "get", "good", "best", "busy", "free", "late", "early", "far", "near"})


def object_phrase(text: str, *, definite_only: bool = False) -> str | None:
    """The thing a line is about, as the answerer would say it ("my basil keeps dying" -> "your
    basil"), or None when no plain noun phrase is found. `definite_only`: only a thing the line
    names as known ("the mill", "my basil"), not "a"/"an" ("as an adult" is not what is asked about)."""
    found = _OBJECT.search(unmention(text))
    if not found or found.group(2).split()[-1].lower() in _STOP:
        return None
    if definite_only and (found.group(1).lower() in ("a", "an") or len(found.group(2).split()) > 2
                          or found.group(2).split()[-1].lower() in _NOT_A_NOUN):
        return None  # "do the stalls take cards?", "is the library open?": not a thing to name
    phrase = found.group(2).split()  # as written: "Friday", "Dock Street" keep their capitals
    if len(phrase) > 1 and phrase[-1].endswith("ed"):  # "the church bell cracked": the bell, not the state
        phrase = phrase[:-1]
    det = {"my": "your", "your": "my", "our": "our", "a": "the", "an": "the", "this": "that"}.get(found.group(1).lower(), found.group(1).lower())
    return f"{det} {' '.join(phrase)}"


def _says_twice(line: str) -> bool:
    """A fixed word said twice in one composed line ("sorry", "honestly", "idea")."""
    said = re.findall(r"[a-z]+", line.lower().replace("sorry", " sorry "))
    return any(said.count(w) > 1 for w in ("sorry", "honestly", "idea", "clue", "sure", "anyone", "know"))


def in_own_words(statement: str, name: str) -> str:
    """A statement about the speaker said by the speaker ("Saturday orders are collected from
    Maren's stall" said by Maren: "from my stall"); the gate refuses a line naming its speaker, so
    the baker asked about bread said nothing at all."""
    first = re.escape(name.split()[0])
    full = re.escape(name)
    statement = re.sub(rf"\b(?:{full}|{first})'s\b", "my", statement)
    # the speaker as a subject: "while Priya sells honey" -> "while I sell honey", "Pablo paints" -> "I paint"
    for verb, mine in (("has", "have"), ("is", "am"), ("was", "was")):
        statement = re.sub(rf"\b(?:{full}|{first}) {verb}\b", f"I {mine}", statement)
    statement = re.sub(rf"\b(?:{full}|{first}) ([a-z]+(?:ch|sh|ss|x|o)(?=es\b)|[a-z]+(?=s\b))e?s\b", r"I \1", statement)
    return re.sub(rf"(?<![.!?]\s)(?<!^)\b(?:{full}|{first})\b", "me", statement)


def sentence(text: str) -> str:
    """A statement as a sentence of its own: capitalised, ending with its punctuation."""
    text = " ".join(text.split()).rstrip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"


def keyphrase(text: str, most: int = 3) -> str:
    """The longest run of content words in a line (what it is about), at most `most` words."""
    best: list[str] = []
    run: list[str] = []
    for word in [*words(re.sub(r"<[@#!&]?\d+>|@\S+", " ", text)), "the"]:
        if word in _STOP or len(word) < 3 or word.isdigit():
            if len(run) > len(best):
                best = run
            run = []
        else:
            run.append(word)
    return " ".join(best[-most:])


def is_question(text: str) -> bool:
    return "?" in text or bool(_QUESTION_START.match(text))


def _interest_hint(persona: Persona, text: str) -> str | None:
    heard = set(words(text))
    for interest in persona.interests:
        if set(words(interest)) & heard:
            return f"your own experience with {interest}"
    return None


def _recalled(memories: list[str], text: str) -> str | None:
    """A recalled memory (with its frame: "Ana said in #market: ...") that shares content words
    with the line and is not that line itself (the best recalled first)."""
    heard = {w for w in words(text) if w not in _STOP and len(w) > 3}
    for memory in memories:
        body = _body(memory)
        if heard & {w for w in words(body) if w not in _STOP and len(w) > 3} and similarity(body, text) < 0.8 and not _says(text, body):
            return memory
    return None


def _says(line: str, statement: str) -> bool:
    """The line says the statement already (most of its content words): a quote of it, an answer with it."""
    own = stems(statement)
    return len(own - stems(line)) <= len(own) // 3


def _body(memory: str) -> str:
    """A memory's words past its frame ("Ana said in #market:", "My plan:")."""
    return memory.split(": ", 1)[1] if ": " in memory[:80] else memory


def _memory_hint(memories: list[str], text: str) -> str | None:
    """The words of a recalled memory that shares content words with the line."""
    found = _recalled(memories, text)
    return _body(found) if found is not None else None


def _world_hint(world: list[str], text: str) -> str | None:
    """What the agent knows of the world (an event, the news) that touches what was said."""
    heard = {w for w in words(text) if w not in _STOP and len(w) > 3}
    return next((line for line in world if heard & {w for w in words(line) if w not in _STOP and len(w) > 3}), None)


def plan_reply(persona: Persona, heard: Heard, *, seed: int, mood: str = "calm", bond: Bond | None = None,
               memories: list[str] | None = None, interests_match: float = 0.0, known: str | None = None,
               expert: str | None = None, world: list[str] | None = None, aside: Aside | None = None,
               model_talk: bool = False, opinion: bool = False) -> Plan:
    """The act and content of a turn that answers `heard`. `known` is what the speaker knows that
    fits it (`best_known`); `expert`, a member who would know when the speaker does not; `world`,
    what the agent knows of its world now (agents/world/subjects.world_lines): a share about
    something said there is about it; `aside`, what its own day says about the message
    (agents/world/replies.py): asked about an event, what it is doing, a piece of news, the line
    is made from that. `opinion`: `known` is a view of the speaker's own (`known_or_view`).
    `model_talk`: the model may word lines between agents (agree, disagree,
    ask, joke, share a memory); off by default: the bundled model's were nonsense, some offensive
    ("the old mill was built by the Jews"), so another agent's line gets what the agent knows, a
    memory passed on as it was said, the news, or an emoji."""
    rng = random.Random(seed)
    known = in_own_words(known, persona.name) if known else known
    text = " ".join(heard.text.split())
    framed = _recalled(memories or [], text)
    memory = _body(framed) if framed is not None else None
    news = _world_hint(world or [], text)
    hint = memory or known or _interest_hint(persona, text)
    base = dict(speaker=persona.name, to=heard.author, heard=heard, seed=seed, must_post=heard.to_me and heard.human,
                opinion=opinion and known is not None)
    if _THANKS.search(text) and heard.to_me and not is_question(text):
        return Plan("thank", content=text, lead=lead_for("thank", text, heard.author, rng), **base)  # type: ignore[arg-type]
    if _GREETING.match(text) and len(words(text)) <= 8 and (aside is not None and aside.kind == "doing"):
        return Plan("greet", content=text, aside=aside, **base)  # type: ignore[arg-type]
    if _GREETING.match(text) and len(words(text)) <= 8 and not is_question(text.split(",", 1)[-1] if "," in text else ""):
        return Plan("greet", content=text, lead=lead_for("greet", text, heard.author, rng), **base)  # type: ignore[arg-type]
    if heard.to_me and _ASKS_TIME.search(text):  # "do you have a minute?": yes, go ahead (the question comes next)
        return Plan("listen", content=text, **base)  # type: ignore[arg-type]
    if aside is not None and aside.kind == "doing" and not heard.to_me and _addressee(text, persona.name):
        aside = None  # "Hm, Sam. Just baking. You?" asks Sam what he is doing, not whoever read it
    if aside is not None:  # its day answers it: going or not, what it is doing, the news seen or not
        # what it knows about the news, unless that is the news itself said back ("I read that too.
        # From next week the library stays open until nine." to the library's news)
        adds = known is not None and len(stems(known) - stems(text)) >= max(2, len(stems(known)) // 2)
        if aside.kind in ("news_seen", "news_unseen") and not adds and aside.tie is None and not heard.to_me and rng.random() < NEWS_QUIET:
            # nothing of its own to say to the news (no view, no tie to its days): often a reaction, as in a
            # real channel (raters read "Tech Row offline, eh? Interesting." from three agents as a template)
            return Plan("react", content=emoji_for(sentiment(text), bond.affinity if bond else 0.0, text, rng), **base)  # type: ignore[arg-type]
        return Plan("answer" if is_question(text) else "share", content=aside.what, aside=aside,  # type: ignore[arg-type]
                    known=known if aside.kind.startswith("news") and adds else None, **base)
    if not heard.human and known is not None and _says(text, known):
        known = None  # what it knows is what it just heard (an answer to Sam, heard by a neighbour): not said again
    addressee = _addressee(text, persona.name)
    if addressee and not (heard.human and heard.to_me):
        # "Samir, have you had a night?" read by Sofia: not hers to answer; "Hm, Sam. No idea." read by
        # one who knows: Sam is answered; by one with nothing of her own to add: an emoji (a small
        # model joins in with "Same here, Samir.")
        if known and not _VOCATIVE_FIRST.match(text):
            return Plan("answer", content=text, hint=known, known=known, **{**base, "to": addressee})  # type: ignore[arg-type]
        if _VOCATIVE_FIRST.match(text) or not (memory or news):
            return Plan("react", content=emoji_for(sentiment(text), 0.0, text, rng), **base)  # type: ignore[arg-type]
    factual = is_question(text) and asks_for_facts(text)
    if not heard.human and (asks_opinion(text) or says_not_known(text)):
        # between agents, "no idea" is no answer to "jazz or techno tonight?" nor to another's "no idea,
        # anyone?" (a chain of them read as a template)
        factual = False
    grounded = bool(memory or news or known)
    called = heard.to_me or bool(re.match(rf"\s*{re.escape(persona.name.split()[0])},\s", text))
    if not heard.human and not model_talk and grounded:
        if called and factual and not known and text.rstrip().endswith("?"):
            return Plan("answer", content=text, honest=True, **base)  # type: ignore[arg-type]
        if known:  # what it knows that bears on it, said as it is
            return Plan("answer" if is_question(text) else "share", content=known, known=known, lead="", **base)  # type: ignore[arg-type]
        # a memory that bears on it (two content words in common, not one: "Wish I were there." quoted
        # to a question about lunch), passed on as it was said
        if (framed is not None and len(stems(_body(framed)) & stems(text)) >= 2
                and pass_on_lines(framed, persona.name.split()[0]) and rng.random() < MEMORY_SHARE):
            return Plan("share", content=framed, world="mind", **base)  # type: ignore[arg-type]  # "Tobias was saying in #history: ..."
        if news and len(stems(news) & stems(text)) >= 2 and rng.random() < NEWS_SHARE:
            return Plan("share", content=news, known=news.split(": ", 1)[1] if ": " in news[:90] else news, lead="", **base)  # type: ignore[arg-type]
        return Plan("react", content=emoji_for(sentiment(text), bond.affinity if bond else 0.0, text, rng), **base)  # type: ignore[arg-type]
    if not heard.human and not grounded:
        # another agent's line the speaker has nothing of its own to add to (no memory, news or
        # knowledge): a small model's free lines between agents rated 0 to 0.5 of 2 blind ("Same
        # here, I want to tell you about a building.", "I think I know a way to create apps."):
        # a question about the world put to it gets an honest "not sure", anything else an emoji
        # (asked about itself with nothing remembered to go on, the model made up "a way to create apps")
        if called and factual and text.rstrip().endswith("?"):  # a question put to it (not "Frost tonight? So I read.")
            return Plan("answer", content=text, honest=True, **base)  # type: ignore[arg-type]
        return Plan("react", content=emoji_for(sentiment(text), bond.affinity if bond else 0.0, text, rng), **base)  # type: ignore[arg-type]
    # another agent's question about the world that nothing known answers (often a person's
    # question echoed in an honest "no idea"): not answered with a guess, talked about instead
    # (another agent's open question with only the news to go on: the news is told, or an emoji, below)
    if is_question(text) and (heard.human or known or (not factual and memory)):
        honest = heard.human and not known and factual
        # an agent's question answered from a memory must say something of it (speak.py), or nothing is said
        return Plan("answer", content=text, hint=hint, lead="" if known or honest else lead_for("answer", text, heard.author, rng),  # type: ignore[arg-type]
                    known=known, expert=expert if honest else None, honest=honest,
                    recalled=not heard.human and not known and hint is not None and hint == memory, **base)
    traits = persona.traits
    affinity = bond.affinity if bond else 0.0
    # talk shaped by a memory or a known statement: any act; by the news alone: tell it, or an emoji
    # (a small model's "Same here, I want to tell you about a building." had nothing of the news in it)
    talk = 1.0 if heard.human or memory or known else 0.0
    # a question or a joke between agents carries no memory: the model's were made up ("Well, I did
    # the same thing, and I'm here now. I've got a great place up my bedside.")
    free = 1.0 if heard.human else 0.0
    weights = {
        "agree": (0.8 + traits.agreeableness + max(0.0, affinity) + max(0.0, sentiment(text)) * 0.5) * talk,
        "disagree": (0.15 + (1 - traits.agreeableness) * 0.9 + max(0.0, -affinity) * 1.5 + (0.3 if mood == "irritated" else 0.0)) * talk,
        "ask": (0.6 + traits.openness * 0.8 + interests_match) * talk * free,
        # nothing remembered, heard or known to tell: a "share" would be news the model makes up
        "share": (1.2 if memory or news or known else 0.0) + interests_match,
        "joke": (0.1 + traits.extraversion * traits.openness) * (1.3 if mood in ("excited", "cheerful") else 0.5) * talk * free,
        # news it read that touches the line: mostly an emoji still (its line must carry the news,
        # speak.py); a memory or a known statement: words (a person's line always gets words)
        "react": 0.0 if heard.human or memory or known else REACT_WEIGHT * 0.25,
    }
    acts = list(weights)
    act = rng.choices(acts, weights=[weights[a] for a in acts])[0]
    if act == "react":
        tone = sentiment(text)
        return Plan("react", content=emoji_for(tone, affinity, text, rng), **base)  # type: ignore[arg-type]
    content = text if act in ("agree", "disagree") else (keyphrase(text, 4) or text)
    if act == "share" and news:  # news or an event it knows of, not a made-up one: said as it is (the model garbled it:
        # "By the way, the cable was left without fibre internet!")
        told = news.split(": ", 1)[1] if ": " in news[:90] else news
        return Plan("share", content=news, known=told, lead="", **base)  # type: ignore[arg-type]
    if act == "share" and known:  # something it knows that bears on what was said: real content, not small talk
        return Plan("share", content=known, hint=None, known=known, lead="", **base)  # type: ignore[arg-type]
    shaped = act in ("agree", "disagree", "share")
    return Plan(act, content=content, hint=hint if shaped else None, recalled=shaped and hint is not None and hint == memory,  # type: ignore[arg-type]
                lead=lead_for(act, text, heard.author, rng), **base)


_YES_NO = re.compile(r"(?i)^(?:is|are|was|were|do|does|did|can|could|should|would|will|has|have|shall|may)\b")


def lead_for(act: str, text: str, to: str | None, rng: random.Random) -> str:
    """The opening words of a line that performs `act` (at most four: a longer fixed phrase
    would repeat across the society's lines). The stance (yes or no, agree or not) is the
    plan's, so a small model only has to go on from it."""
    who = ((to or "").split() or [""])[0]
    asked = re.sub(r"^(?:\s*(?:<@!?\d+>|@\S+(?: [A-Z][a-z]+)?)\s*)+", "", text).strip().lower()
    if act == "answer":
        if _YES_NO.match(asked):
            return rng.choice(["Yes,", "No,", "I think so,", "Not really,", "Probably,", "Hmm, yes,", "Honestly, no,"])
        first = asked.split()[0].strip("?,.!'") if asked else ""
        return rng.choice({
            "why": ["I think it's because", "Probably because", "Mostly because"],
            "what": ["I'd say", "Honestly,", "Mostly"],
            "what's": ["I'd say", "Honestly,", "Right now,"],
            "how": ["I'd", "The trick is to", "Easiest is to"],
            "where": ["Try", "I'd go to", "Best place is"],
            "when": ["Usually", "I'd say", "Around"],
            "who": ["I think it was", "That would be", "Ask"],
            "which": ["I'd go with", "Definitely"],
        }.get(first, ["Well,", "I think", "Honestly,"]))
    options = {
        "agree": ["I agree,", "Same here,", "Exactly,", "True,", "Oh yes,"],
        "disagree": ["Hmm, I'm not sure,", "I see it differently,", "Not so sure,", "Really? I think"],
        "greet": [f"Hi {who}!", f"Morning {who}!", f"Hello {who}!"] if who else ["Hi all!", "Morning!"],
        "thank": ["Thank you,", "Thanks,", "Oh, thank you"],
        "ask": [f"{who}, what", f"{who}, how", f"{who}, do you", f"{who}, have you"] if who else ["What", "How", "Has anyone"],
        "joke": ["Ha,", "Well,", "Funny,"],
        # "Did you hear," announces news: only for news ("Guess what," and it led to made-up news)
        "share": ["Did you hear,", "By the way,"] if text.startswith("the news:") else ["By the way,", "So,", "Actually,"],
    }.get(act)
    return rng.choice(options) if options else ""


def plan_opener(persona: Persona, subject: str, *, seed: int, news: bool = False, memories: list[str] | None = None,
                world: str | None = None, view: str | None = None) -> Plan:
    """A turn that starts a conversation in a quiet channel: news on the agent's mind is shared,
    a topic is asked about. `world`: the kind of subject, when it comes from the world; `view`:
    the speaker's own answer to the question it asks (one of its `views`), said after it."""
    memory = _memory_hint(memories or [], subject)
    rng = random.Random(seed)
    # only after a question of opinion: "Does anyone have photographs of the square? My answer? ..." or "Who do
    # we call? Me? ..." read as asking for help and answering it oneself
    own = view if (view is not None and not news and world is None and subject.rstrip().endswith("?")
                   and (asks_opinion(subject) or not asks_for_facts(subject))) else None
    return Plan("share" if news else "open", speaker=persona.name, content=subject, hint=memory, seed=seed,
                lead=lead_for("share", subject, None, rng) if news else "", world=world, known=own, opinion=own is not None)


def plan_invite(persona: Persona, subject: str, channel: str, invitees: list[str], *, seed: int) -> Plan:
    return Plan("invite", speaker=persona.name, content=subject, channel=channel, others=tuple(invitees), seed=seed)


HOW_THEY_ARE = "how they are doing"  # a reach with no interest to name


def plan_reach(persona: Persona, friend: str, subject: str | None, *, seed: int) -> Plan:
    """A private message to a friend, made from the plan: something both care about (`subject`),
    else how they are."""
    return Plan("reach", speaker=persona.name, content=subject or HOW_THEY_ARE, to=friend, seed=seed)
