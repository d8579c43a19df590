"""The `townsquare` command."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from ..core.config import Settings, get_settings

log = logging.getLogger("townsquare.cli")

app = typer.Typer(help="Townsquare: an offline agent society on a Discord-compatible chat platform.", no_args_is_help=True)
bot_app = typer.Typer(help="Bot users (agents and third-party bots).", no_args_is_help=True)
app.add_typer(bot_app, name="bot")
model_app = typer.Typer(help="The bundled language model.", no_args_is_help=True)
app.add_typer(model_app, name="model")
memory_app = typer.Typer(help="The agents' memory store (Chroma).", no_args_is_help=True)
app.add_typer(memory_app, name="memory")
agents_app = typer.Typer(help="Agents of the societies (instance administration).", no_args_is_help=True)
app.add_typer(agents_app, name="agents")
society_app = typer.Typer(help="Societies (a guild run by agents).", no_args_is_help=True)
app.add_typer(society_app, name="society")
from .backup import backup_app  # noqa: E402 - the sub-app module imports nothing heavy

app.add_typer(backup_app, name="backup")
from .bundle import bundle_app  # noqa: E402 - the sub-app module imports nothing heavy

app.add_typer(bundle_app, name="bundle")
from .analytics import export as _export, report as _report  # noqa: E402 - the commands import their heavy parts when they run

app.command("export")(_export)
app.command("report")(_report)


def _services(settings: Settings) -> Any:
    from ..services.embedded import resolve_services

    return resolve_services(settings)


def _migrate(settings: Settings, database_url: str) -> None:
    from ..db.migrate import upgrade

    upgrade(database_url, settings.database_schema)


async def _serve(settings: Settings, database_url: str, redis_url: str, on_ready: Any = None, on_stop: Any = None) -> None:
    """Serves until a signal; `on_ready` (async) runs once the server listens, `on_stop` as soon
    as a signal asks it to stop."""
    import uvicorn

    from ..api.app import create_app
    from ..api.server import TownsquareServer, uvicorn_options

    api = create_app(settings, database_url=database_url, redis_url=redis_url)
    config = uvicorn.Config(api, host=settings.host, port=settings.port, loop="none", lifespan="on", **uvicorn_options(settings))
    server = TownsquareServer(config)
    if on_stop is not None:
        handle_exit = server.handle_exit

        def stopping(sig: int, frame: Any) -> None:
            on_stop()
            handle_exit(sig, frame)

        server.handle_exit = stopping  # type: ignore[method-assign]
    if on_ready is not None:
        async def announce() -> None:
            while not server.started:
                await asyncio.sleep(0.05)
            await on_ready()

        asyncio.get_running_loop().create_task(announce())
    await server.serve()


def _run(coro: Any) -> None:
    try:
        import uvloop

        uvloop.run(coro)
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        asyncio.run(coro)


@app.command()
def migrate() -> None:
    """Apply the database migrations (also done by `serve` and `up`)."""
    settings = get_settings()
    services = _services(settings)
    _migrate(settings, services.database_url)
    typer.echo("database is up to date")


@app.command()
def serve(no_migrate: Annotated[bool, typer.Option(help="Do not apply migrations at start.")] = False,
          workers: Annotated[int, typer.Option(min=1, max=64, help="Server processes sharing the port.")] = 1,
          forwarded_allow_ips: Annotated[str | None, typer.Option(
              help="Proxies (IPs, CIDRs) whose X-Forwarded-For / -Proto are believed (default TOWNSQUARE_FORWARDED_ALLOW_IPS).")] = None) -> None:
    """Run the HTTP server (REST API and gateway) on TOWNSQUARE_HOST:TOWNSQUARE_PORT."""
    settings = get_settings()
    if forwarded_allow_ips is not None:
        # the client address (rate limits, the security log) comes from these proxies' headers
        settings.forwarded_allow_ips = forwarded_allow_ips
    services = _services(settings)
    if not no_migrate:
        _migrate(settings, services.database_url)
    if workers == 1:
        _run(_serve(settings, services.database_url, services.redis_url))
        return
    import os

    import uvicorn

    from ..api.server import uvicorn_options

    # Each worker is a full instance (its own gateway, publisher standby, pools); they find the
    # services this process resolved (embedded ones included) through the environment.
    os.environ["DATABASE_URL"], os.environ["REDIS_URL"] = services.database_url, services.redis_url
    uvicorn.run("townsquare.platform.api.app:app_from_env", factory=True, workers=workers, host=settings.host, port=settings.port,
                loop="uvloop", **uvicorn_options(settings))


class AdminSetupError(Exception):
    """The administrator's settings cannot be applied (an account that is not an admin, a bad password)."""


