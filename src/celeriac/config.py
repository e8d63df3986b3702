"""Settings with Celery's names, defaults and validation.

Unknown names are reported with the closest known one: a near miss (a likely typo) raises
:class:`ImproperlyConfigured` at once, anything else is logged and ignored, as Celery ignores it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any, Self

from .exceptions import ImproperlyConfigured

logger = logging.getLogger("celeriac.config")

DEFAULT_SQLITE_URL = "sqlite:///celeriac.sqlite3"

DEFAULTS: dict[str, Any] = {
    # serialization and time
    "accept_content": ["json"],
    "result_accept_content": None,
    "task_serializer": "json",
    "result_serializer": "json",
    "task_compression": None,
    "result_compression": None,
    "enable_utc": True,
    "timezone": None,
    # broker
    "broker_url": None,
    "broker_read_url": None,
    "broker_write_url": None,
    "broker_transport": None,
    "broker_transport_options": {},
    "broker_connection_retry": True,
    "broker_connection_retry_on_startup": True,
    "broker_connection_max_retries": 100,
    "broker_connection_timeout": 4.0,
    "broker_heartbeat": 120,
    "broker_pool_limit": 10,
    "broker_use_ssl": None,
    "broker_login_method": None,
    "broker_failover_strategy": None,
    "broker_channel_error_retry": False,
    # results
    "result_backend": None,
    "result_backend_transport_options": {},
    "result_expires": dt.timedelta(days=1),
    "result_extended": False,
    "result_persistent": None,
    "result_chord_join_timeout": 3.0,
    "result_chord_ordered": True,
    "result_backend_always_retry": False,
    "result_backend_max_retries": float("inf"),
    "result_backend_thread_safe": False,
    "result_cache_max": -1,
    # tasks
    "task_always_eager": False,
    "task_eager_propagates": False,
    "task_store_eager_result": False,
    "task_ignore_result": False,
    "task_store_errors_even_if_ignored": False,
    "task_acks_late": True,
    "task_acks_on_failure_or_timeout": True,
    "task_reject_on_worker_lost": None,
    "task_track_started": False,
    "task_time_limit": None,
    "task_soft_time_limit": None,
    "task_default_queue": "celery",
    "task_default_exchange": None,
    "task_default_exchange_type": "direct",
    "task_default_routing_key": None,
    "task_default_priority": None,
    "task_default_rate_limit": None,
    "task_default_delivery_mode": "persistent",
    "task_queues": None,
    "task_routes": None,
    "task_create_missing_queues": True,
    "task_annotations": None,
    "task_publish_retry": True,
    "task_publish_retry_policy": {"max_retries": 3, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2},
    "task_send_sent_event": True,
    "task_inherit_parent_priority": False,
    "task_queue_max_priority": None,
    "task_remote_tracebacks": False,
    "task_protocol": 2,
    "task_max_deliveries": 5,
    "task_message_max_size": 10 * 1024 * 1024,
    "task_revoked_ttl": 24 * 3600,
    # worker
    "worker_concurrency": None,
    "worker_pool": "prefork",
    "worker_prefetch_multiplier": 4,
    "worker_max_tasks_per_child": None,
    "worker_max_memory_per_child": None,
    "worker_autoscaler": None,
    "worker_disable_rate_limits": False,
    "worker_enable_remote_control": True,
    "worker_send_task_events": True,
    "worker_hijack_root_logger": True,
    "worker_log_color": None,
    "worker_log_format": "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s",
    "worker_task_log_format": "[%(asctime)s: %(levelname)s/%(processName)s] %(task_name)s[%(task_id)s]: %(message)s",
    "worker_redirect_stdouts": True,
    "worker_redirect_stdouts_level": "WARNING",
    "worker_lost_wait": 10.0,
    "worker_proc_alive_timeout": 4.0,
    "worker_state_db": None,
    "worker_timer_precision": 1.0,
    "worker_pool_restarts": False,
    "worker_direct": False,
    "worker_deduplicate_successful_tasks": False,
    "worker_cancel_long_running_tasks_on_connection_loss": False,
    "worker_soft_shutdown_timeout": 0.0,
    "worker_heartbeat_interval": 2.0,
    # events and control
    "event_serializer": "json",
    "event_queue_ttl": 5.0,
    "event_queue_expires": 60.0,
    "event_queue_prefix": "celeryev",
    "event_exchange": "celeryev",
    "event_stream_maxlen": 100_000,
    "event_stream_max_age": 24 * 3600,
    "control_queue_ttl": 300.0,
    "control_queue_expires": 10.0,
    "control_exchange": "celery",
    # beat
    "beat_schedule": {},
    "beat_scheduler": None,
    "beat_schedule_filename": "celerybeat-schedule",
    "beat_sync_every": 0,
    "beat_max_loop_interval": 0,
    "beat_cron_starting_deadline": None,
    "beat_missed_run_policy": "catch_up_once",
    "beat_lease_seconds": 10.0,
    # modules
    "imports": (),
    "include": (),
}

# Celery 3 upper-case names people still write (and the Django CELERY_ namespace maps onto).
OLD_NAMES: dict[str, str] = {
    "BROKER_URL": "broker_url",
    "BROKER_TRANSPORT_OPTIONS": "broker_transport_options",
    "CELERY_RESULT_BACKEND": "result_backend",
    "CELERY_TASK_SERIALIZER": "task_serializer",
    "CELERY_RESULT_SERIALIZER": "result_serializer",
    "CELERY_ACCEPT_CONTENT": "accept_content",
    "CELERY_TIMEZONE": "timezone",
    "CELERY_ENABLE_UTC": "enable_utc",
    "CELERY_ALWAYS_EAGER": "task_always_eager",
    "CELERY_EAGER_PROPAGATES_EXCEPTIONS": "task_eager_propagates",
    "CELERY_IGNORE_RESULT": "task_ignore_result",
    "CELERY_TASK_RESULT_EXPIRES": "result_expires",
    "CELERY_ROUTES": "task_routes",
    "CELERY_QUEUES": "task_queues",
    "CELERY_DEFAULT_QUEUE": "task_default_queue",
    "CELERY_ACKS_LATE": "task_acks_late",
    "CELERYD_CONCURRENCY": "worker_concurrency",
    "CELERYD_PREFETCH_MULTIPLIER": "worker_prefetch_multiplier",
    "CELERYD_MAX_TASKS_PER_CHILD": "worker_max_tasks_per_child",
    "CELERYD_TASK_TIME_LIMIT": "task_time_limit",
    "CELERYD_TASK_SOFT_TIME_LIMIT": "task_soft_time_limit",
    "CELERYBEAT_SCHEDULE": "beat_schedule",
    "CELERY_IMPORTS": "imports",
    "CELERY_INCLUDE": "include",
}

# Celery settings celeriac accepts but does not act on: they are logged, never mistaken for typos.
CELERY_ONLY_NAMES = frozenset({
    "task_acks_on_failure", "task_acks_on_timeout", "result_chord_expires", "result_failure_expires", "broker_user",
    "broker_password", "broker_host", "broker_port", "broker_vhost", "worker_task_log_datefmt", "worker_log_datefmt",
    "worker_pool_start_method", "event_queue_durable", "event_queue_exclusive", "control_queue_durable",
    "control_queue_exclusive", "task_default_queue_type", "task_retry_on_worker_lost", "worker_detect_quorum_queues",
    "result_exchange", "result_exchange_type", "result_chord_retry_interval", "result_backend_base_sleep_between_retries",
    "result_backend_max_sleep_between_retries", "broker_native_delayed_delivery_queue_type", "worker_eta_task_limit",
    "worker_enable_soft_shutdown_on_idle", "worker_consumer", "worker_timer", "worker_agent", "task_create_missing_queue_type",
    "task_create_missing_queue_exchange_type", "redis_backend_health_check_interval", "redis_socket_timeout",
    "redis_socket_connect_timeout", "redis_retry_on_timeout", "redis_max_connections", "redis_username", "redis_password",
    "redis_socket_keepalive", "redis_client_name", "database_url", "database_engine_options", "database_short_lived_sessions",
    "database_table_schemas", "database_table_names", "database_create_tables_at_setup", "security_key", "security_certificate",
    "security_cert_store", "security_digest", "security_key_password", "cache_backend", "cache_backend_options",
    "mongodb_backend_settings", "elasticsearch_retry_on_timeout", "s3_bucket", "azureblockblob_container_name",
    "task_publish_retry_policy", "worker_state_db", "deprecated_settings", "broker_connection_max_retries",
})

ENV_OVERRIDES = {
    "CELERIAC_BROKER_URL": "broker_url",
    "CELERIAC_RESULT_BACKEND": "result_backend",
}


def closest(name: str, known: Iterable[str] = DEFAULTS) -> str | None:
    """The known setting name nearest to ``name``, if any is near."""
    import difflib  # only for a misspelt setting's hint

    matches = difflib.get_close_matches(name.lower(), list(known), n=1, cutoff=0.75)
    return matches[0] if matches else None


def normalize_key(key: str) -> str | None:
    """Map an old upper-case name or a lower-case name onto a known setting, or None."""
    if key in DEFAULTS:
        return key
    if key in OLD_NAMES:
        return OLD_NAMES[key]
    lowered = key.lower()
    return lowered if lowered in DEFAULTS else None


def check_unknown(key: str, source: str = "settings") -> None:
    """Raise for a near miss of a known setting name, log anything else that is unknown."""
    if key.lower() in CELERY_ONLY_NAMES:
        logger.warning("setting %r (a Celery setting) is accepted but has no effect in celeriac", key)
        return
    suggestion = closest(key)
    if suggestion is not None:
        raise ImproperlyConfigured(f"unknown setting {key!r} in {source}: did you mean {suggestion!r}?")
    logger.warning("ignoring unknown setting %r in %s", key, source)


_UNSET = object()


class Settings(dict[str, Any]):
    """``app.conf``: a dict of settings that also reads and writes as attributes.

    Reading a setting as an attribute goes through ``__getattr__`` only the first time: Python calls
    it after a failed lookup, which costs about 1 us (a worker and a sender read several settings
    per task). The value found is then kept in the instance's ``__dict__``, where the next lookup
    finds it at once. Every change to the settings, once made, empties that cache and counts itself
    in ``_version``: a read that raced a change in another thread keeps nothing it may have read
    before the change.
    """

    def __getattr__(self, key: str) -> Any:
        cache = self.__dict__
        seen = cache.get("_version", 0)
        value = dict.get(self, key, _UNSET)
        if value is _UNSET:
            if key not in DEFAULTS:
                raise AttributeError(key)
            value = DEFAULTS[key]
        cache[key] = value
        if cache.get("_version", 0) != seen:
            cache.pop(key, None)
        return value

    def _changed(self) -> None:
        cache = self.__dict__
        version = cache.get("_version", 0) + 1
        cache.clear()
        cache["_version"] = version

    def __setattr__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __setitem__(self, key: str, value: Any) -> None:
        dict.__setitem__(self, key, value)
        self._changed()

    def __delitem__(self, key: str) -> None:
        dict.__delitem__(self, key)
        self._changed()

    def __ior__(self, other: Any, /) -> Self:  # type: ignore[override,misc]  # dict types it as overloads, with __or__
        self.update(other)
        return self

    def pop(self, key: str, /, *default: Any) -> Any:  # type: ignore[override]  # as dict.pop, which typeshed overloads
        try:
            return dict.pop(self, key, *default)
        finally:
            self._changed()

    def popitem(self) -> tuple[str, Any]:
        try:
            return dict.popitem(self)
        finally:
            self._changed()

    def clear(self) -> None:
        dict.clear(self)
        self._changed()

    def __missing__(self, key: str) -> Any:
        if key in DEFAULTS:
            return DEFAULTS[key]
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        try:
            return self[key]
        except KeyError:
            return default

    def update(self, other: Mapping[str, Any] | Iterable[tuple[str, Any]] = (), /, **kwargs: Any) -> None:  # type: ignore[override]
        """Set settings by name; upper-case Celery 3 names are translated."""
        items = dict(other, **kwargs)
        try:
            for key, value in items.items():
                if not isinstance(key, str):
                    raise ImproperlyConfigured(f"setting names are text, got {key!r} ({type(key).__name__})")
                name = normalize_key(key)
                if name is None:
                    check_unknown(key)
                    continue
                dict.__setitem__(self, name, value)
        finally:
            self._changed()

    def setdefault(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        if not dict.__contains__(self, key):
            self.update({key: default})
        return self[key]

    def changes(self) -> dict[str, Any]:
        """Only what was set explicitly."""
        return dict(self.items())

    def with_defaults(self) -> dict[str, Any]:
        merged = dict(DEFAULTS)
        merged.update(self)
        return merged


def from_object(obj: Any, namespace: str | None = None) -> dict[str, Any]:
    """Read settings from a module, class, dict or Django settings, optionally under a namespace.

    With ``namespace="CELERY"`` only ``CELERY_*`` names are read and the prefix is dropped
    (``CELERY_BROKER_URL`` becomes ``broker_url``), as Celery does for Django.
    """
    if isinstance(obj, Mapping):
        names = list(obj.keys())
        getter = obj.__getitem__
    else:
        names = [n for n in dir(obj) if not n.startswith("_")]

        def getter(name: str) -> Any:
            return getattr(obj, name)

    found: dict[str, Any] = {}
    prefix = f"{namespace}_" if namespace else ""
    for name in names:
        if prefix and not name.startswith(prefix):
            continue
        key = name[len(prefix) :]
        setting = normalize_key(key) or (normalize_key(f"CELERY_{key}") if prefix else None)
        if setting is None:
            if prefix or key.islower():
                check_unknown(key, source=f"{namespace or 'config'} object")
            continue
        found[setting] = getter(name)
    return found


def env_overrides(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Settings given by ``CELERIAC_BROKER_URL`` / ``CELERIAC_RESULT_BACKEND``."""
    return {setting: environ[var] for var, setting in ENV_OVERRIDES.items() if environ.get(var)}


def as_seconds(value: Any) -> float | None:
    """A duration setting as seconds (timedelta, int or float); None stays None."""
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"expected a number of seconds or a timedelta, got {value!r}") from None
