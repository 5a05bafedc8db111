"""Settings read from DOSSIER_* environment variables, validated at start."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

#: Variables used only by the test suite and benchmarks; tolerated so CI can set them.
TEST_VARIABLES_PREFIX = "DOSSIER_TEST_"

DEFAULT_MAX_UPLOAD_BYTES = 100 * 1024 * 1024
#: Days without activity after which monitoring reports an open case as stalled.
DEFAULT_STALL_DAYS = 90
#: Days a closed, archived case is kept after closing before retention deletes it.
DEFAULT_RETENTION_DAYS = 2 * 365
#: Minutes without a request after which a web session ends.
DEFAULT_SESSION_IDLE_MINUTES = 30
#: Seconds a worker holds a claimed version without renewing it (renewed while it works).
DEFAULT_PROCESSING_LEASE_SECONDS = 300
#: Minutes after which a version not yet ready or failed is reported as overdue.
DEFAULT_PROCESSING_OVERDUE_MINUTES = 15
#: Claims of one version that ended with a dead worker before the version is marked failed.
DEFAULT_PROCESSING_MAX_ATTEMPTS = 3
#: Hours after which a file left in the spool directory (by a crash) is removed.
DEFAULT_SPOOL_MAX_AGE_HOURS = 24
#: File under the data dir holding the generated session key when DOSSIER_SECRET_KEY is unset.
SECRET_KEY_FILE = "session-secret.key"  # noqa: S105  (a file name, not a secret)


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
    #: Largest request body outside the streamed uploads (JSON, forms); larger ones get 413.
    max_body_bytes: int = 1024 * 1024
    secret_key: str | None = field(default=None, repr=False)
    log_level: str = "INFO"
    tasks_eager: bool = False
    trusted_proxies: int = 0
    inspect_timeout: float = 30.0
    search: str = "tantivy"
    elasticsearch_url: str | None = None
    search_index: str = "dossier-documents"
    extract_timeout: float = 300.0
    ocr_languages: str = "deu+eng"
    stall_days: int = DEFAULT_STALL_DAYS
    #: Base URL of the web interface, for links in notification e-mails.
    public_url: str | None = None
    #: E-mail copies of notifications are sent only when smtp_host is set.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str | None = None
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    #: Retention period after closing (DOSSIER_RETENTION_DAYS), see services/retention.py.
    retention_days: int = DEFAULT_RETENTION_DAYS
    #: Key of the signed audit-log export; checked only by the command that needs it.
    audit_signing_key: str | None = field(default=None, repr=False)
    #: Key of the audit log's HMAC chain; None: DATA_DIR/audit-chain.key (made by init).
    audit_key: str | None = field(default=None, repr=False)
    #: Where ``dossier audit export`` writes, apart from the data (None: --out is required).
    audit_export_dir: Path | None = None
    #: Web sessions end after this many minutes without a request.
    session_idle_minutes: int = DEFAULT_SESSION_IDLE_MINUTES
    #: Session cookies carry Secure always (else only on requests that arrived over TLS).
    secure_cookies: bool = False
    #: OpenID Connect login beside passwords; all three set, or none.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = field(default=None, repr=False)
    #: Processing leases: see services/processing.py and docs/operations.md.
    processing_lease_seconds: int = DEFAULT_PROCESSING_LEASE_SECONDS
    processing_overdue_minutes: int = DEFAULT_PROCESSING_OVERDUE_MINUTES
    processing_max_attempts: int = DEFAULT_PROCESSING_MAX_ATTEMPTS
    #: Spool files older than this are leftovers of a crash (services/spool.py).
    spool_max_age_hours: int = DEFAULT_SPOOL_MAX_AGE_HOURS
    #: Settings handed in by code (tests, the CLI), never read from the environment.
    extra: Mapping[str, Any] = field(default_factory=dict, metadata={"environment": False})

    @property
    def storage_root(self) -> Path:
        """Directory of the local object store."""
        return self.data_dir / "objects"

    @property
    def spool_dir(self) -> Path:
        """Directory where uploads are spooled while hashed and inspected."""
        # Inside the data dir so a local-store upload is a hard link, not a second copy.
        return self.data_dir / "spool"

    @property
    def search_dir(self) -> Path:
        """Directory of the embedded tantivy index."""
        return self.data_dir / "index"

    @property
    def oidc_enabled(self) -> bool:
        """True when the OpenID Connect login is configured."""
        return bool(self.oidc_issuer)

    @property
    def smtp_enabled(self) -> bool:
        """True when notification e-mails are to be sent."""
        return bool(self.smtp_host)

    def with_overrides(self, **changes: Any) -> Settings:
        """Return a copy with some fields replaced (used by tests and the CLI)."""
        return replace(self, **changes)


def variable_name(setting: str) -> str:
    """The environment variable of a Settings field: data_dir is DOSSIER_DATA_DIR."""
    return "DOSSIER_" + setting.upper()


#: Every variable the service understands, one per Settings field; anything else starting
#: with DOSSIER_ is a typo an operator wants to hear about at start, not after a week of
#: missing behaviour.
KNOWN_VARIABLES = frozenset(
    variable_name(setting.name)
    for setting in fields(Settings)
    if setting.metadata.get("environment", True)
)


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

    search = (env.get("DOSSIER_SEARCH") or "tantivy").strip().lower()
    if search not in {"tantivy", "elasticsearch"}:
        raise ConfigError(f"DOSSIER_SEARCH must be 'tantivy' or 'elasticsearch', not {search!r}")
    elasticsearch_url = (env.get("DOSSIER_ELASTICSEARCH_URL") or "").strip() or None
    if search == "elasticsearch" and not elasticsearch_url:
        raise ConfigError("DOSSIER_SEARCH=elasticsearch needs DOSSIER_ELASTICSEARCH_URL")
    if search == "tantivy" and elasticsearch_url:
        raise ConfigError(
            "DOSSIER_ELASTICSEARCH_URL is set but DOSSIER_SEARCH is 'tantivy': "
            "set DOSSIER_SEARCH=elasticsearch or remove it"
        )
    if elasticsearch_url and not elasticsearch_url.startswith(("http://", "https://")):
        raise ConfigError("DOSSIER_ELASTICSEARCH_URL must start with http:// or https://")
    search_index = (env.get("DOSSIER_SEARCH_INDEX") or "dossier-documents").strip()
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,60}", search_index):
        raise ConfigError("DOSSIER_SEARCH_INDEX must be lowercase letters, digits, '-' or '_'")
    try:
        extract_timeout = float(env.get("DOSSIER_EXTRACT_TIMEOUT") or "300")
    except ValueError:
        raise ConfigError("DOSSIER_EXTRACT_TIMEOUT must be a number of seconds") from None
    if not 0 < extract_timeout <= 3600:
        raise ConfigError("DOSSIER_EXTRACT_TIMEOUT must be between 0 and 3600 seconds")
    ocr_languages = (env.get("DOSSIER_OCR_LANGUAGES") or "deu+eng").strip()
    if not re.fullmatch(r"[a-z_]{3,16}(\+[a-z_]{3,16}){0,5}", ocr_languages):
        raise ConfigError("DOSSIER_OCR_LANGUAGES must look like 'deu+eng'")

    stall_days = _parse_int(
        "DOSSIER_STALL_DAYS", env.get("DOSSIER_STALL_DAYS") or str(DEFAULT_STALL_DAYS), minimum=1
    )
    if stall_days > 3650:
        raise ConfigError(f"DOSSIER_STALL_DAYS must be at most 3650, not {stall_days}")
    public_url = (env.get("DOSSIER_PUBLIC_URL") or "").strip().rstrip("/") or None
    if public_url is not None and (
        not public_url.startswith(("https://", "http://")) or any(c in public_url for c in " ?#")
    ):
        raise ConfigError(
            "DOSSIER_PUBLIC_URL must be the web address, e.g. https://dossier.example.ch, "
            f"not {public_url!r}"
        )
    smtp = _smtp_settings(env, public_url)
    retention_days = _parse_int(
        "DOSSIER_RETENTION_DAYS",
        env.get("DOSSIER_RETENTION_DAYS") or str(DEFAULT_RETENTION_DAYS),
        minimum=1,
    )
    if retention_days > 36500:
        raise ConfigError(f"DOSSIER_RETENTION_DAYS must be at most 36500, not {retention_days}")
    audit_signing_key = env.get("DOSSIER_AUDIT_SIGNING_KEY") or None
    audit_key = env.get("DOSSIER_AUDIT_KEY") or None
    if audit_key is not None and len(audit_key) < 32:
        raise ConfigError("DOSSIER_AUDIT_KEY must have at least 32 characters")
    audit_export_dir_raw = (env.get("DOSSIER_AUDIT_EXPORT_DIR") or "").strip()
    audit_export_dir = (
        Path(audit_export_dir_raw).expanduser().resolve() if audit_export_dir_raw else None
    )

    idle_minutes = _parse_int(
        "DOSSIER_SESSION_IDLE_MINUTES",
        env.get("DOSSIER_SESSION_IDLE_MINUTES") or str(DEFAULT_SESSION_IDLE_MINUTES),
        minimum=1,
    )
    if idle_minutes > 24 * 60:
        raise ConfigError(f"DOSSIER_SESSION_IDLE_MINUTES must be at most 1440, not {idle_minutes}")
    oidc = _oidc_settings(env)
    processing = _processing_settings(env)

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
        max_body_bytes=_parse_int(
            "DOSSIER_MAX_BODY_BYTES", env.get("DOSSIER_MAX_BODY_BYTES") or "1048576", minimum=1024
        ),
        secret_key=env.get("DOSSIER_SECRET_KEY") or None,
        log_level=log_level,
        tasks_eager=_parse_bool("DOSSIER_TASKS_EAGER", env.get("DOSSIER_TASKS_EAGER") or "false"),
        trusted_proxies=_parse_int(
            "DOSSIER_TRUSTED_PROXIES", env.get("DOSSIER_TRUSTED_PROXIES") or "0", minimum=0
        ),
        inspect_timeout=inspect_timeout,
        search=search,
        elasticsearch_url=elasticsearch_url,
        search_index=search_index,
        extract_timeout=extract_timeout,
        ocr_languages=ocr_languages,
        stall_days=stall_days,
        public_url=public_url,
        retention_days=retention_days,
        audit_signing_key=audit_signing_key,
        audit_key=audit_key,
        audit_export_dir=audit_export_dir,
        session_idle_minutes=idle_minutes,
        secure_cookies=_parse_bool(
            "DOSSIER_SECURE_COOKIES", env.get("DOSSIER_SECURE_COOKIES") or "false"
        ),
        **oidc,
        **smtp,
        **processing,
    )


def _processing_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """Leases and bounds of background processing, and the age of stale spool files."""
    values: dict[str, Any] = {}
    # (setting, default, minimum, maximum)
    bounds = (
        ("processing_lease_seconds", DEFAULT_PROCESSING_LEASE_SECONDS, 10, 24 * 3600),
        ("processing_overdue_minutes", DEFAULT_PROCESSING_OVERDUE_MINUTES, 1, 7 * 24 * 60),
        ("processing_max_attempts", DEFAULT_PROCESSING_MAX_ATTEMPTS, 1, 100),
        # Below 2 hours a slow upload or export could lose its spool file while it runs.
        ("spool_max_age_hours", DEFAULT_SPOOL_MAX_AGE_HOURS, 2, 24 * 365),
    )
    for setting, default, minimum, maximum in bounds:
        name = variable_name(setting)
        number = _parse_int(name, env.get(name) or str(default), minimum=minimum)
        if number > maximum:
            raise ConfigError(f"{name} must be at most {maximum}, not {number}")
        values[setting] = number
    return values


def _oidc_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The OpenID Connect client: issuer, client id and secret go together."""
    names = ("DOSSIER_OIDC_ISSUER", "DOSSIER_OIDC_CLIENT_ID", "DOSSIER_OIDC_CLIENT_SECRET")
    values = {name: (env.get(name) or "").strip() or None for name in names}
    if not any(values.values()):
        return {}
    missing = [name for name, value in values.items() if value is None]
    if missing:
        raise ConfigError("OpenID Connect login needs " + ", ".join(missing))
    issuer = (values["DOSSIER_OIDC_ISSUER"] or "").rstrip("/")
    local = issuer.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))
    # Tokens and the client secret travel to the issuer: TLS unless it runs on this machine.
    if not (issuer.startswith("https://") or local) or any(c in issuer for c in " ?#"):
        raise ConfigError(
            "DOSSIER_OIDC_ISSUER must be the https:// address of the identity provider, "
            f"not {issuer!r}"
        )
    return {
        "oidc_issuer": issuer,
        "oidc_client_id": values["DOSSIER_OIDC_CLIENT_ID"],
        "oidc_client_secret": values["DOSSIER_OIDC_CLIENT_SECRET"],
    }


