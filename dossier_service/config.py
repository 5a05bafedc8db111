"""Settings read from DOSSIER_* environment variables, validated at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

#: Every variable the service understands; anything else starting with DOSSIER_ is a typo
#: an operator wants to hear about at start, not after a week of missing behaviour.
KNOWN_VARIABLES = frozenset(
    {
        "DOSSIER_DATA_DIR",
        "DOSSIER_DATABASE_URL",
        "DOSSIER_STORAGE",
        "DOSSIER_S3_ENDPOINT",
        "DOSSIER_S3_ACCESS_KEY",
        "DOSSIER_S3_SECRET_KEY",
        "DOSSIER_S3_BUCKET",
        "DOSSIER_S3_SECURE",
        "DOSSIER_S3_REGION",
        "DOSSIER_BROKER_URL",
        "DOSSIER_MAX_UPLOAD_BYTES",
        "DOSSIER_SECRET_KEY",
        "DOSSIER_LOG_LEVEL",
        "DOSSIER_TASKS_EAGER",
        "DOSSIER_TRUSTED_PROXIES",
        "DOSSIER_INSPECT_TIMEOUT",
    }
)
#: Variables used only by the test suite and benchmarks; tolerated so CI can set them.
TEST_VARIABLES_PREFIX = "DOSSIER_TEST_"

DEFAULT_MAX_UPLOAD_BYTES = 100 * 1024 * 1024


class ConfigError(Exception):
    """A setting is unknown, malformed or inconsistent with another setting."""


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one service instance."""

    data_dir: Path
    database_url: str
    storage: str = "local"
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_bucket: str | None = None
    s3_secure: bool = False
    s3_region: str | None = None
    broker_url: str = ""
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    secret_key: str | None = None
    log_level: str = "INFO"
    tasks_eager: bool = False
    trusted_proxies: int = 0
    inspect_timeout: float = 30.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def storage_root(self) -> Path:
        """Directory of the local object store."""
        return self.data_dir / "objects"

    @property
    def spool_dir(self) -> Path:
        """Directory where uploads are spooled while hashed and inspected."""
        # Inside the data dir so a local-store upload is a hard link, not a second copy.
        return self.data_dir / "spool"

    def with_overrides(self, **changes: Any) -> Settings:
        """Return a copy with some fields replaced (used by tests and the CLI)."""
        return replace(self, **changes)


def _parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def _parse_int(name: str, value: str, minimum: int) -> int:
    try:
        number = int(value.strip().replace("_", ""))
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {number}")
    return number


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment; raise ConfigError with a clear message."""
    env = dict(os.environ if environ is None else environ)
    unknown = sorted(
        name
        for name in env
        if name.startswith("DOSSIER_")
        and name not in KNOWN_VARIABLES
        and not name.startswith(TEST_VARIABLES_PREFIX)
    )
    if unknown:
        raise ConfigError(
            "unknown setting(s): "
            + ", ".join(unknown)
            + " (known: "
            + ", ".join(sorted(KNOWN_VARIABLES))
            + ")"
        )

    data_dir = Path(env.get("DOSSIER_DATA_DIR") or "./var").expanduser().resolve()
    if data_dir.exists() and not data_dir.is_dir():
        raise ConfigError(f"DOSSIER_DATA_DIR {data_dir} exists and is not a directory")

    database_url = env.get("DOSSIER_DATABASE_URL") or f"sqlite:///{data_dir / 'dossier.sqlite'}"
    database_url = _normalise_database_url(database_url)

    storage = (env.get("DOSSIER_STORAGE") or "local").strip().lower()
    if storage not in {"local", "s3"}:
        raise ConfigError(f"DOSSIER_STORAGE must be 'local' or 's3', not {storage!r}")
    s3 = {
        key: (env.get(f"DOSSIER_S3_{key.upper()}") or None)
        for key in ("endpoint", "access_key", "secret_key", "bucket", "region")
    }
    if storage == "s3":
        missing = [
            f"DOSSIER_S3_{key.upper()}"
            for key in ("endpoint", "access_key", "secret_key", "bucket")
            if not s3[key]
        ]
        if missing:
            raise ConfigError("DOSSIER_STORAGE=s3 needs " + ", ".join(missing))
        endpoint = s3["endpoint"] or ""
        if "://" in endpoint or "/" in endpoint:
            raise ConfigError(
                "DOSSIER_S3_ENDPOINT is host:port without scheme or path "
                f"(use DOSSIER_S3_SECURE for TLS), not {endpoint!r}"
            )
    else:
        stray = [f"DOSSIER_S3_{k.upper()}" for k, v in s3.items() if v]
        if stray:
            raise ConfigError(
                ", ".join(stray) + " set but DOSSIER_STORAGE is 'local': "
                "set DOSSIER_STORAGE=s3 or remove them"
            )

    broker_url = env.get("DOSSIER_BROKER_URL") or f"sqla+sqlite:///{data_dir / 'broker.sqlite'}"
    if not broker_url.startswith(("sqla+", "redis://", "rediss://", "amqp://", "amqps://")):
        raise ConfigError(
            "DOSSIER_BROKER_URL must start with sqla+, redis://, rediss://, amqp:// or "
            f"amqps://, not {broker_url!r}"
        )

    max_upload = _parse_int(
        "DOSSIER_MAX_UPLOAD_BYTES",
        env.get("DOSSIER_MAX_UPLOAD_BYTES") or str(DEFAULT_MAX_UPLOAD_BYTES),
        minimum=1,
    )
    log_level = (env.get("DOSSIER_LOG_LEVEL") or "INFO").upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(
            f"DOSSIER_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {log_level!r}"
        )
    try:
        inspect_timeout = float(env.get("DOSSIER_INSPECT_TIMEOUT") or "30")
    except ValueError:
        raise ConfigError("DOSSIER_INSPECT_TIMEOUT must be a number of seconds") from None
    if not 0 < inspect_timeout <= 600:
        raise ConfigError("DOSSIER_INSPECT_TIMEOUT must be between 0 and 600 seconds")

    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        storage=storage,
        s3_endpoint=s3["endpoint"],
        s3_access_key=s3["access_key"],
        s3_secret_key=s3["secret_key"],
        s3_bucket=s3["bucket"],
        s3_secure=_parse_bool("DOSSIER_S3_SECURE", env.get("DOSSIER_S3_SECURE") or "false"),
        s3_region=s3["region"],
        broker_url=broker_url,
        max_upload_bytes=max_upload,
        secret_key=env.get("DOSSIER_SECRET_KEY") or None,
        log_level=log_level,
        tasks_eager=_parse_bool("DOSSIER_TASKS_EAGER", env.get("DOSSIER_TASKS_EAGER") or "false"),
        trusted_proxies=_parse_int(
            "DOSSIER_TRUSTED_PROXIES", env.get("DOSSIER_TRUSTED_PROXIES") or "0", minimum=0
        ),
        inspect_timeout=inspect_timeout,
    )


def _normalise_database_url(url: str) -> str:
    """Accept the common PostgreSQL spellings and pin the psycopg (v3) driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if not url.startswith(("sqlite:///", "postgresql+psycopg://")):
        raise ConfigError(
            "DOSSIER_DATABASE_URL must be sqlite:///PATH or postgresql://…, "
            f"not {url.split(':', 1)[0]!r}"
        )
    return url
