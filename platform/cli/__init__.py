"""The `townsquare` command."""

from __future__ import annotations

import asyncio
import secrets

from typing import Annotated, Any

import typer

from ..core.config import Settings, get_settings

app = typer.Typer(help="Townsquare: an offline agent society on a Discord-compatible chat platform.", no_args_is_help=True)
bot_app = typer.Typer(help="Bot users (agents and third-party bots).", no_args_is_help=True)
app.add_typer(bot_app, name="bot")


def _services(settings: Settings) -> Any:
    from ..services.embedded import resolve_services

    return resolve_services(settings)


def _migrate(settings: Settings, database_url: str) -> None:
    from ..db.migrate import upgrade

    upgrade(database_url, settings.database_schema)


async def _serve(settings: Settings, database_url: str, redis_url: str, on_ready: Any = None) -> None:
    import uvicorn

    from ..api.app import create_app
    from ..api.server import TownsquareServer

    api = create_app(settings, database_url=database_url, redis_url=redis_url)
    # per-message deflate off: gateway clients that want compression ask for zlib-stream
    config = uvicorn.Config(api, host=settings.host, port=settings.port, loop="none", http="httptools", log_config=None,
                            access_log=False, lifespan="on", timeout_graceful_shutdown=10, ws_per_message_deflate=False)
    server = TownsquareServer(config)
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
          workers: Annotated[int, typer.Option(min=1, max=64, help="Server processes sharing the port.")] = 1) -> None:
    """Run the HTTP server (REST API and gateway) on TOWNSQUARE_HOST:TOWNSQUARE_PORT."""
    settings = get_settings()
    services = _services(settings)
    if not no_migrate:
        _migrate(settings, services.database_url)
    if workers == 1:
        _run(_serve(settings, services.database_url, services.redis_url))
        return
    import os

    import uvicorn

    # Each worker is a full instance (its own gateway, publisher standby, pools); they find the
    # services this process resolved (embedded ones included) through the environment.
    os.environ["DATABASE_URL"], os.environ["REDIS_URL"] = services.database_url, services.redis_url
    uvicorn.run("townsquare.platform.api.app:app_from_env", factory=True, workers=workers, host=settings.host, port=settings.port,
                loop="uvloop", http="httptools", log_config=None, access_log=False, timeout_graceful_shutdown=10,
                ws_per_message_deflate=False)


async def ensure_admin(settings: Settings, database_url: str, redis_url: str) -> tuple[str, str]:
    """The instance administrator of `up`: created once, its password kept (0600) in the data
    folder so that every start can print it."""
    from ..actions import users
    from ..api.app import build_platform, close_platform

    creds = settings.resolved_data_dir() / "admin-credentials"
    platform = await build_platform(settings, database_url, redis_url)
    try:
        if creds.exists():
            username, password = creds.read_text().strip().split("\n", 1)
            return username, password
        username, password = "admin", secrets.token_urlsafe(12)
        await users.do_register(platform, username=username, password=password, is_admin=True, global_name="Admin")
        creds.write_text(f"{username}\n{password}\n")
        creds.chmod(0o600)
        return username, password
    finally:
        await close_platform(platform)


@app.command()
def up() -> None:
    """Start everything on embedded defaults and print the URL and the admin credentials.
    Ctrl-C stops everything; starting again continues with the same data."""
    settings = get_settings()
    services = _services(settings)
    _migrate(settings, services.database_url)

    async def main() -> None:
        username, password = await ensure_admin(settings, services.database_url, services.redis_url)

        async def ready() -> None:
            typer.echo(f"\nTownsquare is running at {settings.base_url}\n  admin login: {username} / {password}\n"
                       f"  data folder: {settings.resolved_data_dir()}\n  stop with Ctrl-C\n")

        await _serve(settings, services.database_url, services.redis_url, on_ready=ready)

    _run(main())


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


def main() -> None:
    app()


