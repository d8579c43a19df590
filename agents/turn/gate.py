"""The quality gate: every candidate line passes it before it is posted, or it is not posted.

A small local model, asked for one agent's line, often writes something else: another member's
line ("Priya Nair: ..."), a line about itself in the third person or addressed to itself, the
assistant's voice ("Certainly! I'll reply as ..."), a recital of its instructions or persona, an
echo of the message it answers, something off the subject, an invented biography, a repeat of
what it or its partner just said, or half a sentence. `judge` names the first such failure (one
reason per rejection, counted in the LLM-call records: the reasons are the label values of
`platform/core/metrics.GATE_REASONS`) or returns the cleaned line.

Cleaning is deliberately narrow: special tokens, quotes, the agent's *own* name prefix, a trailing
continuation with another speaker's line, and an unfinished last sentence are removed; anything
else that fails is rejected, never repaired into something the model did not say.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..memory.guard import guard
from ..mind.relations import Bond
from .roster import Roster, present_first
from .text import five_grams, norm, sentences, similarity, stems

MAX_REPLY = 320  # characters of a posted line: one or two chat sentences

_SPECIAL = re.compile(r"<\|[^|>]{1,20}\|>|</?s>|\[/?INST\]")
# "Name:" / "**Name**:" / "Name (checking notes):" at the start of a line
_NAME_WORD = r"[^\W\d_][\w.'\-]*"  # a word of a name, in any script
_SPEAKER = re.compile(rf"^\s*[*_]{{0,2}}@?({_NAME_WORD}(?: {_NAME_WORD}){{0,2}})[*_]{{0,2}}\s*(?:\([^)]{{0,40}}\))?\s*[:：]\s*")
_LATER_SPEAKER = re.compile(rf"(?:\n|\s{{2,}}|(?<=[.!?])\s)[*_]{{0,2}}@?({_NAME_WORD}(?: {_NAME_WORD}){{0,2}})[*_]{{0,2}}\s*"
                            rf"(?:\([^)]{{0,40}}\))?\s*[:：]\s")
_MENTION = re.compile(r"<(?:@[!&]?|#)\d+>")
_ASSISTANT = re.compile(
    r"(?i)\b(?:as an? (?:ai|artificial|language model|assistant|chatbot|virtual)|language model|i(?:'m| am) (?:just )?an? (?:ai|assistant|bot|chatbot)|"
    r"i apologi[sz]e|certainly[!,]|sure[!,] here|here(?:'s| is) (?:a|an|my|the) (?:response|reply|message|possible|short)|"
    r"i(?:'ll| will) (?:reply|respond|answer|write) as|(?:reply|respond) as (?!soon|quickly|fast|well|much|often)|in character|"
    r"as requested|hope this helps|how (?:can|may) i assist|how can i help you today|"
    r"i (?:do not|don't) have (?:personal (?:information|experiences?|opinions?|feelings)|any personal|the ability)|"
    r"i (?:cannot|can't) (?:provide|assist|browse|access)|as a helpful|^\s*(?:response|reply|answer|message|output)\s*:|"
    r"\(note:|\bnote:|the user|the assistant|\bAI model\b|openai|chatgpt|"
    r"the (?:story|text|passage|context|conversation|chat log|prompt) (?:does(?:n't| not)|doesn't|provides|mentions|says))")
_RECITAL_START = re.compile(r"(?i)^(?:you(?:'re| are) (?:a|an) |your (?:way|name|role|bio|persona|style)\b|my name is\b)")
_INSTRUCTION_WORDS = re.compile(
    r"(?i)\b(?:one or two sentences|first person|name prefix|no lists|your next message|recent conversation|your way of speaking|"
    r"speaking style|in the persona|the persona|write (?:one|a) (?:short )?(?:chat )?message|the plan says|dialogue act|"
    r"stay in character|your reply|the channel has been quiet|^speaks in|^cares about|chat log of)")
_TERMINAL = ".!?…)\"'”’*~😊🙂😄😂❤\ufe0f👍🎉🌻🍞🌱🐝"
_DANGLING = re.compile(r"(?i)\b(?:and|or|but|the|a|an|to|of|with|for|my|your|is|are|was|that|because|so|if|when|at|in|on)$")

# invented biography: a personal claim the bio does not back (extends memory/guard.py, which
# checks claims about *other* members)
_KIN_SELF = re.compile(r"(?i)\bmy (wife|husband|partner|girlfriend|boyfriend|fianc[eé]e?|kids?|children|sons?|daughters?|"
                       r"grand(?:son|daughter|kids|children)|mum|mom|mother|dad|father|brother|sister|twins?)\b")
# a trade claimed as what one is ("I'm a retired dentist."), not "I'm a bigger fan" / "a proper gardener"
_ROLE_SELF = re.compile(r"(?i)\bI(?:'m| am| was| work as) (?:a|an) (?:(?:retired|former|professional|young|old|local|proud|trained) )?"
                        r"([a-z]+(?:ist|er|or|ian|ant|ent|ic|eon|ess|man|woman|smith|wright|maker|chef|cook|nurse|doctor|vet))\b"
                        r"(?=\s*(?:[.,;!?]|$|and\b|at\b|in\b|who\b|for\b|by\b|from\b|with\b))")
_ORIGIN_SELF = re.compile(r"\b[Ii](?:'m| am) (?:originally )?(?:from|born in) ([A-Z][\w\-]+(?: [A-Z][\w\-]+)?)")
_NATION_SELF = re.compile(r"(?i)\bI(?:'m| am) (?:an? )?(korean|chinese|japanese|american|british|english|french|german|italian|spanish|"
                          r"indian|russian|mexican|brazilian|canadian|australian|irish|scottish|dutch|swedish|polish|nigerian|"
                          r"ghanaian|kenyan|egyptian|turkish|greek|portuguese|vietnamese|thai|filipino)\b")
_KIN_FAMILY = {"wife": ("wife", "married", "widow"), "husband": ("husband", "married", "widow"),
               "kid": ("kid", "child", "son", "daughter", "mother", "father", "parent"),
               "child": ("kid", "child", "son", "daughter", "mother", "father", "parent")}
_ROLE_OK = {"fan", "lover", "believer", "member", "regular", "beginner", "customer", "neighbour", "neighbor", "listener",
            "reader", "runner", "walker", "gardener", "cook", "baker", "fighter", "worrier", "planner", "sucker", "dreamer",
            "optimist", "pessimist", "perfectionist", "early riser", "night owl"}


@dataclass(frozen=True)
class GateContext:
    """What a candidate is judged against."""

    own_name: str
    members: Sequence[str] = ()  # display names of the other members (people present first)
    roster: Roster | None = None  # the rest of the society, indexed: only the members a line names are checked
    bio: str = ""
    prompt_texts: Sequence[str] = ()  # the persona and instruction texts of the prompt (recital)
    answering: str | None = None  # the message it answers (parrot, off-topic)
    subject: str | None = None  # what the plan says the line is about (off-topic for openers)
    own_recent: Sequence[str] = ()  # the agent's own recent lines (loop)
    others_recent: Sequence[str] = ()  # recent lines of the channel by others, the partner's included (loop)
    names_to_ids: Mapping[str, int] = field(default_factory=dict)  # the invented-tie guard
    bonds: Mapping[int, Bond | None] = field(default_factory=dict)
    knowledge: Mapping[int, Iterable[str]] = field(default_factory=dict)
    relevance: Callable[[str, str], float] | None = None  # cosine of two texts (embeddings)
    relevance_floor: float = 0.0  # below this against both `answering` and `subject`: off-topic
    lead: str = ""  # the plan's first words of the line: not counted as a repeat of other lines that start alike


@dataclass(frozen=True)
class Verdict:
    text: str | None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.text is not None


def _first(name: str) -> str:
    return (name.split() or [""])[0]


def _strip_own_prefix(text: str, own_name: str) -> str:
    match = _SPEAKER.match(text)
    if match and match.group(1).lower() in {own_name.lower(), _first(own_name).lower()}:
        return text[match.end():]
    return text


def clean(text: str, own_name: str) -> str:
    """The mechanical part: tokens, quotes, the agent's own name prefix, whitespace."""
    text = _SPECIAL.sub("", text or "")
    text = _strip_own_prefix(text.strip().strip('"“”').strip(), own_name)
    cut = _LATER_SPEAKER.search(text)  # the model went on with the next speaker's line: that part is not ours
    if cut:
        text = text[:cut.start()]
    text = " ".join(_MENTION.sub("", text).split()).strip().strip('"“”').strip()
    if text.endswith(")") and text.count(")") > text.count("("):  # the close of the prompt's stage direction, copied
        text = text[:-1].rstrip()
    return text