@dataclass(frozen=True)
class AdminLogin:
    """The instance administrator after `ensure_admin`. `password` is known only when it was
    generated here (kept in the data folder) or given by TOWNSQUARE_ADMIN_PASSWORD."""

    username: str
    password: str | None
    outcome: str  # "created" | "unchanged" | "password reset"
    generated: bool  # the password was generated here (and may be shown on this terminal)
    credentials_file: Path | None = None


async def ensure_admin(settings: Settings, database_url: str, redis_url: str) -> AdminLogin:
    """The instance administrator TOWNSQUARE_ADMIN_USERNAME: created once. With
    TOWNSQUARE_ADMIN_PASSWORD, that is its password: an existing administrator whose password
    differs gets it (a reset, security-logged, its sessions ended). Without it, a password is
    generated once and kept (0600) in the data folder, so that every `up` can show it."""
    from sqlalchemy import func, select

    from ..actions import users
    from ..api.app import build_platform, close_platform
    from ..db.models import User

    username, given = settings.admin_username, settings.admin_password
    creds = settings.resolved_data_dir() / "admin-credentials"
    stored = creds.read_text().strip().split("\n", 1) if creds.exists() else []
    kept = stored[1] if len(stored) == 2 and stored[0].lower() == username.lower() else None
    if not users.USERNAME_RE.fullmatch(username):
        raise AdminSetupError("TOWNSQUARE_ADMIN_USERNAME must be 2-32 characters of letters, digits, '_', '.' or '-'")
    if given is not None and not 8 <= len(given) <= 128:  # users.check_password's rule, said in the setting's words
        raise AdminSetupError("TOWNSQUARE_ADMIN_PASSWORD must be 8-128 characters long")
    platform = await build_platform(settings, database_url, redis_url)
    try:
        async with platform.read() as conn:
            row = (await conn.execute(select(User).where(func.lower(User.username) == username.lower()))).first()
        if row is not None and (row.bot or not row.is_admin):
            raise AdminSetupError(f"the account {row.username!r} exists and is not an administrator: "
                                 "set TOWNSQUARE_ADMIN_USERNAME to another name")
        if row is None:
            password = given if given is not None else secrets.token_urlsafe(12)
            await users.do_register(platform, username=username, password=password, is_admin=True, global_name="Admin")
            if given is not None:
                creds.unlink(missing_ok=True)  # a generated password of an earlier admin of that name is no more
                return AdminLogin(username, given, "created", generated=False)
            _write_private(creds, f"{username}\n{password}\n")
            return AdminLogin(username, password, "created", generated=True, credentials_file=creds)
        if given is None:
            # the generated password is shown only while it is still the admin's (a reset replaced it otherwise)
            if kept is not None and await users.password_matches(row.password_hash, kept):
                return AdminLogin(row.username, kept, "unchanged", generated=True, credentials_file=creds)
            return AdminLogin(row.username, None, "unchanged", generated=False)
        if await users.password_matches(row.password_hash, given):
            return AdminLogin(row.username, given, "unchanged", generated=False)
        ended = await users.do_reset_password(platform, row.id, given, actor_id=None,
                                              reason="townsquare init (or up): TOWNSQUARE_ADMIN_PASSWORD differs from the password in use")
        creds.unlink(missing_ok=True)
        log.warning("administrator password reset from TOWNSQUARE_ADMIN_PASSWORD", extra={"username": row.username, "sessions_ended": ended})
        return AdminLogin(row.username, given, "password reset", generated=False)
    finally:
        await close_platform(platform)


def _write_private(path: Path, content: str) -> None:
    """Writes a file only its owner can read, from the first byte (no window at the default umask)."""
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(content)
    path.chmod(0o600)  # an existing file keeps its mode through O_CREAT