def session_secret(settings: Settings) -> str:
    """The key that signs web sessions: DOSSIER_SECRET_KEY, else a generated, persisted one.

    The generated key lives in the data dir (mode 0600), so sessions survive a restart and
    every worker process of one installation signs with the same key. It is created with a
    hard link from a private temporary file: of two processes starting at once, one wins
    and both then read the winner's key.
    """
    if settings.secret_key:
        return settings.secret_key
    import secrets
    import tempfile

    path = settings.data_dir / SECRET_KEY_FILE
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".secret-", dir=settings.data_dir)  # mode 0600
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48) + "\n")
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    key = path.read_text().strip()
    if len(key) < 32:
        raise ConfigError(f"{path} holds no usable session key; remove it to generate a new one")
    return key


def _smtp_settings(env: Mapping[str, str], public_url: str | None) -> dict[str, Any]:
    """The DOSSIER_SMTP_* settings, checked for consistency (all unset: no e-mail)."""
    host = (env.get("DOSSIER_SMTP_HOST") or "").strip() or None
    names = (
        "DOSSIER_SMTP_PORT",
        "DOSSIER_SMTP_FROM",
        "DOSSIER_SMTP_STARTTLS",
        "DOSSIER_SMTP_USERNAME",
        "DOSSIER_SMTP_PASSWORD",
    )
    if host is None:
        stray = [name for name in names if env.get(name)]
        if stray:
            raise ConfigError(", ".join(stray) + " set but DOSSIER_SMTP_HOST is not")
        return {}
    if any(c in host for c in " /:"):
        raise ConfigError(f"DOSSIER_SMTP_HOST is a host name without port, not {host!r}")
    port = _parse_int("DOSSIER_SMTP_PORT", env.get("DOSSIER_SMTP_PORT") or "25", minimum=1)
    if port > 65535:
        raise ConfigError(f"DOSSIER_SMTP_PORT must be at most 65535, not {port}")
    sender = (env.get("DOSSIER_SMTP_FROM") or "").strip()
    if not is_email_address(sender):
        raise ConfigError(
            f"DOSSIER_SMTP_HOST needs DOSSIER_SMTP_FROM, an e-mail address (got {sender!r})"
        )
    if public_url is None:
        # The e-mail carries only a link, so without the web address it would say nothing.
        raise ConfigError("DOSSIER_SMTP_HOST needs DOSSIER_PUBLIC_URL for the links in e-mails")
    username = env.get("DOSSIER_SMTP_USERNAME") or None
    password = env.get("DOSSIER_SMTP_PASSWORD") or None
    if (username is None) != (password is None):
        raise ConfigError("DOSSIER_SMTP_USERNAME and DOSSIER_SMTP_PASSWORD go together")
    return {
        "smtp_host": host,
        "smtp_port": port,
        "smtp_from": sender,
        "smtp_starttls": _parse_bool(
            "DOSSIER_SMTP_STARTTLS", env.get("DOSSIER_SMTP_STARTTLS") or "false"
        ),
        "smtp_username": username,
        "smtp_password": password,
    }


def is_email_address(value: str) -> bool:
    """A plausible single e-mail address (no display name, no spaces, one @)."""
    local, at, domain = value.partition("@")
    return bool(at and local and "." in domain and not any(c in value for c in " <>,;\r\n\t"))


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
