"""The issue's scenario against a real `dossier serve` (gunicorn + worker), with a restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from dossier_service.samples import make_docx, make_pdf

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(data_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DOSSIER_") or k.startswith("DOSSIER_TEST_")
    }
    env["DOSSIER_DATA_DIR"] = str(data_dir)
    return env


def _cli(data_dir: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "dossier_service.cli", *args],
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


class Server:
    """A `dossier serve` subprocess on a free port."""

    def __init__(self, data_dir: Path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}/api/v1"
        self.log = open(data_dir / f"serve-{self.port}.log", "wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dossier_service.cli",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                "1",
            ],
            env=_env(data_dir),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base}/health", timeout=2).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):
                # Not listening yet, or (behind nginx) the workers are still booting.
                pass
            assert self.proc.poll() is None, "server exited during start-up"
            time.sleep(0.3)
        raise AssertionError("server did not become healthy")

    def stop(self) -> None:
        """Stop server and worker (the whole process group)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def test_scenario_against_dossier_serve(tmp_path: Path) -> None:
    data = tmp_path / "var"
    _cli(data, "init")
    for code, name, kind in [
        ("ag", "Kanton Aargau", "canton"),
        ("aarau", "Aarau", "municipality"),
        ("baden", "Baden", "municipality"),
        ("caritas", "Caritas", "organisation"),
    ]:
        _cli(data, "units", "create", "--code", code, "--name", name, "--kind", kind)
    tokens = {}
    for user, unit, role in [
        ("ksd", "ag", "caseworker"),
        ("gaarau", "aarau", "caseworker"),
        ("gbaden", "baden", "caseworker"),
        ("car", "caritas", "caseworker"),
        ("rev", "ag", "auditor"),
    ]:
        _cli(data, "users", "create", "--username", user, "--unit", unit, "--role", role)
        tokens[user] = _cli(data, "tokens", "create", "--username", user).strip().splitlines()[-1]

    def h(user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[user]}"}

    server = Server(data)
    try:
        base = server.base
        case = requests.post(
            f"{base}/cases",
            headers=h("ksd"),
            timeout=10,
            json={
                "person": {
                    "family_name": "Haile",
                    "given_names": "Semhar",
                    "birth_date": "1998",
                    "sex": "female",
                    "nationality": "ER",
                    "zemis_number": "1234 5678",
                    "residence_status": "F",
                },
                "entry_date": "2025-01-15",
            },
        ).json()
        cid = case["id"]
        pdf = make_pdf("Kurzassessment", ["Sprachstand A1"])
        docx = make_docx("Integrationsplan", ["IKG1"])
        r = requests.post(
            f"{base}/cases/{cid}/documents",
            headers=h("ksd"),
            timeout=30,
            files={"file": ("kurz.pdf", pdf)},
            data={"type": "short_assessment"},
        )
        assert r.status_code == 201, r.text
        doc = r.json()
        r = requests.post(
            f"{base}/cases/{cid}/documents",
            headers=h("ksd"),
            timeout=30,
            files={"file": ("plan.docx", docx)},
            data={"type": "integration_plan"},
        )
        assert r.status_code == 201, r.text
        assert (
            requests.get(f"{base}/cases/{cid}", headers=h("gaarau"), timeout=10).status_code == 404
        )
        r = requests.post(
            f"{base}/cases/{cid}/transfers",
            headers=h("ksd"),
            timeout=10,
            json={"to_unit": "aarau", "reason": "Wohnsitz"},
        )
        assert r.status_code == 409 and r.json()["error"]["code"] == "end_report_required"
        r = requests.post(
            f"{base}/cases/{cid}/documents",
            headers=h("ksd"),
            timeout=30,
            files={"file": ("sb.pdf", make_pdf("Schlussbericht", ["Ende"]))},
            data={"type": "end_report"},
        )
        assert r.status_code == 201
        r = requests.post(
            f"{base}/cases/{cid}/transfers",
            headers=h("ksd"),
            timeout=10,
            json={"to_unit": "aarau", "reason": "Wohnsitz"},
        )
        assert r.status_code == 201, r.text
        got = requests.get(f"{base}/documents/{doc['id']}/content", headers=h("gaarau"), timeout=10)
        assert got.content == pdf
        v2 = make_pdf("Kurzassessment", ["Sprachstand A2"])
        r = requests.post(
            f"{base}/documents/{doc['id']}/versions",
            headers=h("gaarau"),
            timeout=30,
            files={"file": ("kurz2.pdf", v2)},
        )
        assert r.status_code == 201 and r.json()["current_version"] == 2
        assert (
            requests.post(
                f"{base}/cases/{cid}/delegations",
                headers=h("gaarau"),
                timeout=10,
                json={"to_unit": "caritas"},
            ).status_code
            == 201
        )
        assert requests.get(f"{base}/cases/{cid}", headers=h("car"), timeout=10).status_code == 200
        r = requests.post(
            f"{base}/cases/{cid}/documents",
            headers=h("gaarau"),
            timeout=30,
            files={"file": ("notiz.pdf", make_pdf("Übergabenotiz", ["Stand beim Wegzug"]))},
            data={"type": "handover_note"},
        )
        assert r.status_code == 201, r.text
        assert (
            requests.post(
                f"{base}/cases/{cid}/transfers",
                headers=h("gaarau"),
                timeout=10,
                json={"to_unit": "baden", "reason": "Umzug"},
            ).status_code
            == 201
        )
        for former in ("gaarau", "car"):
            assert (
                requests.get(f"{base}/cases/{cid}", headers=h(former), timeout=10).status_code
                == 404
            )
        # The worker processes uploads in the background: wait for every version to be ready.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            docs = requests.get(
                f"{base}/cases/{cid}/documents", headers=h("gbaden"), timeout=10
            ).json()["items"]
            states = [v["processing"] for d in docs for v in d["versions"]]
            if all(s == "ready" for s in states):
                break
            time.sleep(0.5)
        assert states == ["ready"] * 5  # four uploads and Aarau's hand-over note
        audit = requests.get(
            f"{base}/audit",
            params={"case_id": cid, "actor": "gaarau"},
            headers=h("rev"),
            timeout=10,
        ).json()["items"]
        assert {"content.read", "version.create", "transfer.create"} <= {e["action"] for e in audit}
    finally:
        server.stop()

    # Everything survives a restart.
    server = Server(data)
    try:
        got = requests.get(
            f"{server.base}/documents/{doc['id']}/versions/1/content",
            headers=h("gbaden"),
            timeout=10,
        )
        assert got.content == pdf
        assert (
            requests.get(f"{server.base}/cases/{cid}", headers=h("gaarau"), timeout=10).status_code
            == 404
        )
    finally:
        server.stop()
    assert "fsck: 0 problem(s), 0 orphaned object(s)" in _cli(data, "fsck")
    assert "audit chain intact" in _cli(data, "audit", "verify")