async def found_society(settings: Settings, database_url: str, redis_url: str, society: str, admin: str) -> int:
    """Seeds `society` (a bundled name or a YAML path) once; returns its guild id."""
    from ...agents.society.persona import load_society
    from ..actions import agents
    from ..api.app import build_platform, close_platform

    spec = load_society(society)
    platform = await build_platform(settings, database_url, redis_url)
    try:
        async with platform.read() as conn:
            from sqlalchemy import text

            owner = (await conn.execute(text("SELECT id FROM users WHERE lower(username) = lower(:u)"), {"u": admin})).scalar_one()
        guild_id = await agents.do_found_society(platform, owner, spec, name=str(society))
        from ...worker.runtime.worker import ensure_group
        from ..events.publisher import stream_key

        await ensure_group(platform.redis, stream_key(settings.redis_prefix))
        return guild_id
    finally:
        await close_platform(platform)


@dataclass(frozen=True)
class FirstStart:
    admin: AdminLogin
    society: str | None
    guild_id: int | None
    society_created: bool


def first_start(settings: Settings, services: Any, society: str | None) -> FirstStart:
    """What `init` does and `up` does first, idempotent: migrate, ensure the administrator, seed
    `society` (a bundled name or a YAML path; None: none) unless a society of that name exists."""
    _migrate(settings, services.database_url)

    async def main() -> FirstStart:
        admin = await ensure_admin(settings, services.database_url, services.redis_url)
        if society is None:
            return FirstStart(admin, None, None, False)
        existed = await _society_guild(settings, services.database_url, services.redis_url, society)
        guild_id = await found_society(settings, services.database_url, services.redis_url, society, admin.username)
        return FirstStart(admin, society, guild_id, existed is None)

    try:
        return asyncio.run(main())
    except AdminSetupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


async def _society_guild(settings: Settings, database_url: str, redis_url: str, society: str) -> int | None:
    from sqlalchemy import select

    from ..api.app import build_platform, close_platform
    from ..db.models import Society

    platform = await build_platform(settings, database_url, redis_url)
    try:
        async with platform.read() as conn:
            return (await conn.execute(select(Society.guild_id).where(Society.name == str(society)))).scalar()
    finally:
        await close_platform(platform)


@app.command()
def init(society: Annotated[str | None, typer.Option(help="Society to seed: a bundled name or a YAML file (default TOWNSQUARE_SOCIETY).")] = None,
         no_society: Annotated[bool, typer.Option("--no-society", help="Seed no society.")] = False) -> None:
    """First-start setup, safe to run at every start: apply the migrations, create the
    administrator (TOWNSQUARE_ADMIN_USERNAME; TOWNSQUARE_ADMIN_PASSWORD sets its password, also on
    an existing one) and seed the society once. A generated password is printed here, never logged."""
    settings = get_settings()
    services = _services(settings)
    done = first_start(settings, services, None if no_society else society or settings.society)
    typer.echo("database is up to date")
    admin = done.admin
    if admin.outcome == "created" and admin.generated:
        typer.echo(f"administrator {admin.username}: created, password {admin.password} (kept in {admin.credentials_file})")
    elif admin.outcome == "created":
        typer.echo(f"administrator {admin.username}: created with the password of TOWNSQUARE_ADMIN_PASSWORD")
    elif admin.outcome == "password reset":
        typer.echo(f"administrator {admin.username}: password reset to TOWNSQUARE_ADMIN_PASSWORD (its sessions ended; security log)")
    elif admin.generated:
        typer.echo(f"administrator {admin.username}: exists (its generated password is in {admin.credentials_file})")
    else:
        typer.echo(f"administrator {admin.username}: exists" + (", password as TOWNSQUARE_ADMIN_PASSWORD" if settings.admin_password else ""))
    if done.society is not None:
        typer.echo(f"society {done.society}: guild {done.guild_id} ({'seeded' if done.society_created else 'exists'})")


def _child_env(services: Any) -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["DATABASE_URL"], env["REDIS_URL"] = services.database_url, services.redis_url
    return env


def _spawn(name: str, args: list[str], env: dict[str, str], terminal: Any, settings: Settings) -> Any:
    """A child process of `up`, its output in <log dir>/<name>.log (see terminal.py)."""
    from ..core.logging import log_file_bytes
    from .terminal import Child, child_env, python_argv

    return Child(name, python_argv(args), child_env(env), terminal, log_file_bytes(settings))