def finish(text: str) -> str | None:
    """The line ending at its last whole sentence, or None when no whole sentence is left."""
    if len(text) > MAX_REPLY:
        text = text[:MAX_REPLY]
    if text and text[-1] in _TERMINAL and not _DANGLING.search(text.rstrip(_TERMINAL)):
        return text
    ends = [m.end() for m in re.finditer(r"[.!?…](?=\s|$)", text)]
    if ends and ends[-1] >= 12:
        return text[:ends[-1]].strip()
    return None


def _known(name: str, ctx: GateContext) -> bool:
    lowered = name.lower()
    return any(lowered in (m.lower(), _first(m).lower()) for m in ctx.members if m.strip()) or (
        ctx.roster is not None and ctx.roster.knows(name))


def _speaks_as_other(text: str, ctx: GateContext) -> bool:
    match = _SPEAKER.match(text)
    if match and (match.group(1)[0].isupper() or _known(match.group(1), ctx)):
        return True  # a speaker prefix that is not the agent's own (that one was stripped)
    own = _first(ctx.own_name).lower()
    for name in present_first(ctx.members, ctx.roster, text[:200]):
        first = _first(name).lower()
        if not first or first == own:
            continue
        who = re.escape(first)
        if re.match(rf"(?i)^\*?\(?(?:(?:as|this is|it's) {who}\b|{who}(?: \w+)? (?:here|speaking)\b|{who} (?:says|replies|writes)\b)",
                    text):
            return True
    return False


