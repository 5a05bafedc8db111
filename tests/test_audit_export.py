"""Audit-log export: signed JSON lines in a separate place; any tampering shows."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dossier_service.config import ConfigError, load_settings
from dossier_service.container import Container
from dossier_service.dates import local_today
from dossier_service.models import AuditEntry
from dossier_service.services import audit_export
from tests.factories import new_case, run_cli

KEY = "k" * 40
OTHER_KEY = "o" * 40


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "audit-archive"


def exported_file(out_dir: Path) -> Path:
    files = sorted(out_dir.glob("audit-*.jsonl"))
    assert len(files) == 1, files
    return files[0]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("ascii").splitlines()]


def test_cli_writes_signed_lines_that_verify(client, world, settings, container, out_dir):
    new_case(client, world)
    with container.db.transaction() as session:
        total = session.execute(select(func.count(AuditEntry.id))).scalar_one()
    result = run_cli(
        settings,
        "audit",
        "export",
        "--since",
        "2000-01-01",
        "--out",
        str(out_dir),
        DOSSIER_AUDIT_SIGNING_KEY=KEY,
    )
    assert result.exit_code == 0, result.output
    path = exported_file(out_dir)
    assert f"{total} audit entries written to {path}" in result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    content = lines(path)
    assert content[0]["type"] == "header"
    assert content[0]["algorithm"] == "HMAC-SHA256"
    assert content[0]["key_id"] == audit_export.key_id(KEY.encode())
    assert content[-1]["type"] == "trailer" and content[-1]["count"] == total
    entries = [c for c in content if c["type"] == "entry"]
    assert [e["action"] for e in entries][:2] == ["unit.create", "unit.create"]
    assert {
        "id",
        "at",
        "actor",
        "unit",
        "action",
        "case_id",
        "outcome",
        "detail",
        "prev_hash",
        "hash",
        "mac",
    } <= set(entries[0])
    assert audit_export.verify_export(path, KEY) == []
    verified = run_cli(settings, "audit", "verify-export", str(path), DOSSIER_AUDIT_SIGNING_KEY=KEY)
    assert verified.exit_code == 0 and "audit export intact" in verified.output

    # The export itself is audited (after the file, so it is in the next export).
    with container.db.transaction() as session:
        logged = session.execute(
            select(AuditEntry).where(AuditEntry.action == "audit.export")
        ).scalar_one()
    assert logged.detail["count"] == total and logged.detail["file"] == path.name
    assert logged.detail["through_id"] == entries[-1]["id"]
    assert logged.actor.startswith("cli:")


def _rewrite(path: Path, change) -> Path:
    raw = path.read_text("ascii").splitlines()
    path.write_text("\n".join(change(raw)) + "\n", "ascii")
    return path


@pytest.mark.parametrize("tamper", ["alter", "remove", "reorder", "truncate", "append"])
def test_any_tampering_breaks_the_signatures(client, world, container, out_dir, tamper):
    new_case(client, world)
    settings = container.settings.with_overrides(audit_signing_key=KEY)
    signed = Container(settings)
    try:
        result = audit_export.export_audit_log(
            signed, dt.datetime(2000, 1, 1, tzinfo=dt.UTC), out_dir
        )
    finally:
        signed.close()
    path = result.path
    assert audit_export.verify_export(path, KEY) == []

    def change(raw: list[str]) -> list[str]:
        if tamper == "alter":
            raw[2] = raw[2].replace('"ok"', '"denied"')
        elif tamper == "remove":
            del raw[3]
        elif tamper == "reorder":
            raw[2], raw[3] = raw[3], raw[2]
        elif tamper == "truncate":
            raw = raw[:-1]
        else:
            raw.append(raw[-1])
        return raw

    problems = audit_export.verify_export(_rewrite(path, change), KEY)
    assert problems, tamper
    if tamper == "truncate":
        assert problems == ["no trailer line: the file is incomplete"]


def test_another_key_does_not_verify(client, world, container, out_dir):
    signed_settings = container.settings.with_overrides(audit_signing_key=KEY)
    signed = Container(signed_settings)
    try:
        path = audit_export.export_audit_log(
            signed, dt.datetime(2000, 1, 1, tzinfo=dt.UTC), out_dir
        ).path
    finally:
        signed.close()
    problems = audit_export.verify_export(path, OTHER_KEY)
    assert "the file was signed with another key" in problems
    assert problems[0].startswith("line 1: signature does not verify")


def test_since_limits_the_entries(client, world, settings, out_dir):
    new_case(client, world)
    tomorrow = (local_today() + dt.timedelta(days=2)).isoformat()
    result = run_cli(
        settings,
        "audit",
        "export",
        "--since",
        tomorrow,
        "--out",
        str(out_dir),
        DOSSIER_AUDIT_SIGNING_KEY=KEY,
    )
    assert result.exit_code == 0, result.output
    content = lines(exported_file(out_dir))
    assert [c["type"] for c in content] == ["header", "trailer"]
    assert content[-1]["count"] == 0


def test_a_missing_or_short_key_is_a_clear_error(settings, out_dir):
    missing = run_cli(settings, "audit", "export", "--since", "2026-01-01", "--out", str(out_dir))
    assert missing.exit_code == 1
    assert "DOSSIER_AUDIT_SIGNING_KEY is not set" in missing.output
    short = run_cli(
        settings,
        "audit",
        "export",
        "--since",
        "2026-01-01",
        "--out",
        str(out_dir),
        DOSSIER_AUDIT_SIGNING_KEY="short",
    )
    assert short.exit_code == 1
    assert "DOSSIER_AUDIT_SIGNING_KEY is too short: 5 characters" in short.output
    assert not out_dir.exists() or not list(out_dir.iterdir())


def test_the_target_must_be_apart_from_the_data(settings, tmp_path):
    inside = run_cli(
        settings,
        "audit",
        "export",
        "--since",
        "2026-01-01",
        "--out",
        str(settings.data_dir / "audit"),
        DOSSIER_AUDIT_SIGNING_KEY=KEY,
    )
    assert inside.exit_code == 1 and "must be kept apart" in inside.output
    nowhere = run_cli(
        settings, "audit", "export", "--since", "2026-01-01", DOSSIER_AUDIT_SIGNING_KEY=KEY
    )
    assert nowhere.exit_code == 1 and "DOSSIER_AUDIT_EXPORT_DIR" in nowhere.output
    target = tmp_path / "from-env"
    from_env = run_cli(
        settings,
        "audit",
        "export",
        "--since",
        "2026-01-01",
        DOSSIER_AUDIT_SIGNING_KEY=KEY,
        DOSSIER_AUDIT_EXPORT_DIR=str(target),
    )
    assert from_env.exit_code == 0, from_env.output
    assert len(list(target.glob("audit-*.jsonl"))) == 1
    bad_since = run_cli(
        settings,
        "audit",
        "export",
        "--since",
        "gestern",
        "--out",
        str(target),
        DOSSIER_AUDIT_SIGNING_KEY=KEY,
    )
    assert bad_since.exit_code == 2


def test_settings_know_the_new_variables(tmp_path):
    settings = load_settings(
        {
            "DOSSIER_DATA_DIR": str(tmp_path),
            "DOSSIER_RETENTION_DAYS": "400",
            "DOSSIER_AUDIT_SIGNING_KEY": KEY,
            "DOSSIER_AUDIT_EXPORT_DIR": str(tmp_path / "logs"),
        }
    )
    assert settings.retention_days == 400
    assert settings.audit_signing_key == KEY and KEY not in repr(settings)
    assert settings.audit_export_dir == (tmp_path / "logs").resolve()
    assert load_settings({"DOSSIER_DATA_DIR": str(tmp_path)}).retention_days == 730
    for bad in ("0", "abc", "40000"):
        with pytest.raises(ConfigError, match="DOSSIER_RETENTION_DAYS"):
            load_settings({"DOSSIER_DATA_DIR": str(tmp_path), "DOSSIER_RETENTION_DAYS": bad})
