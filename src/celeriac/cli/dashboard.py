"""``celeriac -A proj flower`` / ``dashboard``: serve the monitoring dashboard with uvicorn."""

from __future__ import annotations

from typing import Any

import click

from ..exceptions import ImproperlyConfigured


def _app(ctx: click.Context) -> Any:
    obj = ctx.find_root().obj or {}
    if "app" in obj:
        return obj["app"]
    from .main import get_app

    return get_app(ctx)


def _opt(*names: str, **kwargs: Any) -> Any:
    """Flower spells options with underscores; accept the dashed spelling too."""
    dashed = [n.replace("_", "-") for n in names if "_" in n]
    return click.option(*names, *dashed, **kwargs)


OPTIONS = [
    _opt("--address", default=None, help="Address to bind (default 127.0.0.1)."),
    _opt("--port", type=int, default=None, help="Port (default 5555)."),
    _opt("--basic_auth", default=None, help="user:password[,user2:password2]"),
    _opt("--auth", default=None, help="Regex of e-mail addresses allowed to log in with OAuth2."),
    _opt("--auth_provider", default=None, help="github, google, gitlab, okta or oidc (Flower's class names work too)."),
    _opt("--oauth2_key", default=None, help="OAuth2 client id."),
    _opt("--oauth2_secret", default=None, help="OAuth2 client secret."),
    _opt("--oauth2_redirect_uri", default=None, help="OAuth2 redirect URI (…/oauth2/callback)."),
    _opt("--oauth2_discovery_url", default=None, help="OpenID Connect discovery URL (generic OIDC)."),
    _opt("--oauth2_domain", default=None, help="Okta domain, e.g. example.okta.com."),
    _opt("--url_prefix", default=None, help="Serve under this path, behind a proxy."),
    _opt("--read_only", is_flag=True, default=None, help="Refuse every action (revoke, retry, controls)."),
    _opt("--max_tasks", type=int, default=None, help="Tasks kept in history (default 1,000,000)."),
    _opt("--max_age", type=float, default=None, help="Seconds of history kept (default 7 days)."),
    _opt("--db", default=None, help="History store: sqlite:///file (default) or postgresql://…"),
    _opt("--cookie_secret", default=None, help="Secret signing session cookies (default: generated and kept in the store)."),
    _opt("--inspect_timeout", type=float, default=None, help="Seconds to wait for worker replies (default 1)."),
    _opt("--unsafe_no_auth", is_flag=True, default=None,
         help="Allow a non-loopback address without authentication (only on a trusted network)."),
    _opt("--conf", default=None, help="Settings file (default flowerconfig.py)."),
]


def _command(name: str, help_text: str) -> click.Command:
    @click.pass_context
    def run(ctx: click.Context, conf: str | None, **flags: Any) -> None:
        serve(_app(ctx), flags, conf or "flowerconfig.py")

    for option in reversed(OPTIONS):
        run = option(run)
    return click.command(name=name, help=help_text)(run)


def serve(celeriac_app: Any, flags: dict[str, Any], config_file: str) -> None:
    """Load settings, refuse unsafe binds, then serve until interrupted."""
    import uvicorn

    from ..dashboard import create_app
    from ..dashboard.db import mask_url
    from ..dashboard.options import check_bind, load

    try:
        opts = load(flags, config_file=config_file)
        check_bind(opts)
    except ImproperlyConfigured as exc:
        raise click.UsageError(str(exc)) from exc
    web = create_app(celeriac_app, opts=opts)
    click.echo(f"celeriac dashboard on http://{opts.address}:{opts.port}{opts.prefix}/ "
               f"(broker {mask_url(celeriac_app.broker_url)}, history {mask_url(opts.db)})")
    uvicorn.run(web, host=opts.address, port=opts.port, log_level="warning", proxy_headers=False, timeout_graceful_shutdown=3)


flower = _command("flower", "Serve the monitoring dashboard (Flower's command and options).")
dashboard = _command("dashboard", "Serve the monitoring dashboard (same as 'flower').")


def register(group: click.Group) -> None:
    group.add_command(flower)
    group.add_command(dashboard)