async def _wait_http(url: str, timeout: float) -> bool:
    """Polls until `url` answers (the model server loading); False if it never did."""
    import httpx

    deadline = asyncio.get_running_loop().time() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while asyncio.get_running_loop().time() < deadline:
            try:
                if (await client.get(url)).status_code < 500:
                    return True
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.25)
    return False


def _stop_children(children: list[Any]) -> None:
    import subprocess

    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=25)
        except subprocess.TimeoutExpired:
            child.kill()


def _login_line(settings: Settings, admin: AdminLogin) -> str:
    if admin.generated:
        return f"{admin.username} / {admin.password}"
    # a password given in the settings (or set by one earlier) is never printed
    return f"{admin.username} (password: {'TOWNSQUARE_ADMIN_PASSWORD' if settings.admin_password else 'not kept here'})"


@app.command()
def up(society: Annotated[str | None, typer.Option(help="Society to seed on first start (default TOWNSQUARE_SOCIETY).")] = None,
       agents: Annotated[bool, typer.Option(help="Run the agents (worker, rq worker, model server).")] = True) -> None:
    """Start everything on embedded defaults: server, agent worker, rq worker, the bundled model
    (unless OLLAMA_HOST is set) and the demo society; print the URL and the admin credentials.
    The terminal shows only that summary and a line when something goes wrong; every process's
    log is a file in TOWNSQUARE_LOG_DIR (default DATA_DIR/logs). Ctrl-C stops everything;
    starting again continues the same society with its history."""
    import os

    from ..core.logging import setup_logging
    from ..core.logstore import install as install_log_store
    from .terminal import ROLES, ProblemHandler, Terminal

    settings = get_settings()
    log_dir = settings.resolved_log_dir()
    terminal = Terminal(log_dir)
    # this process's records (the server's, access lines included) go to a file; its errors also to the terminal
    setup_logging(settings, file=log_dir / "server.log")
    logging.getLogger().addHandler(ProblemHandler(terminal))
    terminal.say(f"Starting Townsquare (logs in {log_dir}) ...")
    services = _services(settings)
    if not settings.redis_url:  # embedded Redis: the log store gets the URL just resolved
        install_log_store(logging.getLogger(), settings.model_copy(update={"redis_url": services.redis_url}))
    done = first_start(settings, services, (society or settings.society) if agents else None)
    login = _login_line(settings, done.admin)
    env = _child_env(services)
    children: list[Any] = []
    names = ["server"]

    def spawn(name: str, args: list[str]) -> None:
        children.append(_spawn(name, args, env, terminal, settings))
        names.append(name)

    async def main() -> None:
        if agents and not settings.chroma_url:
            # one Chroma for every process (an embedded store belongs to one process): served on the data folder
            spawn("memory", ["memory", "serve"])
            env["CHROMA_URL"] = settings.chroma_url = f"http://127.0.0.1:{settings.memory_port}"
            if not await _wait_http(f"{settings.chroma_url}/api/v2/heartbeat", timeout=60):
                terminal.problem("memory", f"{ROLES['memory']} did not start", always=True)
                raise typer.Exit(1)
        if agents:
            if not settings.ollama_host:
                spawn("model", ["model", "serve"])
                env["OLLAMA_HOST"] = f"http://127.0.0.1:{settings.model_port}"

        async def ready() -> None:
            if agents:
                model_host = env.get("OLLAMA_HOST") or settings.ollama_host
                if not await _wait_http(f"{model_host}/api/version", timeout=120):
                    source = "model" if "model" in names else "worker"
                    terminal.problem(source, f"the model at {model_host} did not answer within 120 s: agents wait for it", always=True)
                spawn("worker", ["worker", "--no-migrate"])
                spawn("rq-worker", ["rq-worker"])
            terminal.say(f"\nTownsquare is running at {settings.base_url}\n  admin login: {login}\n"
                         + (f"  society: {society or settings.society} (guild {done.guild_id})\n" if done.guild_id else "")
                         + f"  data folder: {settings.resolved_data_dir()}\n"
                         + f"  logs: {log_dir} ({', '.join(f'{n}.log' for n in names)})\n  stop with Ctrl-C\n")

        await _serve(settings, services.database_url, services.redis_url, on_ready=ready, on_stop=terminal.stopping.set)

    try:
        _run(main())
    except KeyboardInterrupt:  # Ctrl-C before the server ran (it handles its own)
        pass
    finally:
        terminal.stopping.set()
        terminal.say("Stopping ...")
        _stop_children(children)
        if "CHROMA_URL" in env and not os.environ.get("CHROMA_URL"):
            settings.chroma_url = None  # the memory server we started is gone with us
        terminal.say("Stopped.")
    os.environ.pop("OLLAMA_HOST", None)


