"""A CycloneDX 1.5 SBOM of a wheelhouse, read from the wheels themselves (their METADATA), so it
lists exactly what the bundle installs, with the sha256 of each wheel."""

from __future__ import annotations

import datetime as dt
import email.parser
import uuid
import zipfile
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name


def wheel_metadata(wheel: Path) -> Any:
    """The parsed `*.dist-info/METADATA` of a wheel (an email.message.Message)."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
        return email.parser.BytesParser().parsebytes(zf.read(name), headersonly=True)


def _licenses(meta: Any) -> list[dict[str, Any]]:
    expression = meta.get("License-Expression")
    if expression:
        return [{"expression": expression.strip()}]
    names = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    text = (meta.get("License") or "").strip()
    if not names and text and len(text) < 100 and "\n" not in text:
        names = [text]  # a short License field is a name; a long one is the license text itself
    return [{"license": {"name": n}} for n in dict.fromkeys(names)]


def _purl(name: str, version: str) -> str:
    return f"pkg:pypi/{canonicalize_name(name)}@{version}"


def _depends_on(meta: Any, present: dict[str, str]) -> list[str]:
    refs = []
    for line in meta.get_all("Requires-Dist") or []:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # an optional extra or another platform's dependency
        ref = present.get(canonicalize_name(req.name))
        if ref:
            refs.append(ref)
    return sorted(set(refs))


def build_sbom(wheels: dict[Path, str], root: str, model_packages: set[str]) -> dict[str, Any]:
    """`wheels` maps each wheel to its sha256; `root` names the application's own package, which
    becomes metadata.component; `model_packages` are typed as machine-learning models."""
    metas = {wheel: wheel_metadata(wheel) for wheel in sorted(wheels)}
    present = {canonicalize_name(m["Name"]): _purl(m["Name"], m["Version"]) for m in metas.values()}
    components: list[dict[str, Any]] = []
    dependencies: list[dict[str, Any]] = []
    app: dict[str, Any] | None = None
    for wheel, meta in metas.items():
        name, version = meta["Name"], meta["Version"]
        component: dict[str, Any] = {
            "type": "machine-learning-model" if canonicalize_name(name) in model_packages else "library",
            "bom-ref": _purl(name, version), "name": name, "version": version, "purl": _purl(name, version),
            "hashes": [{"alg": "SHA-256", "content": wheels[wheel]}],
            "properties": [{"name": "townsquare:wheel", "value": wheel.name}],
        }
        if meta.get("Summary"):
            component["description"] = meta["Summary"].strip()
        licenses = _licenses(meta)
        if licenses:
            component["licenses"] = licenses
        dependencies.append({"ref": component["bom-ref"], "dependsOn": _depends_on(meta, present)})
        if canonicalize_name(name) == canonicalize_name(root):
            app = {**component, "type": "application"}
        else:
            components.append(component)
    if app is None:
        raise ValueError(f"the wheelhouse holds no {root} wheel")
    return {
        "bomFormat": "CycloneDX", "specVersion": "1.5", "serialNumber": f"urn:uuid:{uuid.uuid4()}", "version": 1,
        "metadata": {
            "timestamp": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {"components": [{"type": "application", "name": "townsquare bundle build", "version": app["version"]}]},
            "component": app,
        },
        "components": components,
        "dependencies": dependencies,
    }