def _own_name_use(text: str, own_name: str, members: Sequence[str]) -> str | None:
    """'self_address' for the agent's name as a vocative or @mention, 'self_reference' for its
    name used about itself; None when another member shares the first name (then it may be them)."""
    first = _first(own_name)
    if not first or any(_first(m).lower() == first.lower() for m in members if m.lower() != own_name.lower()):
        return None
    # case-sensitive: "I will bring it" is not Will, "a rose" is not Rose; "Theo's jazz night" said
    # by Theo is about himself too
    pattern = rf"(?<![\w'])@?(?:{re.escape(own_name)}|{re.escape(first)})(?![\w]|'(?!s\b))"
    found = list(re.finditer(pattern, text))
    if not found:
        return None
    for match in found:
        before, after = text[:match.start()].rstrip(), text[match.end():].lstrip()
        if match.group(0).startswith("@") or before.endswith((",", "Hi", "Hey", "hi", "hey", "Dear", "dear", "Thanks", "thanks",
                                                             "Thank you", "you")) or after[:1] in (",", "!", "?") or \
                (after[:1] in (".", "") and before.endswith(",")):
            return "self_address"
    return "self_reference"


_MEMORY_FORM = re.compile(r"(?i)\bsaid in #[\w-]+\s*:")  # how memories are written in the prompt ("Sam said in #fitness: ...")


def _recites(text: str, ctx: GateContext) -> bool:
    if _RECITAL_START.search(text) or _INSTRUCTION_WORDS.search(text) or _MEMORY_FORM.search(text):
        return True
    grams = five_grams(text, n=4)
    if not grams:
        return False
    prompt_grams: set[tuple[str, ...]] = set()
    for source in ctx.prompt_texts:
        prompt_grams |= five_grams(source, n=4)
    return len(grams & prompt_grams) / len(grams) >= 0.34


def reciting_sentences(text: str, ctx: GateContext) -> list[str]:
    """Sentences of a longer line that repeat the persona or the prompt ("You're an old man who
    keeps boxes of old photographs and parish records."): at least half of their word 4-grams
    come from it (the whole-line test misses one such sentence among others)."""
    prompt_grams: set[tuple[str, ...]] = set()
    for source in ctx.prompt_texts:
        prompt_grams |= five_grams(source, n=4)
    bad = []
    for sentence in sentences(text):
        grams = five_grams(sentence, n=4)
        copied = len(grams & prompt_grams)
        if copied >= 2 and copied / len(grams) >= 0.5:
            bad.append(sentence)
    return bad


def _parrots(text: str, answering: str | None, lead: str = "") -> bool:
    """An echo of the message it answers: contained in it, or close to it while adding almost
    nothing of its own (an answer may repeat the question's words, not only them). The plan's
    first words ("Hmm, I'm not sure,") are not the speaker's own addition."""
    if not answering:
        return False
    text = text[len(lead):] if lead and text.startswith(lead) else text
    mine, theirs = stems(text), stems(answering)
    if len(mine - theirs) <= 1 and len(mine & theirs) >= 4:  # "I think it makes a pixel-art puzzle game, but what does that mean?"
        return True
    a, b = norm(text), norm(answering)
    if not a or not b:
        return False
    if a in b or (len(b.split()) >= 4 and b in a and len(a.split()) <= len(b.split()) + 4):
        return True
    new = {w for w in a.split() if len(w) > 3} - set(b.split())
    close = similarity(text, answering)
    mine = five_grams(text, n=4)
    copied = len(mine & five_grams(answering, n=4)) / len(mine) if mine else 0.0
    return close >= 0.8 or ((close >= 0.55 or copied >= 0.5) and len(new) < 2)