@app.command()
def worker(no_migrate: Annotated[bool, typer.Option(help="Do not apply migrations at start.")] = False,
           api_url: Annotated[str | None, typer.Option(help="The platform's URL (default: TOWNSQUARE_PUBLIC_URL or host:port).")] = None) -> None:
    """Run an agent worker (a member of the `agents` consumer group; start several to share the load)."""
    from ...worker.runtime.run import run_worker

    settings = get_settings()
    services = _services(settings)
    if not no_migrate:
        _migrate(settings, services.database_url)
    _run(run_worker(settings, services.database_url, services.redis_url, api_url=api_url))


@app.command("rq-worker")
def rq_worker() -> None:
    """Run an rq worker for slow background jobs (record pruning; reflections and graph snapshots later)."""
    from ...worker.runtime.run import run_rq_worker

    settings = get_settings()
    services = _services(settings)
    run_rq_worker(settings, services.redis_url)


@model_app.command("serve")
def model_serve(host: Annotated[str, typer.Option()] = "127.0.0.1", port: Annotated[int | None, typer.Option()] = None) -> None:
    """Serve the bundled SmolLM2-135M-Instruct (and TOWNSQUARE_MODELS_DIR/*.gguf) behind Ollama's API."""
    from ...worker.modelserver.server import run_model_server

    settings = get_settings()
    run_model_server(host, port or settings.model_port, str(settings.models_dir) if settings.models_dir else None,
                     n_threads=settings.model_threads)


@memory_app.command("serve")
def memory_serve(host: Annotated[str, typer.Option()] = "127.0.0.1", port: Annotated[int | None, typer.Option()] = None,
                 path: Annotated[str | None, typer.Option(help="Storage folder (default DATA_DIR/chroma).")] = None) -> None:
    """Serve Chroma on the data folder (what `up` runs when CHROMA_URL is not set), for every
    process of the stack to share. Chroma's own server, no telemetry, loopback by default."""
    import os

    import chromadb_rust_bindings

    settings = get_settings()
    # Chroma's server logs every HTTP request at info: our logs stay readable unless debugging
    os.environ.setdefault("RUST_LOG", "info" if settings.log_level.upper() == "DEBUG" else "warn")
    folder = path or str(settings.resolved_data_dir() / "chroma")
    from pathlib import Path

    from ...agents.memory.store import MemoryUnavailable, _own

    Path(folder).mkdir(parents=True, exist_ok=True)
    try:
        _own(Path(folder))  # the folder is the server's: no process may open it embedded meanwhile
    except MemoryUnavailable as exc:
        raise typer.Exit(f"{exc}") from exc
    _drop_chroma_banner()
    try:
        chromadb_rust_bindings.cli(["chroma", "run", "--path", folder, "--host", host, "--port", str(port or settings.memory_port)])
    except KeyboardInterrupt:
        pass


# Chroma's log lines start with an ISO time; its banner has none
_LOG_LINE = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def _drop_chroma_banner() -> None:
    """`chroma run` prints a banner on stdout before it serves (a logo, links to its website,
    "try Chroma Cloud! Sign up: ..."), with no option to leave it out, then writes its log lines
    to the same stdout. Nothing of the banner belongs on an offline product's terminal or in its
    logs: stdout becomes a pipe, and a thread passes on what comes from the first log line on."""
    import os
    import threading

    read, write = os.pipe()
    stdout = os.dup(1)
    os.dup2(write, 1)
    os.close(write)

    def forward() -> None:
        with os.fdopen(read, "rb") as source, os.fdopen(stdout, "wb", buffering=0) as target:
            logging_started = False
            for line in source:
                logging_started = logging_started or bool(_LOG_LINE.search(line))
                if logging_started:
                    target.write(line)

    threading.Thread(target=forward, name="chroma-stdout", daemon=True).start()


@society_app.command("seed")
def society_seed(society: str, admin: Annotated[str, typer.Option(help="The owning administrator's username.")] = "admin") -> None:
    """Create a society (a bundled name such as `village` or `city`, or a YAML file) if it does not exist."""
    settings = get_settings()
    services = _services(settings)
    _migrate(settings, services.database_url)
    guild_id = asyncio.run(found_society(settings, services.database_url, services.redis_url, society, admin))
    typer.echo(f"society {society}: guild {guild_id}")


