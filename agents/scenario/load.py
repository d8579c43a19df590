"""Reading a scenario file: YAML, validated, with errors that name the line and the field.

PyYAML's node tree keeps each value's position, so a pydantic error's location (a path of keys
and indexes) is walked down that tree to the deepest node that exists: the line reported is
where the faulty value is, or where the mapping that misses a field starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..society.persona import Society, load_society
from .model import Intervention, Scenario

BUNDLED = Path(__file__).parent / "scenarios"


class ScenarioError(ValueError):
    """A scenario that cannot be used: `line` (1-based, None when unknown), `field` (dotted path)."""

    def __init__(self, message: str, *, line: int | None = None, field: str | None = None, source: str | None = None) -> None:
        self.line, self.field, self.message, self.source = line, field, message, source
        where = ":".join(str(p) for p in (source, line) if p is not None)
        super().__init__(f"{where + ': ' if where else ''}{field + ': ' if field else ''}{message}")


def _node_at(node: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    """The deepest node along `loc` (pydantic's location; union tags such as 'tell' are skipped)."""
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)), None)
            if found is None:
                if isinstance(part, str) and not any(isinstance(k, yaml.ScalarNode) and k.value == part for k, _ in node.value):
                    continue  # a discriminator tag or a missing field: stay on this mapping
                return node
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return node
            node = node.value[part]
        else:
            continue
    return node


def _field(loc: tuple[Any, ...], data: Any) -> str:
    """A dotted path of keys and indexes, without pydantic's union tags."""
    out: list[str] = []
    cur = data
    for part in loc:
        if isinstance(cur, dict) and isinstance(part, str) and part not in cur and part in _TAGS:
            continue  # "timeline.0.tell.agent": the tag is the entry's kind, not a key
        out.append(str(part))
        cur = cur.get(part) if isinstance(cur, dict) else cur[part] if isinstance(cur, list) and isinstance(part, int) and part < len(cur) else None
    return ".".join(out)


_TAGS = {"tell", "news", "add_agent", "remove_agent", "pause_agent", "mute_agent", "resume_agent", "change_agent", "open_channel",
         "close_channel", "inject_document", "knows", "stance", "sentiment"}


def _message(error: dict[str, Any]) -> str:
    msg = str(error.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


def parse_scenario(text: str, source: str | None = None) -> Scenario:
    """A scenario from YAML text; ScenarioError names the line and field of the first problem."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ScenarioError(f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
                            line=mark.line + 1 if mark is not None else None, source=source) from None
    if not isinstance(data, dict):
        raise ScenarioError("a scenario is a mapping (name, society, duration, timeline, questions, ...)",
                            line=root.start_mark.line + 1 if root is not None else 1, source=source)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error.get("loc", ()))
        raise ScenarioError(_message(error), line=_line(root, loc), field=_field(loc, data) or None, source=source) from None
    late = scenario.late_entry()
    if late is not None:
        entry = scenario.timeline[late]
        key = "at_real" if entry.at_real is not None else "at"
        raise ScenarioError(f"after the end of the run (duration {scenario.duration:g} simulated seconds at speed {scenario.sim_speed:g})",
                            line=_line(root, ("timeline", late, key)), field=f"timeline.{late}.{key}", source=source)
    return scenario


def _line(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    node = _node_at(root, loc)
    return node.start_mark.line + 1 if node is not None else None


def load_scenario(name_or_path: str | Path) -> tuple[Scenario, Path | None]:
    """A bundled scenario by name or a YAML file by path; also the folder its relative paths start
    from. The society it names is read too, and the agents and channels the timeline names are
    looked up in it (a typo fails now, with its line, not an hour into the run)."""
    path = BUNDLED / f"{name_or_path}.yaml" if (BUNDLED / f"{name_or_path}.yaml").is_file() else Path(name_or_path)
    if not path.is_file():
        bundled = sorted(p.stem for p in BUNDLED.glob("*.yaml"))
        raise ScenarioError(f"no scenario {str(name_or_path)!r} (a YAML file, or bundled: {', '.join(bundled) or 'none'})")
    text = path.read_text(encoding="utf-8")
    scenario = parse_scenario(text, source=str(path))
    check_references(scenario, text, path.parent, source=str(path))
    return scenario, path.parent


def society_of(scenario: Scenario, base_dir: Path | None) -> Society:
    """The society a scenario runs on: a bundled name, or a file relative to the scenario's folder."""
    name = scenario.society
    if base_dir is not None and (base_dir / name).is_file():
        name = str(base_dir / name)
    return load_society(name)


def check_references(scenario: Scenario, text: str, base_dir: Path | None, source: str | None = None) -> None:
    """Every agent and channel the timeline names exists in the society (or was added or opened
    by an earlier entry); documents given by path can be read."""
    root = yaml.compose(text)
    try:
        society = society_of(scenario, base_dir)
    except (FileNotFoundError, ValidationError, yaml.YAMLError) as exc:
        raise ScenarioError(f"the society cannot be read: {str(exc).splitlines()[0]}", line=_line(root, ("society",)), field="society",
                            source=source) from None
    agents = {a.name.lower() for a in society.agents}
    channels = {c.name for c in society.channels}
    entries = sorted(enumerate(scenario.timeline), key=lambda ie: (ie[1].real_offset(scenario.sim_speed), ie[0]))
    for i, entry in entries:
        def fail(key: str, message: str) -> None:
            raise ScenarioError(message, line=_line(root, ("timeline", i, key)), field=f"timeline.{i}.{key}", source=source)

        named = [getattr(entry, "agent", None)] + (list(entry.agents) if isinstance(getattr(entry, "agents", None), list) else [])
        for ref in (r for r in named if r is not None):
            if ref.lower() not in agents and not ref.isdigit():
                fail("agent" if getattr(entry, "agent", None) == ref else "agents", f"no agent {ref!r} in the society {scenario.society}")
        channel = getattr(entry, "channel", None)
        if entry.kind == "open_channel":
            channels.add(str(channel))
        elif channel is not None and channel.lstrip("#") not in channels and not channel.isdigit():
            fail("channel", f"no channel {channel!r} in the society {scenario.society}")
        if entry.kind == "add_agent":
            agents.add(entry.persona.name.lower())  # type: ignore[attr-defined]
        if entry.kind == "inject_document" and entry.path is not None:  # type: ignore[attr-defined]
            doc = (base_dir or Path(".")) / entry.path  # type: ignore[attr-defined]
            if not doc.is_file():
                fail("path", f"no document {entry.path!r} (paths are relative to the scenario file)")  # type: ignore[attr-defined]


def parse_intervention(data: Any) -> Any:
    """One timeline entry (the admin route's body), validated with the scenario's own schema."""
    from pydantic import TypeAdapter

    return TypeAdapter(Intervention).validate_python(data)