def _loops(text: str, ctx: GateContext) -> bool:
    earlier = [*ctx.own_recent, *ctx.others_recent]
    if any(similarity(text, other) >= 0.7 for other in earlier):
        return True
    own = text[len(ctx.lead):] if ctx.lead and text.startswith(ctx.lead) else text  # the plan's words repeat by design
    mine = five_grams(own)
    return any(mine & five_grams(other) for other in earlier)


def invented_self_facts(text: str, bio: str) -> list[str]:
    """Sentences claiming a family, a trade or an origin the persona's bio does not give it."""
    bio_l = bio.lower()
    bad: list[str] = []
    for sentence in sentences(text):
        for match in _KIN_SELF.finditer(sentence):
            kin = match.group(1).lower().rstrip("s")
            allowed = _KIN_FAMILY.get(kin, (kin,))
            if not any(word in bio_l for word in allowed):
                bad.append(sentence)
                break
        else:
            role = _ROLE_SELF.search(sentence)
            if role and role.group(1).lower() not in _ROLE_OK and role.group(1).lower()[:5] not in bio_l:
                bad.append(sentence)
                continue
            origin = _ORIGIN_SELF.search(sentence)
            if origin and origin.group(1).lower() not in bio_l:
                bad.append(sentence)
                continue
            nation = _NATION_SELF.search(sentence)
            if nation and nation.group(1).lower()[:4] not in bio_l:
                bad.append(sentence)
    return bad


def _drop_sentences(text: str, bad: Iterable[str]) -> str:
    drop = set(bad)
    return " ".join(s for s in sentences(text) if s not in drop).strip()


_ANSWERS_NOBODY = re.compile(r"(?i)^(?:(?:ah|oh|well|hmm),?\s+)?(?:yes|no|yeah|nope|not really|i agree|same here|exactly|true|thanks|"
                             r"thank you)(?:[,.!]|\s*$)")


def _off_topic(text: str, ctx: GateContext) -> bool:
    if ctx.answering is None and _ANSWERS_NOBODY.match(text):
        return True  # an opener that answers a message nobody wrote
    if ctx.relevance is None or ctx.relevance_floor <= 0:
        return False
    anchors = [a for a in (ctx.answering, ctx.subject) if a and a.strip()]
    if not anchors:
        return False
    return max(ctx.relevance(text, a) for a in anchors) < ctx.relevance_floor


def judge(candidate: str | None, ctx: GateContext) -> Verdict:
    """The postable line, or the reason it may not be posted. Sentences claiming invented facts
    are dropped first, so every other check sees the line as it would be posted."""
    text = clean(candidate or "", ctx.own_name)
    if sum(ch.isalpha() for ch in text) < 3:
        return Verdict(None, "empty")
    if _speaks_as_other(text, ctx):
        return Verdict(None, "wrong_voice")
    if _ASSISTANT.search(text):
        return Verdict(None, "assistant_speak")
    if _recites(text, ctx):
        return Verdict(None, "recital")
    finished = finish(text)
    if finished is None:
        return Verdict(None, "unfinished")
    text = finished
    invented = [*invented_self_facts(text, ctx.bio), *reciting_sentences(text, ctx)]
    if invented:
        text = _drop_sentences(text, invented)
    if text and ctx.names_to_ids:
        names = ctx.names_to_ids if ctx.roster is None else {  # the members this line names, not the whole society
            n: ctx.names_to_ids[n] for n in present_first(ctx.members, ctx.roster, text) if n in ctx.names_to_ids}
        kept, _ = guard(text, own_name=ctx.own_name, names=names, bonds=ctx.bonds, bio=ctx.bio,
                        knowledge=ctx.knowledge)
        text = kept or ""
    if sum(ch.isalpha() for ch in text) < 8:
        return Verdict(None, "invented_fact")
    namesakes = ctx.members if ctx.roster is None else [*ctx.members, *ctx.roster.sharing_first(_first(ctx.own_name))]
    own = _own_name_use(text, ctx.own_name, namesakes)
    if own:
        return Verdict(None, own)
    if _parrots(text, ctx.answering, ctx.lead):
        return Verdict(None, "parrot")
    if _loops(text, ctx):
        return Verdict(None, "loop")
    if _off_topic(text, ctx):
        return Verdict(None, "off_topic")
    return Verdict(text)