def _admin_call(fn: Any) -> Any:
    """Runs `fn(platform, admin)` with the first instance administrator as the actor."""
    from .session import on_platform

    async def as_admin(platform: Any) -> Any:
        from sqlalchemy import text

        from ..actions.users import AuthUser

        async with platform.read() as conn:
            row = (await conn.execute(text("SELECT id, username FROM users WHERE is_admin ORDER BY id LIMIT 1"))).first()
        if row is None:
            raise typer.BadParameter("no administrator exists yet (run `townsquare init` or `townsquare up` once)")
        return await fn(platform, AuthUser(row.id, row.username, None, None, False, True, 0))

    return on_platform(as_admin)


@agents_app.command("list")
def agents_list(guild: Annotated[int | None, typer.Option()] = None) -> None:
    """Every agent with its state and mood."""
    from ..actions import agents

    for a in _admin_call(lambda p, me: agents.list_agents(p, me, guild)):
        typer.echo(f"{a['id']}  {a['name']:<24} {a['status']:<8} mood={a['mood']['label']:<10} guild={a['guild_id']}"
                   + (f"  ({a['state_reason']})" if a["state_reason"] else ""))


@agents_app.command("create")
def agents_create(guild: int, persona_file: str) -> None:
    """Create an agent in a society from a persona YAML file."""
    import yaml

    from ..actions import agents

    with open(persona_file, encoding="utf-8") as f:
        persona = agents.check_persona(yaml.safe_load(f))
    created = _admin_call(lambda p, me: agents.do_create_agent(p, me, guild, persona))
    typer.echo(f"agent {created['name']} id={created['id']}")


@agents_app.command("set")
def agents_set(agent_id: int, changes: Annotated[list[str], typer.Argument(help="persona changes as key=value (YAML values)")]) -> None:
    """Change an agent's persona, e.g. `bio="A baker now"` or `traits={extraversion: 0.9}`."""
    import yaml

    from ..actions import agents

    parsed = {}
    for change in changes:
        key, sep, value = change.partition("=")
        if not sep:
            raise typer.BadParameter(f"{change!r} is not key=value")
        parsed[key.strip()] = yaml.safe_load(value)
    updated = _admin_call(lambda p, me: agents.do_update_persona(p, me, agent_id, parsed, "cli"))
    typer.echo(f"agent {updated['name']} updated")


def _state_command(state: str) -> Any:
    def command(agent_id: int, reason: Annotated[str | None, typer.Option()] = None) -> None:
        from ..actions import agents

        updated = _admin_call(lambda p, me: agents.do_set_state(p, me, agent_id, state, reason))
        typer.echo(f"agent {updated['name']}: {updated['state']}")

    command.__doc__ = {"paused": "Pause an agent.", "muted": "Mute an agent (it reads, never speaks).",
                       "active": "Resume a paused or muted agent."}[state]
    return command


agents_app.command("pause")(_state_command("paused"))
agents_app.command("mute")(_state_command("muted"))
agents_app.command("resume")(_state_command("active"))


@agents_app.command("delete")
def agents_delete(agent_id: int) -> None:
    """Delete an agent (its messages stay)."""
    from ..actions import agents

    _admin_call(lambda p, me: agents.do_delete_agent(p, me, agent_id, "cli"))
    typer.echo("deleted")


@bot_app.command("create")
def bot_create(username: str, global_name: Annotated[str | None, typer.Option()] = None) -> None:
    """Create a bot user and print its token (shown once)."""
    settings = get_settings()
    services = _services(settings)
    _migrate(settings, services.database_url)

    async def main() -> None:
        from ..actions import users
        from ..api.app import build_platform, close_platform

        platform = await build_platform(settings, services.database_url, services.redis_url)
        try:
            row, token = await users.do_create_bot(platform, owner_id=None, username=username, global_name=global_name)
        finally:
            await close_platform(platform)
        typer.echo(f"bot {row.username} id={row.id}\ntoken: {token}")

    _run(main())


from .run import run_command  # noqa: E402 - imports nothing heavy at load

app.command("run")(run_command)


def main() -> None:
    app()
