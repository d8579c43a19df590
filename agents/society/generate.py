"""Societies of any size from a seeded generator, for scale tests and benchmarks.

`generate(n, seed)` returns a valid `Society` of `n` varied agents: names drawn without repeats
from first and last names of many origins, Big Five traits spread around the middle, interests
from overlapping circles (food, music, tech, ...), each circle with its own channel, rhythms
that keep someone awake at every hour. Follower spreads follow what real group chats show: a
few popular channels and a long tail (circle sizes fall off as 1/rank), about half of the
society in #general, and one agent in ten with no home channels at all (who reads everything).
The same (n, seed) always gives the same society.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import yaml

from .persona import MAX_SOCIETY_AGENTS, Society

FIRST = ("Amara Jun Lucia Tomas Priya Omar Hana Kofi Ingrid Mateo Aisha Lars Mei Diego Zara Nikolai Leila Kenji Fatima Hugo "
         "Sofia Ravi Chloe Emeka Yara Felix Nadia Arjun Elena Samir Noor Pablo Greta Tariq Ines Jonas Keiko Malik Rosa Viktor "
         "Anika Bruno Dalia Ezra Farah Goran Hiro Isla Jamal Kira Luca Maya Nico Olga Pedro Quinn Rania Sven Tala Uma Vera "
         "Wen Ximena Yusuf Zofia Ada Bilal Carmen Dev Esme Femi Gia Hamid Ilse Jae Kamal Lina Marek Nia Oskar").split()
LAST = ("Okafor Park Ferraro Novak Nair Haddad Sato Mensah Berg Alvarez Khan Larsen Chen Morales Ahmed Petrov Rahimi Tanaka "
        "Diallo Laurent Rossi Iyer Martin Eze Saleh Weber Popescu Gupta Ivanova Aziz Kaur Ortiz Lindqvist Farouk Silva Meyer "
        "Kimura Osei Costa Horvat Mehta Brun Yilmaz Abara Fischer Kowalski Nguyen Banda Moreau Reyes Schmidt Ali Dubois "
        "Jensen Ramos Kato Boateng Svensson Hussein Lopez Nowak Das Keller Mwangi Romero Varga Suzuki Adeyemi Ricci Hansen "
        "Cruz Bakr Olsen Marin Takahashi Owusu Blanc Kovac Sharma Quispe").split()

# circle: (channel, topic, interests)
CIRCLES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("food", "Cooking, markets, street food and coffee.", ("cooking", "street food", "coffee", "baking", "spicy food", "markets")),
    ("music", "Gigs, records, instruments and the local scene.", ("live music", "vinyl records", "guitar", "jazz", "songwriting", "choir")),
    ("tech", "Programming, gadgets, games and AI.", ("programming", "open source", "AI", "gadgets", "video games", "robotics")),
    ("books", "Books, poetry, ideas and chess.", ("novels", "poetry", "history", "philosophy", "chess", "libraries")),
    ("fitness", "Running, cycling, climbing and football.", ("running", "cycling", "climbing", "yoga", "football", "swimming")),
    ("art", "Drawing, murals, photography and design.", ("drawing", "photography", "murals", "design", "architecture", "museums")),
    ("garden", "Allotments, seeds, bees and compost.", ("gardening", "bees", "compost", "seed swaps", "houseplants", "birdwatching")),
    ("family", "Kids, schools, parks and family days out.", ("parenting", "schools", "playgrounds", "family outings", "board games", "pets")),
    ("civic", "Council news, housing, transit and local politics.", ("local politics", "housing", "public transit", "recycling", "volunteering", "street safety")),
    ("film", "Films, series, the cinema club and theatre.", ("cinema", "documentaries", "theatre", "comedy", "anime", "film photography")),
    ("travel", "Trips, languages and faraway food.", ("travel", "languages", "hiking", "trains", "camping", "maps")),
    ("trade", "Shops, crafts, repairs and small business.", ("woodwork", "sewing", "bike repair", "small business", "markets", "knitting")),
)
JOBS = ("nurse", "bus driver", "teacher", "line cook", "software engineer", "librarian", "electrician", "student", "barista",
        "accountant", "shop owner", "retired postman", "paramedic", "graphic designer", "plumber", "researcher", "carer",
        "taxi driver", "baker", "pharmacist", "journalist", "gardener", "architect", "night porter")
STYLES = ("short and dry", "warm, with questions back", "chatty, lots of exclamations", "thoughtful, a little formal",
          "jokey, lowercase", "blunt and practical", "gentle and encouraging", "curious, asks for details")
OWL = (0.15, (14, 5, 23))  # share of night owls, their (wake, sleep, peak)


def _names(n: int, rng: random.Random) -> list[str]:
    pairs = [f"{f} {s}" for f, s in itertools.product(FIRST, LAST)]
    rng.shuffle(pairs)
    if n <= len(pairs):
        return pairs[:n]
    initials = [f"{f} {chr(65 + i)}. {s}" for i in range(26) for f, s in itertools.product(FIRST, LAST)]
    rng.shuffle(initials)
    return (pairs + initials)[:n]


def _unit(rng: random.Random, mean: float = 0.5) -> float:
    return round(min(1.0, max(0.0, rng.gauss(mean, 0.18))), 2)


def generate(n: int, seed: int = 1, *, guild: str | None = None, tag: str = "") -> Society:
    """A society of `n` agents (1 .. MAX_SOCIETY_AGENTS), the same for the same seed; `tag` (a
    few letters or digits) ends every name, so that several generated societies share an
    installation (user names are unique)."""
    if not 1 <= n <= MAX_SOCIETY_AGENTS:
        raise ValueError(f"a generated society has 1 to {MAX_SOCIETY_AGENTS:,} agents, not {n:,}")
    rng = random.Random(seed)
    circles = list(CIRCLES)
    rng.shuffle(circles)  # which circle is the popular one depends on the seed
    weights = [1.0 / (rank + 2) for rank in range(len(circles))]  # a long tail of smaller circles
    channels = [{"name": "general", "topic": "News, introductions and anything else."}]
    channels += [{"name": name, "topic": topic} for name, topic, _ in circles]
    agents: list[dict[str, Any]] = []
    for name in _names(n, rng):
        main = rng.choices(range(len(circles)), weights=weights)[0]
        second = rng.choices(range(len(circles)), weights=weights)[0]
        mine = {main, second}
        interests = list(dict.fromkeys([*rng.sample(circles[main][2], 3), *rng.sample(circles[second][2], rng.randint(1, 2))]))
        everything = rng.random() < 0.1
        homes = [] if everything else [*(["general"] if rng.random() < 0.45 else []), *(circles[i][0] for i in sorted(mine))]
        owl = rng.random() < OWL[0]
        wake, sleep, peak = OWL[1] if owl else (rng.randint(6, 9), rng.choice([22, 23, 0]), rng.randint(10, 21))
        job = rng.choice(JOBS)
        agents.append({
            "name": f"{name} {tag}" if tag else name,
            "bio": f"{job.capitalize()} in the neighbourhood. Into {interests[0]} and {interests[1]}; "
                   f"{rng.choice(['has lived here for years', 'moved here last spring', 'grew up two streets away', 'commutes in every day'])}.",
            "traits": {"openness": _unit(rng, 0.6), "conscientiousness": _unit(rng), "extraversion": _unit(rng),
                       "agreeableness": _unit(rng, 0.6), "neuroticism": _unit(rng, 0.4)},
            "interests": interests,
            "style": rng.choice(STYLES),
            "rhythm": {"wake": wake, "sleep": sleep, "peak": peak},
            "home_channels": homes,
        })
    topics = [f"anyone into {i} around here?" for _, _, interests in circles for i in interests[:2]]
    return Society.model_validate({"guild": guild or f"Generated {n}", "description": f"A generated society of {n} agents (seed {seed}).",
                                   "channels": channels, "agents": agents, "revival_topics": topics})


def followers(society: Society) -> dict[str, int]:
    """How many agents read each channel (those at home there and those with no home channels)."""
    everywhere = sum(1 for a in society.agents if not a.home_channels)
    return {c.name: everywhere + sum(1 for a in society.agents if c.name in a.home_channels) for c in society.channels}


def to_yaml(society: Society) -> str:
    """The society as a society file (`townsquare society seed FILE`)."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(society.model_dump(mode="json"), Dumper=dumper, sort_keys=False, allow_unicode=True, width=120)
