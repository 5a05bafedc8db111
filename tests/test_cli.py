"""The ``dossier`` command line: set-up, accounts, tokens, checks and configuration errors."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select, text

from dossier_service.app import create_app
from dossier_service.config import (
    KNOWN_VARIABLES,
    ConfigError,
    Settings,
    load_settings,
    variable_name,
)
from dossier_service.container import Container
from dossier_service.db import Database
from dossier_service.models import ApiToken, AuditEntry, Unit, User
from dossier_service.services import accounts, outbox
from tests.factories import World, new_case, run_cli, upload
from tests.sample_files import make_png


def dossier_executable() -> str:
    """The installed ``dossier`` script beside the running interpreter."""
    path = Path(sys.executable).parent / "dossier"
    assert path.is_file(), f"{path} is missing: is the package installed (pip install -e .)?"
    return str(path)


# --- init ---------------------------------------------------------------------------------


def test_init_is_idempotent_and_creates_the_layout(settings):
    first = run_cli(settings, "init")
    assert first.exit_code == 0, first.output
    dialect = "postgresql" if settings.database_url.startswith("postgresql") else "sqlite"
    assert f"initialised: database {dialect}, storage local:" in first.output
    assert settings.storage_root.is_dir() and settings.spool_dir.is_dir()
    again = run_cli(settings, "init")
    assert again.exit_code == 0, again.output


def test_init_migrates_a_fresh_default_database(tmp_path):
    data_dir = tmp_path / "fresh"
    fresh = Settings(data_dir=data_dir, database_url="unused")
    result = run_cli(fresh, "init", DOSSIER_DATABASE_URL=None)
    assert result.exit_code == 0, result.output
    db = Database(f"sqlite:///{data_dir / 'dossier.sqlite'}")
    try:
        tables = set(sa_inspect(db.engine).get_table_names())
    finally:
        db.dispose()
    assert {
        "cases",
        "documents",
        "document_versions",
        "audit_log",
        "outbox",
        "api_tokens",
    } <= tables


# --- units, users, tokens -----------------------------------------------------------------


def _users(settings: Settings) -> dict[str, tuple[str, str]]:
    """username → (unit code, role) of every user."""
    db = Database(settings.database_url)
    try:
        with db.transaction() as session:
            rows = session.execute(select(User.username, Unit.code, User.role).join(Unit)).all()
    finally:
        db.dispose()
    return {name: (unit, role) for name, unit, role in rows}


def ok(settings: Settings, *args: str) -> Result:
    """Run a command that must succeed."""
    result = run_cli(settings, *args)
    assert result.exit_code == 0, (args, result.output)
    return result


ZOFINGEN = ("units", "create", "--code", "zofingen", "--name", "Zofingen", "--kind", "municipality")


def test_units_and_users_create(settings):
    assert "unit zofingen created" in ok(settings, *ZOFINGEN).output
    again = run_cli(settings, *ZOFINGEN)
    assert again.exit_code == 1
    assert "A unit with the code 'zofingen' exists already" in again.output
    created = ok(settings, "users", "create", "--username", "m.muster", "--unit", "zofingen",
                 "--role", "caseworker", "--name", "Maria Muster")  # fmt: skip
    assert "user m.muster created" in created.output
    assert _users(settings) == {"m.muster": ("zofingen", "caseworker")}


def test_units_list_and_users_list_show_state_and_filter_by_unit(settings):
    """units list names every unit; users list shows unit, role and state, --unit filters."""
    ok(settings, *ZOFINGEN)
    ok(settings, "users", "create", "--username", "m.muster", "--unit", "zofingen",
       "--role", "caseworker", "--name", "Maria Muster")  # fmt: skip
    ok(settings, "units", "create", "--code", "ag", "--name", "Kanton Aargau", "--kind", "canton")
    ok(settings, "users", "create", "--username", "k.kanton", "--unit", "ag", "--role", "auditor")
    ok(settings, "users", "disable", "--username", "k.kanton")
    units = [line.split() for line in ok(settings, "units", "list").output.splitlines()]
    assert [row[:2] for row in units] == [["code", "kind"], ["ag", "canton"],
                                          ["zofingen", "municipality"]]  # fmt: skip
    users = [line.split()[:4] for line in ok(settings, "users", "list").output.splitlines()]
    assert users == [
        ["username", "unit", "role", "state"],
        ["k.kanton", "ag", "auditor", "disabled"],
        ["m.muster", "zofingen", "caseworker", "enabled"],
    ]
    only = ok(settings, "users", "list", "--unit", "zofingen").output.splitlines()
    assert [line.split()[0] for line in only] == ["username", "m.muster"]
    assert "Maria Muster" in only[1]
    unknown = run_cli(settings, "users", "list", "--unit", "nowhere")
    assert unknown.exit_code == 1
    assert "There is no unit with the code 'nowhere'" in unknown.output


USER_REFUSALS = {
    "bad_role": (["x.y", "zofingen", "superuser"], 2, "Invalid value for '--role'"),
    "unknown_unit": (["x.y", "nowhere", "caseworker"], 1, "There is no unit with the code"),
    "auditor_outside_canton": (["x.y", "zofingen", "auditor"], 1, "exists only in the canton"),
    "bad_username": (["X Y", "zofingen", "caseworker"], 1, "A username is"),
}


def test_users_create_refuses_clearly(settings):
    ok(settings, *ZOFINGEN)
    for name, ((username, unit, role), exit_code, message) in USER_REFUSALS.items():
        result = run_cli(settings, "users", "create", "--username", username, "--unit", unit,
                         "--role", role)  # fmt: skip
        assert (name, result.exit_code) == (name, exit_code)
        assert message in result.output
        assert "Traceback" not in result.output
    assert _users(settings) == {}


def test_token_printed_last_authenticates_and_only_its_hash_is_stored(settings, client):
    refused = run_cli(settings, "tokens", "create", "--username", "k.meier")
    assert refused.exit_code == 1
    assert "There is no user 'k.meier'" in refused.output
    ok(settings, "units", "create", "--code", "ag", "--name", "Kanton", "--kind", "canton")
    ok(settings, "users", "create", "--username", "k.meier", "--unit", "ag", "--role", "caseworker")
    result = ok(settings, "tokens", "create", "--username", "k.meier", "--label", "laptop")
    token = result.stdout.rstrip("\n").splitlines()[-1]
    assert token.startswith(accounts.TOKEN_PREFIX) and " " not in token

    response = client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    forged = client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}x"})
    assert forged.status_code == 401

    db = Database(settings.database_url)
    try:
        with db.transaction() as session:
            (row,) = session.execute(select(ApiToken)).scalars().all()
            assert row.token_hash == accounts.hash_token(token)
            assert row.label == "laptop"
            # Nowhere in the table, in any column, is the token itself.
            raw = session.execute(text("SELECT * FROM api_tokens")).all()
    finally:
        db.dispose()
    assert all(token not in str(value) for record in raw for value in record)


def test_tokens_revoke_stops_authentication(settings, client, world: World):
    before = client.get("/api/v1/cases", headers=world.auth("aarau"))
    assert before.status_code == 200
    result = run_cli(settings, "tokens", "revoke", "--username", "aarau")
    assert result.exit_code == 0
    assert "1 token(s) revoked" in result.output
    assert client.get("/api/v1/cases", headers=world.auth("aarau")).status_code == 401


# --- fsck and audit verify ----------------------------------------------------------------


def test_fsck_exit_codes(settings, client, world: World, container: Container):
    cid = new_case(client, world)["id"]
    for n in range(2):
        assert (
            upload(client, world, "canton", cid, make_png(seed=n), filename="scan.png").status_code
            == 201
        )
    clean = run_cli(settings, "fsck")
    assert clean.exit_code == 0, clean.output
    assert "fsck: 0 problem(s), 0 orphaned object(s)" in clean.output

    # A leftover object is reported but is no damage: still exit 0.
    container.store.put_bytes("versions/ff/ffffffff-0000-0000-0000-000000000000", b"x", {})
    orphaned = run_cli(settings, "fsck")
    assert orphaned.exit_code == 0
    assert "orphan\torphan\tversions/ff/ffffffff-0000-0000-0000-000000000000" in orphaned.output

    missing_key = next(
        k for k in container.store.iter_keys("versions/") if not k.startswith("versions/ff/")
    )
    container.store.delete(missing_key)
    broken = run_cli(settings, "fsck")
    assert broken.exit_code == 1
    assert f"ERROR\tmissing\t{missing_key}" in broken.output
    assert "fsck: 1 problem(s), 1 orphaned object(s)" in broken.output


def test_audit_verify_exit_codes(settings, client, world: World, container: Container):
    new_case(client, world)
    intact = run_cli(settings, "audit", "verify")
    assert intact.exit_code == 0
    assert "audit chain intact" in intact.output
    with container.db.transaction() as session:
        rows = session.execute(
            select(AuditEntry.id, AuditEntry.actor).order_by(AuditEntry.id)
        ).all()
        edited_id, original_actor = rows[1]
        session.execute(
            text("UPDATE audit_log SET actor = 'someone-else' WHERE id = :id"), {"id": edited_id}
        )
    edited = run_cli(settings, "audit", "verify")
    assert edited.exit_code == 1
    assert f"entry {edited_id}: content does not match its hash" in edited.output
    assert "audit chain BROKEN: 1 problem(s)" in edited.output

    # Undo the edit, then remove a row from the middle instead.
    (deleted_id, _), (follower_id, _) = rows[4], rows[5]
    with container.db.transaction() as session:
        session.execute(
            text("UPDATE audit_log SET actor = :a WHERE id = :id"),
            {"a": original_actor, "id": edited_id},
        )
        session.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": deleted_id})
    deleted = run_cli(settings, "audit", "verify")
    assert deleted.exit_code == 1
    assert f"entry {follower_id}: prev_hash does not match the previous entry" in deleted.output
    # The checkpoint written after the first audited commit counted the removed entry too.
    assert "(entries deleted)" in deleted.output
    assert "audit chain BROKEN: 2 problem(s)" in deleted.output


# kombu's SQLAlchemy transport (the embedded broker) still uses a loader SQLAlchemy deprecates.
@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")
def test_outbox_relay_keeps_or_sends(settings, container: Container):
    assert run_cli(settings, "init").exit_code == 0
    # A bare Database has no after-commit sender: the row stays unsent, as after an outage.
    db = Database(settings.database_url)
    with db.transaction() as session:
        outbox.enqueue(session, "dossier.process_version", version_id="0" * 36)
    db.dispose()
    down = run_cli(settings, "outbox", "relay", DOSSIER_BROKER_URL="redis://127.0.0.1:1/0")
    assert down.exit_code == 0, down.output
    assert "0 task(s) sent; 1 still unsent" in down.output
    # The default embedded broker (a SQLite file in the data dir) needs no server.
    sent = run_cli(settings, "outbox", "relay")
    assert sent.exit_code == 0, sent.output
    assert "1 task(s) sent; 0 still unsent" in sent.output
    assert (settings.data_dir / "broker.sqlite").is_file()


# --- configuration and backend errors ------------------------------------------------------


@pytest.fixture
def bare_settings(tmp_path: Path) -> Settings:
    """Settings of an empty data dir; for errors that never reach a database."""
    data_dir = tmp_path / "bare"
    return Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'dossier.sqlite'}")


def test_unknown_setting_is_a_clear_error(bare_settings):
    for command in (
        ["init"],
        ["fsck"],
        ["audit", "verify"],
        ["tokens", "create", "--username", "x"],
    ):
        result = run_cli(bare_settings, *command, DOSSIER_FOO="1")
        assert (command, result.exit_code) == (command, 1)
        assert "configuration: unknown setting(s): DOSSIER_FOO" in result.output
        assert "Traceback" not in result.output
    # Nothing was created on the way to the error.
    assert not bare_settings.data_dir.exists()


def test_known_variables_are_the_settings_fields(tmp_path):
    """One variable per Settings field that comes from the environment, none for ``extra``."""
    from_environment = {f.name for f in fields(Settings)} - {"extra"}
    assert {variable_name(name) for name in from_environment} == KNOWN_VARIABLES
    assert variable_name("oidc_client_secret") == "DOSSIER_OIDC_CLIENT_SECRET"
    base = {"DOSSIER_DATA_DIR": str(tmp_path / "data")}
    assert load_settings({**base, "DOSSIER_SESSION_IDLE_MINUTES": "5"}).session_idle_minutes == 5
    with pytest.raises(ConfigError, match=r"^unknown setting\(s\): DOSSIER_EXTRA \(known: "):
        load_settings({**base, "DOSSIER_EXTRA": "{}"})


def test_test_suite_variables_do_not_stop_the_service(bare_settings, monkeypatch):
    result = run_cli(bare_settings, "init", DOSSIER_TEST_SOMETHING="1")
    assert result.exit_code == 0, result.output
    for name in list(os.environ):
        if name.startswith("DOSSIER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DOSSIER_DATA_DIR", str(bare_settings.data_dir))
    monkeypatch.setenv("DOSSIER_DATABASE_URL", bare_settings.database_url)
    monkeypatch.setenv("DOSSIER_TEST_SOMETHING", "1")
    app = create_app()
    assert app.test_client().get("/api/v1/openapi.json").status_code == 200
    app.extensions["dossier"].close()


def test_s3_without_endpoint_is_a_clear_error(bare_settings):
    result = run_cli(bare_settings, "init", DOSSIER_STORAGE="s3", DOSSIER_S3_BUCKET="dossier")
    assert result.exit_code == 1
    assert "configuration: DOSSIER_STORAGE=s3 needs DOSSIER_S3_ENDPOINT" in result.output
    assert "Traceback" not in result.output


def test_s3_settings_with_local_storage_is_a_clear_error(bare_settings):
    result = run_cli(bare_settings, "init", DOSSIER_S3_ENDPOINT="minio:9000")
    assert result.exit_code == 1
    assert "DOSSIER_S3_ENDPOINT set but DOSSIER_STORAGE is 'local'" in result.output


def test_unreachable_database_is_a_clear_error(bare_settings, tmp_path):
    missing = tmp_path / "no-such-dir" / "dossier.sqlite"
    result = run_cli(bare_settings, "audit", "verify", DOSSIER_DATABASE_URL=f"sqlite:///{missing}")
    assert result.exit_code == 1
    assert "database error: unable to open database file" in result.output
    assert "Traceback" not in result.output


def test_missing_storage_root_is_a_clear_error(settings):
    # The database is migrated, but nobody ran init: the store's root does not exist.
    result = run_cli(settings, "fsck")
    assert result.exit_code == 1
    assert "storage unavailable:" in result.output
    assert "does not exist" in result.output


# --- the installed script, end to end -----------------------------------------------------


def _script(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed ``dossier`` script."""
    return subprocess.run(
        [dossier_executable(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_installed_script_end_to_end(settings, app):
    # Each run of the script costs a second or two of imports: two runs cover the wiring
    # (entry point, environment, exit codes, stdout/stderr); the rest is tested in-process.
    env: dict[str, Any] = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")}
    env.update(DOSSIER_DATA_DIR=str(settings.data_dir), DOSSIER_DATABASE_URL=settings.database_url)
    assert (
        run_cli(
            settings,
            "units",
            "create",
            "--code",
            "baden",
            "--name",
            "Stadt Baden",
            "--kind",
            "municipality",
        ).exit_code
        == 0
    )
    assert (
        run_cli(
            settings,
            "users",
            "create",
            "--username",
            "s.keller",
            "--unit",
            "baden",
            "--role",
            "caseworker",
        ).exit_code
        == 0
    )
    created = _script(env, "tokens", "create", "--username", "s.keller")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    response = app.test_client().get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    bad = _script({**env, "DOSSIER_FOO": "1"}, "fsck")
    assert bad.returncode == 1
    assert "configuration: unknown setting(s): DOSSIER_FOO" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_worker_exits_with_celerys_failure_code(settings, monkeypatch):
    """A worker Celery stopped on an unrecoverable error exits non-zero (supervisors restart it)."""
    from celery import Celery

    seen: list[list[str]] = []

    def failed_start(self: Celery, argv: list[str] | None = None) -> int:
        seen.append(list(argv or []))
        return 1  # what Celery returns after "Unrecoverable error" (EX_FAILURE)

    monkeypatch.setattr(Celery, "start", failed_start)
    result = run_cli(settings, "worker", "--no-beat")
    assert seen and seen[0][0] == "worker"
    assert result.exit_code == 1
