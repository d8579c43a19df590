"""The invented-tie guard: an agent never states a relationship, or a fact about someone, that
its memory does not support.

Small models love to invent ("my best friend Ana", "Ana's husband", "Ana works at the mill").
Before a reply is posted, the claims it makes about other members are checked:

- ties: friend, enemy, family, partner, colleague, "I love/hate Ana" — supported only by the
  relationship record (friendship and dislike follow the numbers) or, for family, partners and
  colleagues, by the agent's own bio or a remembered fact;
- facts: "Ana works at / lives in / likes / is a ..." — supported only by a remembered fact
  with that subject and object, or a memory about that person that contains the object.

Sentences making an unsupported claim are dropped; if nothing is left, the reply is rejected
(the turn retries once differently, then stays silent).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..mind.relations import Bond
from .facts import extract_facts

_FRIEND = r"(?:best friend|friend|bestie|buddy|pal|mate|bff)"
_FOE = r"(?:enemy|nemesis|rival)"
_KIN = (r"(?:wife|husband|partner|girlfriend|boyfriend|fiancee?|sister|brother|mother|father|mom|mum|dad|son|daughter|"
        r"cousin|aunt|uncle|grandmother|grandfather|grandma|grandpa|niece|nephew|boss|colleague|coworker|co-worker|roommate|"
        r"flatmate|ex)")


@dataclass(frozen=True)
class Claim:
    kind: str  # friend | foe | love | hate | kin | fact
    name: str
    detail: str
    sentence: str


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


GUARDED_FACTS = ("lives in", "works at", "is from", "likes", "dislikes")  # "is a" / "has a" are opinions as often as facts


def find_claims(text: str, *, own_name: str, members: Iterable[str]) -> list[Claim]:
    lowered = text.lower()
    # only the members named in the text (by full or first name): a society may know hundreds
    names = sorted({n for n in members if n and n != own_name and len(n) >= 2 and n.split()[0].lower() in lowered},
                   key=len, reverse=True)
    if not names:
        return []
    out: list[Claim] = []
    for sentence in _sentences(text):
        for name in names:
            n = rf"@?{re.escape(name)}\b"
            first = rf"@?{re.escape(name.split()[0])}\b" if " " in name else n
            who = rf"(?:{n}|{first})(?!'s)"
            checks = [
                ("friend", rf"(?i)\bmy (?:good |old |dear |close )?{_FRIEND}s?,? (?:[\w@]+ and )?{who}|{who} is my (?:good |old |dear |close )?{_FRIEND}|"
                           rf"{who},? my (?:good |old |dear |close )?{_FRIEND}\b|"
                           rf"{who} and I (?:are|have been) (?:good |close |old |best )?(?:friends|close|inseparable)"),
                ("foe", rf"(?i)\bmy (?:old )?{_FOE},? {who}|{who} is my (?:old )?{_FOE}"),
                ("kin", rf"(?i)\bmy ({_KIN}),? {who}|{who} is my ({_KIN})\b|{who},? my ({_KIN})\b|(?:{n}|{first})'s ({_KIN})\b|"
                        rf"{who} and I are (married|engaged|dating|siblings|cousins)"),
                ("love", rf"(?i)\bI (?:really )?(?:love|adore) {who}"),
                ("hate", rf"(?i)\bI (?:really )?(?:hate|can't stand|cannot stand|despise|loathe) {who}"),
            ]
            for kind, pattern in checks:
                found = re.search(pattern, sentence)
                if found:
                    detail = next((g for g in found.groups() if g), kind) if found.groups() else kind
                    out.append(Claim(kind, name, detail.lower(), sentence))
        for fact in extract_facts(sentence, speaker=own_name, members=names):
            if fact.subject != own_name and fact.predicate in GUARDED_FACTS:
                out.append(Claim("fact", fact.subject, f"{fact.predicate} {fact.object}", sentence))
    return out


def supported(claim: Claim, *, bond: Bond | None, bio: str, knowledge: Iterable[str]) -> bool:
    """`bond`: the agent's relationship to the person; `knowledge`: texts of what the agent
    remembers about them (facts and observations)."""
    known = [k.lower() for k in knowledge]
    if claim.kind == "friend":
        return bond is not None and bond.affinity >= 0.3 and bond.familiarity >= 0.25
    if claim.kind == "love":
        return bond is not None and bond.affinity >= 0.45 and bond.familiarity >= 0.35
    if claim.kind in ("foe", "hate"):
        return bond is not None and bond.affinity <= -0.35
    if claim.kind == "kin":
        first = claim.name.split()[0].lower()
        return (first in bio.lower() and claim.detail in bio.lower()) or any(first in k and claim.detail in k for k in known)
    if claim.kind == "fact":
        obj = claim.detail.split(" ", 2)[-1] if claim.detail.startswith(("lives in", "works at", "is from")) else claim.detail.split(" ", 1)[-1]
        return any(obj in k for k in known)
    return False


def guard(text: str, *, own_name: str, names: Mapping[str, int], bonds: Mapping[int, Bond | None], bio: str,
          knowledge: Mapping[int, Iterable[str]]) -> tuple[str | None, list[Claim]]:
    """Returns (text without its unsupported claims, or None if nothing is left; the dropped claims).
    `names`: display name -> user id of the members the agent may talk about."""
    claims = find_claims(text, own_name=own_name, members=names)
    dropped = [c for c in claims if not supported(c, bond=bonds.get(names[c.name]), bio=bio,
                                                  knowledge=knowledge.get(names[c.name], ()))]
    if not dropped:
        return text, []
    bad = {c.sentence for c in dropped}
    kept = " ".join(s for s in _sentences(text) if s not in bad).strip()
    return (kept or None), dropped
