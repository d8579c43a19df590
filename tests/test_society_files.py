"""The bundled society files load through the schema and have the shape the scheduler relies on:
distinct casts, spread-out traits, rhythms that leave nobody alone at any hour, home channels
that exist. And the schema refuses malformed documents."""

from __future__ import annotations

import copy
import statistics
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from townsquare.agents.society.persona import Society, bundled_societies, load_society

TRAITS = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")


@pytest.fixture(scope="module")
def village() -> Society:
    return load_society("village")


@pytest.fixture(scope="module")
def city() -> Society:
    return load_society("city")


def awake_count(society: Society, hour: int) -> int:
    return sum(agent.rhythm.awake(hour) for agent in society.agents)


def test_both_are_bundled() -> None:
    assert {"village", "city"} <= set(bundled_societies())


@pytest.mark.parametrize("name, agents, channels, topics", [("village", 5, (3, 4), 20), ("city", 25, (6, 8), 40)])
def test_counts(name: str, agents: int, channels: tuple[int, int], topics: int) -> None:
    society = load_society(name)
    assert len(society.agents) == agents
    assert channels[0] <= len(society.channels) <= channels[1]
    assert len(society.revival_topics) >= topics
    assert len(set(society.revival_topics)) == len(society.revival_topics)
    assert society.guild and society.description


@pytest.mark.parametrize("name", ["village", "city"])
def test_cast_is_complete_and_unique(name: str) -> None:
    society = load_society(name)
    assert len({a.name for a in society.agents}) == len(society.agents)
    assert len({a.username for a in society.agents}) == len(society.agents)
    for agent in society.agents:
        assert len(agent.bio) < 300, agent.name
        assert 3 <= len(agent.interests) <= 6, agent.name
        assert len(set(agent.interests)) == len(agent.interests), agent.name
        assert agent.style, agent.name
        assert agent.model == "default"
        assert agent.home_channels, agent.name


def test_casts_do_not_share_names(village: Society, city: Society) -> None:
    assert not {a.username for a in village.agents} & {a.username for a in city.agents}


@pytest.mark.parametrize("name", ["village", "city"])
def test_trait_spread(name: str) -> None:
    society = load_society(name)
    extraversion = [a.traits.extraversion for a in society.agents]
    assert statistics.pstdev(extraversion) > 0.15
    for trait in TRAITS:
        values = [getattr(a.traits, trait) for a in society.agents]
        assert statistics.pstdev(values) > 0.05, trait
    # no two agents share the same five traits
    assert len({tuple(getattr(a.traits, t) for t in TRAITS) for a in society.agents}) == len(society.agents)


def test_city_has_introverts_and_extraverts(city: Society) -> None:
    extraversion = [a.traits.extraversion for a in city.agents]
    assert sum(e <= 0.3 for e in extraversion) >= 3
    assert sum(e >= 0.85 for e in extraversion) >= 3


def test_city_is_never_alone(city: Society) -> None:
    counts = {hour: awake_count(city, hour) for hour in range(24)}
    assert min(counts.values()) >= 3, counts
    # some night owls: awake at 3 a.m. by choice, not only everyone at noon
    assert sum(1 for a in city.agents if a.rhythm.awake(3)) >= 3
    assert len({a.rhythm.peak for a in city.agents}) >= 8


def test_village_daytime_is_covered(village: Society) -> None:
    for hour in range(8, 23):
        assert awake_count(village, hour) >= 1, hour
    assert len({(a.rhythm.wake, a.rhythm.sleep, a.rhythm.peak) for a in village.agents}) == len(village.agents)


def test_city_interests_overlap_into_groups(city: Society) -> None:
    """Interests are shared (subgroups can form) but no single interest is everyone's."""
    shared: dict[str, int] = {}
    for agent in city.agents:
        for interest in agent.interests:
            shared[interest] = shared.get(interest, 0) + 1
    common = [i for i, n in shared.items() if n >= 3]
    assert len(common) >= 8
    assert max(shared.values()) <= len(city.agents) // 2
    # every agent shares at least one interest with someone else
    for agent in city.agents:
        assert any(shared[i] >= 2 for i in agent.interests), agent.name


@pytest.mark.parametrize("name", ["village", "city"])
def test_home_channels_exist_and_are_used(name: str) -> None:
    society = load_society(name)
    channels = {c.name for c in society.channels}
    used: set[str] = set()
    for agent in society.agents:
        assert set(agent.home_channels) <= channels
        used |= set(agent.home_channels)
    assert used == channels  # no channel is nobody's home
    assert all(c.topic for c in society.channels)


# --- the schema refuses malformed documents ----------------------------------------------------

@pytest.fixture()
def document() -> dict:
    path = bundled_societies()["village"]
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_the_raw_document_validates(document: dict) -> None:
    Society.model_validate(document)


def test_rejects_unknown_key(document: dict) -> None:
    bad = copy.deepcopy(document)
    bad["agents"][0]["favourite_colour"] = "blue"
    with pytest.raises(ValidationError, match="favourite_colour"):
        Society.model_validate(bad)
    bad = copy.deepcopy(document)
    bad["mayor"] = "nobody"
    with pytest.raises(ValidationError):
        Society.model_validate(bad)


def test_rejects_trait_out_of_range(document: dict) -> None:
    bad = copy.deepcopy(document)
    bad["agents"][0]["traits"]["extraversion"] = 1.5
    with pytest.raises(ValidationError, match="extraversion"):
        Society.model_validate(bad)


def test_rejects_duplicate_names(document: dict) -> None:
    bad = copy.deepcopy(document)
    bad["agents"][1]["name"] = bad["agents"][0]["name"]
    with pytest.raises(ValidationError, match="unique"):
        Society.model_validate(bad)
    # usernames collide too: case and spacing do not make a different agent
    bad = copy.deepcopy(document)
    bad["agents"][1]["name"] = bad["agents"][0]["name"].upper().replace(" ", "  ")
    with pytest.raises(ValidationError, match="unique"):
        Society.model_validate(bad)


def test_rejects_unknown_home_channel(document: dict) -> None:
    bad = copy.deepcopy(document)
    bad["agents"][0]["home_channels"] = ["general", "casino"]
    with pytest.raises(ValidationError, match="casino"):
        Society.model_validate(bad)


def test_rejects_bad_name(document: dict) -> None:
    bad = copy.deepcopy(document)
    bad["agents"][0]["name"] = "Ma<ren>"
    with pytest.raises(ValidationError):
        Society.model_validate(bad)


def test_load_by_path_rejects_bad_file(tmp_path: Path, document: dict) -> None:
    bad = copy.deepcopy(document)
    bad["agents"][0]["traits"]["neuroticism"] = -0.2
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(bad), encoding="utf-8")
    with pytest.raises(ValidationError):
        load_society(path)
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(document), encoding="utf-8")
    assert len(load_society(good).agents) == 5
    with pytest.raises(FileNotFoundError):
        load_society(tmp_path / "missing.yaml")
