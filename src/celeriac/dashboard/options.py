"""Dashboard settings: defaults, then ``flowerconfig.py``, then ``FLOWER_*`` variables, then flags."""

from __future__ import annotations

import ipaddress
import os
import runpy
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from ..exceptions import ImproperlyConfigured


@dataclass
class Options:
    address: str = "127.0.0.1"
    port: int = 5555
    basic_auth: list[str] = field(default_factory=list)
    auth: str = ""
    auth_provider: str = ""
    oauth2_key: str = ""
    oauth2_secret: str = ""
    oauth2_redirect_uri: str = ""
    oauth2_discovery_url: str = ""
    oauth2_domain: str = ""
    url_prefix: str = ""
    read_only: bool = False
    max_tasks: int = 1_000_000
    max_age: float = 7 * 86400.0
    db: str = "sqlite:///celeriac-dashboard.sqlite3"
    cookie_secret: str = ""
    inspect_timeout: float = 1.0
    unsafe_no_auth: bool = False
    ingest: bool = True

    @property
    def has_auth(self) -> bool:
        return bool(self.basic_auth or self.auth)

    @property
    def prefix(self) -> str:
        p = self.url_prefix.strip("/")
        return f"/{p}" if p else ""


_NAMES = {f.name for f in fields(Options)}


def _coerce(name: str, value: Any) -> Any:
    kind = {f.name: f.type for f in fields(Options)}[name]
    if kind == "bool" and isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "list[str]" and isinstance(value, str):
        return [v for v in value.split(",") if v]
    return value


def load(overrides: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] = os.environ,
         config_file: str | None = "flowerconfig.py") -> Options:
    """Merge settings; later sources win. Unknown names in flowerconfig.py are ignored, as Flower does."""
    merged: dict[str, Any] = {}
    path = environ.get("FLOWER_CONFIG") or config_file
    if path and os.path.exists(path):
        merged.update({k: v for k, v in runpy.run_path(path).items() if k in _NAMES})
    for key, value in environ.items():
        name = key[len("FLOWER_"):].lower() if key.startswith("FLOWER_") else ""
        if name in _NAMES:
            merged[name] = value
    merged.update({k.replace("-", "_"): v for k, v in (overrides or {}).items() if v is not None})
    unknown = set(merged) - _NAMES
    if unknown:
        raise ImproperlyConfigured(f"unknown dashboard option(s): {', '.join(sorted(unknown))}")
    return Options(**{k: _coerce(k, v) for k, v in merged.items()})


def is_loopback(address: str) -> bool:
    if address in ("localhost", ""):
        return address == "localhost"
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def check_bind(opts: Options) -> None:
    """Refuse to serve a non-loopback address without auth unless the user insists."""
    if is_loopback(opts.address) or opts.has_auth or opts.unsafe_no_auth:
        return
    raise ImproperlyConfigured(
        f"refusing to serve the dashboard on {opts.address} without authentication: anyone who can reach it "
        "could see task arguments and revoke tasks. Set --basic_auth=user:password or --auth with OAuth2, "
        "bind --address=127.0.0.1, or pass --unsafe-no-auth if this network is trusted."
    )
