"""The person's right of access (nDSG Art. 25): everything held about them, as one ZIP.

The canton produces it (Action.DISCLOSURE) for a case, open or closed. The ZIP holds:

- ``person.json``: the person's data and every fact of the case in the database
  (responsibility periods, delegations, target groups, measures, milestones, closures,
  cost approvals, notifications), the corrections of the person's data
  (``person_history``) and of the residence status with the date of each decision
  (``status_history``), and the list of documents, withdrawn ones marked, each with its
  history of corrections, moves and withdrawal (``history``);
- ``Dokumente/NNN <type> - <title>/Version N - <filename>``: every version of every document;
- ``zugriffsprotokoll.json``: the case's access log up to and including this disclosure;
- ``index.html``: the same in German, readable in any browser without network access, with
  links to the files; rendered from the autoescaped Jinja template
  ``templates/disclosure/index.html``, so every value from the database is HTML-escaped.

The access log names the unit, the action, the time and the outcome of each access. The
usernames and IP addresses of staff are left out: they are the employees' personal data,
not the requester's (nDSG Art. 26 para. 1 b allows withholding for third parties'
interests); the data-protection officer can name individuals on request from the full log.
Legal holds are internal measures on the record and are not listed. The histories do name
the user who made each change (as the case page does): each change is a decision on the
person's data that they may contest (nDSG Art. 32).

The ZIP is streamed: it is written into a small buffer that the HTTP response drains after
every chunk, with file contents streamed from storage, so memory does not grow with the
size of the case. ``disclosure.create`` is audited before the first byte leaves.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from dossier_service import labels
from dossier_service.dates import swiss_date, swiss_datetime, zip_time
from dossier_service.identity import Identity
from dossier_service.models import (
    JOURNAL_KINDS,
    AuditEntry,
    CostApproval,
    Measure,
    Milestone,
    Notification,
    Unit,
)
from dossier_service.models.process import (
    CLOSE_REASONS,
    MEASURE_STATUSES,
    TARGET_GROUPS,
)
from dossier_service.policy import Action, load_case
from dossier_service.services import audit, follow_ups, histories, journal, templates
from dossier_service.services.person import person_history, status_history
from dossier_service.services.snapshot import CaseSnapshot, UnitRef, case_snapshot
from storage import ObjectNotFound

if TYPE_CHECKING:
    from dossier_service.container import Container

log = logging.getLogger(__name__)

#: Hand the buffered ZIP bytes to the response once this much has collected.
FLUSH_BYTES = 1024 * 1024
#: Audit entries read per query while writing the access log.
LOG_BATCH = 1000

#: What each audited action means, in words a person understands.
ACTION_LABELS: dict[str, str] = {
    "case.create": "Fall eröffnet",
    "case.read": "Fall angesehen",
    "case.list": "Fallliste angesehen",
    "case.update": "Falldaten geändert",
    "case.close": "Fall abgeschlossen",
    "case.reopen": "Fall wieder eröffnet",
    "case.delete": "Fall gelöscht",
    "transfer.create": "Fall an eine andere Stelle übergeben",
    "delegation.create": "Begleitung an eine Organisation delegiert",
    "delegation.end": "Delegation beendet",
    "document.create": "Dokument erfasst",
    "version.create": "Neue Version eines Dokuments erfasst",
    "document.read": "Angaben zu einem Dokument angesehen",
    "document.list": "Dokumentliste angesehen",
    "content.read": "Dokument geöffnet oder heruntergeladen",
    "document.correct": "Angaben zu einem Dokument geändert",
    "document.history": "Änderungen an einem Dokument angesehen",
    "document.withdraw": "Dokument zurückgezogen",
    "document.list_withdrawn": "Zurückgezogene Dokumente aufgelistet",
    "document.read_withdrawn": "Angaben zu einem zurückgezogenen Dokument angesehen",
    "content.read_withdrawn": "Zurückgezogenes Dokument geöffnet oder heruntergeladen",
    "document.purge": "Zurückgezogenes Dokument endgültig gelöscht",
    "document.move": "Dokument in einen anderen Fall verschoben",
    "document.move_in": "Dokument aus einem anderen Fall hierher verschoben",
    "measure.create": "Massnahme erfasst",
    "measure.update": "Massnahme geändert",
    "measure.list": "Massnahmen angesehen",
    "milestone.create": "Meilenstein erfasst",
    "milestone.list": "Meilensteine angesehen",
    "cost_approval.request": "Kostengutsprache beantragt",
    "cost_approval.decide": "Über Kostengutsprache entschieden",
    "cost_approval.read": "Kostengutsprache angesehen",
    "cost_approval.list": "Kostengutsprachen angesehen",
    "export.create": "Ablieferung an das Archiv vorbereitet",
    "export.download": "Ablieferung an das Archiv übermittelt",
    "export.acknowledge": "Übernahme durch das Archiv bestätigt",
    "legal_hold.set": "Löschsperre gesetzt",
    "legal_hold.release": "Löschsperre aufgehoben",
    "disclosure.create": "Auskunft an die betroffene Person erstellt",
    "fixity.check": "Unversehrtheit einer Datei technisch geprüft",
    "search": "In Suchergebnissen angezeigt",
}
_OUTCOMES = {"ok": "ausgeführt", "denied": "verweigert"}


@dataclass(frozen=True)
class DisclosedFile:
    """One version in the ZIP."""

    path: str
    storage_key: str
    size: int
    created_at: dt.datetime


@dataclass
class Disclosure:
    """Everything needed to stream the ZIP, gathered while the request's transaction is open."""

    case_id: str
    reference: str
    generated_at: dt.datetime
    data: dict[str, Any]
    files: list[DisclosedFile] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)
    documents: dict[str, str] = field(default_factory=dict)
    #: The access log is included up to this entry: the disclosure itself.
    log_until_id: int = 0

    @property
    def filename(self) -> str:
        """Download name of the ZIP."""
        return f"Auskunft-{self.reference}.zip"


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _segment(text: str, limit: int = 80) -> str:
    """A readable, safe file or folder name (no slashes, controls or leading dots)."""
    cleaned = re.sub(r'[\x00-\x1f\x7f/\\:*?"<>|]+', "_", text).strip().lstrip(".")
    return (cleaned[:limit].rstrip() or "Dokument").rstrip(".")


def prepare(container: Container, session: Session, identity: Identity, case_id: str) -> Disclosure:
    """Check the caller, audit the disclosure and gather the case's data (caller commits)."""
    case = load_case(session, identity, case_id, Action.DISCLOSURE)
    units = {u.id: u for u in session.execute(select(Unit)).scalars()}
    snapshot = case_snapshot(session, case, documents=True)
    data = _case_data(session, snapshot, units)
    data["person_history"] = [
        {
            "field": e.field,
            "label": labels.label("person_field", e.field),
            "old": e.old_value,
            "new": e.new_value,
            "reason": e.reason,
            "by": e.by,
            "at": _iso(e.at),
        }
        for e in person_history(session, case.id)
    ]
    data["status_history"] = [
        {
            "old_status": e.old_status,
            "new_status": e.new_status,
            "regulation_date": _iso(e.regulation_date),
            "reason": e.reason,
            "by": e.by,
            "at": _iso(e.at),
        }
        for e in status_history(session, case.id)
    ]
    # The journal and the follow-ups are about the person too (nDSG Art. 25): each with the
    # unit that wrote it, like the access log, which names units rather than staff.
    data["journal"] = [
        {
            "kind": e.kind,
            "occurred_on": _iso(e.occurred_on),
            "text": e.text,
            "participants": list(e.participants),
            "unit": e.unit.name,
            "written_at": _iso(e.created_at),
            "corrects": e.corrects_id,
            "id": e.id,
        }
        for e in journal.entries_of(session, case.id)
    ]
    data["follow_ups"] = [
        {
            "due_date": _iso(f.due_date),
            "note": f.note,
            "unit": f.unit.name,
            "done_at": _iso(f.done_at),
            "done_note": f.done_note,
        }
        for f in follow_ups.of_case(session, case.id)
    ]
    files: list[DisclosedFile] = []
    documents_json = []
    titles: dict[str, str] = {}
    for index, document in enumerate(snapshot.documents, start=1):
        type_label = labels.label("document_type", document.type)
        folder = f"Dokumente/{index:03d} {_segment(type_label, 40)} - {_segment(document.title)}"
        titles[document.id] = f"{type_label}: {document.title}"
        versions = []
        for version in document.versions:
            path = f"{folder}/Version {version.number} - {_segment(version.filename)}"
            files.append(DisclosedFile(path, version.storage_key, version.size, version.created_at))
            versions.append(
                {
                    "number": version.number,
                    "filename": version.filename,
                    "media_type": version.media_type,
                    "size": version.size,
                    "sha256": version.sha256,
                    "created_at": _iso(version.created_at),
                    "created_by_unit": version.created_by_unit_code,
                    "reason": version.reason,
                    "file": path,
                }
            )
        documents_json.append(
            {
                "id": document.id,
                "type": document.type,
                "type_label": type_label,
                "title": document.title,
                "document_date": (
                    document.document_date.isoformat() if document.document_date else None
                ),
                "tags": list(document.tags),
                "created_at": _iso(document.created_at),
                # Withdrawn (filed in this dossier by mistake, or no longer to be used):
                # still the person's data held here, so disclosed, and marked.
                "withdrawn": document.withdrawn_at is not None,
                "withdrawn_at": _iso(document.withdrawn_at) if document.withdrawn_at else None,
                "withdrawn_reason": document.withdrawn_reason,
                "history": [
                    {
                        "field": c.field,
                        "old": c.old,
                        "new": c.new,
                        "reason": c.reason,
                        "by": c.by,
                        "at": _iso(c.at),
                    }
                    for c in document.changes
                ],
                "versions": versions,
            }
        )
    data["documents"] = documents_json
    entry = audit.record(
        session,
        identity,
        "disclosure.create",
        case_id=case.id,
        detail={"documents": len(documents_json), "files": len(files)},
    )
    generated_at = entry.at
    data["generated_at"] = _iso(generated_at)
    return Disclosure(
        case_id=case.id,
        reference=case.reference,
        generated_at=generated_at,
        data=data,
        files=files,
        units={u.code: u.name for u in units.values()},
        documents=titles,
        log_until_id=entry.id,
    )


def _unit_ref(unit: UnitRef | None) -> dict[str, str] | None:
    return {"code": unit.code, "name": unit.name} if unit is not None else None


def _case_data(session: Session, case: CaseSnapshot, units: dict[int, Unit]) -> dict[str, Any]:
    """The person and every database fact of the case, as plain JSON values."""

    def unit(unit_id: int | None) -> dict[str, str] | None:
        if unit_id is None or unit_id not in units:
            return None
        return {"code": units[unit_id].code, "name": units[unit_id].name}

    def rows(model: Any, *order: Any) -> list[Any]:
        return list(
            session.execute(
                select(model).where(model.case_id == case.id).order_by(*order)
            ).scalars()
        )

    return {
        "case": {
            "reference": case.reference,
            "status": case.status,
            "entry_date": _iso(case.entry_date),
            "created_at": _iso(case.created_at),
        },
        "person": case.person,
        "responsibilities": [
            {
                "unit": _unit_ref(r.unit),
                "from": _iso(r.start),
                "to": _iso(r.end),
                "reason": r.reason,
            }
            for r in case.responsibilities
        ],
        "delegations": [
            {
                "unit": _unit_ref(d.unit),
                "granted_by": _unit_ref(d.granted_by),
                "from": _iso(d.start),
                "to": _iso(d.end),
                "reason": d.reason,
                "end_reason": d.end_reason,
            }
            for d in case.delegations
        ],
        "target_groups": [
            {
                "target_group": g.group,
                "label": TARGET_GROUPS.get(g.group),
                "from": _iso(g.start),
                "to": _iso(g.end),
                "reason": g.reason,
            }
            for g in case.target_groups
        ],
        "measures": [
            {
                "programme": m.programme,
                "label": labels.PROGRAMME.get(m.programme),
                "provider": m.provider,
                "start_date": _iso(m.start_date),
                "end_date": _iso(m.end_date),
                "status": m.status,
                "note": m.note,
            }
            for m in rows(Measure, Measure.start_date, Measure.id)
        ],
        "milestones": [
            {"kind": m.kind, "value": m.value, "date": _iso(m.date), "note": m.note}
            for m in rows(Milestone, Milestone.date, Milestone.id)
        ],
        "closures": [
            {
                "closed_at": _iso(c.closed_at),
                "reason": c.reason,
                "reason_label": CLOSE_REASONS.get(c.reason),
                "note": c.note,
                "reopened_at": _iso(c.reopened_at),
                "reopen_reason": c.reopen_reason,
            }
            for c in case.closures
        ],
        "cost_approvals": [
            {
                "programme": a.programme,
                "amount_chf": str(a.amount_chf),
                "period_from": _iso(a.period_from),
                "period_to": _iso(a.period_to),
                "justification": a.justification,
                "status": a.status,
                "requested_at": _iso(a.requested_at),
                "requested_by_unit": unit(a.requested_by_unit_id),
                "decided_at": _iso(a.decided_at),
                "approved_amount_chf": None
                if a.approved_amount_chf is None
                else str(a.approved_amount_chf),
                "decision_reason": a.decision_reason,
            }
            for a in rows(CostApproval, CostApproval.requested_at, CostApproval.id)
        ],
        "notifications": [
            {"kind": n.kind, "unit": unit(n.unit_id), "created_at": _iso(n.created_at)}
            for n in rows(Notification, Notification.created_at, Notification.id)
        ],
    }


# --- Streaming the ZIP -------------------------------------------------------------------------


class _Sink:
    """A write-only, unseekable file: zipfile writes into it, the generator drains it."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self.pending = 0

    def write(self, data: bytes) -> int:
        """Collect bytes zipfile wrote."""
        self._chunks.append(bytes(data))
        self.pending += len(data)
        return len(data)

    def flush(self) -> None:
        """Nothing to flush: the generator drains the buffer."""

    def close(self) -> None:
        """Nothing to close: the generator drains the buffer."""

    def drain(self) -> bytes:
        """Everything written since the last drain."""
        data = b"".join(self._chunks)
        self._chunks.clear()
        self.pending = 0
        return data


def _info(name: str, when: dt.datetime, size: int = 0) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=zip_time(when))
    info.compress_type = zipfile.ZIP_DEFLATED
    # On an unseekable stream zipfile must know up front whether ZIP64 headers are needed.
    info.file_size = size
    return info


def _log_entries(container: Container, disclosure: Disclosure) -> Iterator[AuditEntry]:
    """The case's access log up to the disclosure, in batches (each its own short read)."""
    last_id = 0
    while True:
        with container.db.transaction() as session:
            batch = list(
                session.execute(
                    select(AuditEntry)
                    .where(
                        audit.concerning_case(disclosure.case_id),
                        AuditEntry.id > last_id,
                        AuditEntry.id <= disclosure.log_until_id,
                    )
                    .order_by(AuditEntry.id)
                    .limit(LOG_BATCH)
                ).scalars()
            )
        if not batch:
            return
        # Searches that named the case only inside another value are no access to it.
        yield from (e for e in batch if audit.is_about_case(e, disclosure.case_id))
        last_id = batch[-1].id


def _shown_documents(entry: AuditEntry, disclosure: Disclosure) -> str | None:
    """For a search entry: the titles of this case's documents its result page showed."""
    if entry.action != "search":
        return None
    shown = (entry.detail or {}).get("documents") or []
    titles = [disclosure.documents[d] for d in shown if d in disclosure.documents]
    return "; ".join(titles) or None


def _log_json(entry: AuditEntry, disclosure: Disclosure) -> dict[str, Any]:
    return {
        "at": _iso(entry.at),
        "action": entry.action,
        "description": ACTION_LABELS.get(entry.action, entry.action),
        "unit": entry.unit,
        "unit_name": disclosure.units.get(entry.unit or "", None),
        "document": _shown_documents(entry, disclosure)
        or disclosure.documents.get(entry.document_id or "", entry.document_id),
        "version": entry.version,
        "outcome": entry.outcome,
    }


def stream(container: Container, disclosure: Disclosure) -> Iterator[bytes]:
    """The ZIP as chunks; file contents come straight from storage."""
    sink = _Sink()
    missing: set[str] = set()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        body = json.dumps(disclosure.data, ensure_ascii=False, indent=2).encode("utf-8")
        archive.writestr(_info("person.json", disclosure.generated_at, len(body)), body)
        yield sink.drain()
        for item in disclosure.files:
            try:
                chunks = container.store.open(item.storage_key)
            except ObjectNotFound:
                log.error(
                    "disclosure of %s: object %s is missing", disclosure.reference, item.storage_key
                )
                missing.add(item.path)
                note = "Diese Version fehlt im Datenspeicher; die Stelle wurde informiert.\n"
                archive.writestr(
                    _info(item.path + ".FEHLT.txt", disclosure.generated_at),
                    note.encode("utf-8"),
                )
                continue
            try:
                with archive.open(_info(item.path, item.created_at, item.size), "w") as target:
                    for chunk in chunks:
                        target.write(chunk)
                        if sink.pending >= FLUSH_BYTES:
                            yield sink.drain()
            finally:
                # An aborted download must release the file or connection right away.
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
            yield sink.drain()
        with archive.open(_info("zugriffsprotokoll.json", disclosure.generated_at), "w") as target:
            target.write(b"[")
            first = True
            for entry in _log_entries(container, disclosure):
                line = json.dumps(_log_json(entry, disclosure), ensure_ascii=False)
                target.write((b"\n  " if first else b",\n  ") + line.encode("utf-8"))
                first = False
                if sink.pending >= FLUSH_BYTES:
                    yield sink.drain()
            target.write(b"\n]\n")
        yield sink.drain()
        with archive.open(_info("index.html", disclosure.generated_at), "w") as target:
            for part in _html(container, disclosure, missing):
                target.write(part.encode("utf-8"))
                if sink.pending >= FLUSH_BYTES:
                    yield sink.drain()
    yield sink.drain()


# --- index.html ----------------------------------------------------------------------------------

INDEX_TEMPLATE = "disclosure/index.html"


def _href(path: str) -> str:
    """A relative link to a file in the ZIP (each segment percent-encoded)."""
    return "/".join(quote(segment) for segment in path.split("/"))


def _unit_text(unit: dict[str, str] | None) -> str:
    return unit["name"] if unit else ""


def _date(value: str | None) -> str:
    if not value:
        return ""
    if len(value) == 10:
        return swiss_date(dt.date.fromisoformat(value))
    return swiss_datetime(dt.datetime.fromisoformat(value))


def _sections(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The tables of index.html before the documents, as plain values (the template escapes)."""
    person = data["person"]

    def section(title: str, headers: list[str], rows: list[list[Any]]) -> dict[str, Any]:
        return {"title": title, "headers": headers, "rows": rows}

    return [
        section(
            "Personendaten",
            ["Angabe", "Wert"],
            [
                ["Familienname", person["family_name"]],
                ["Vornamen", person["given_names"]],
                ["Geburtsdatum", person["birth_date"]],
                ["Geschlecht", labels.label("sex", person["sex"])],
                ["Staatsangehörigkeit", person["nationality"]],
                ["ZEMIS-Nummer", person["zemis_number"]],
                ["AHV-Nummer", person["ahv_number"] or "keine"],
                ["Aufenthaltsstatus", labels.label("residence_status", person["residence_status"])],
                ["Datum des Entscheids (Regelung)", _date(person["regulation_date"])],
                ["Einreisedatum", _date(data["case"]["entry_date"])],
                ["Fallstatus", "abgeschlossen" if data["case"]["status"] == "closed" else "offen"],
            ],
        ),
        section(
            "Korrekturen der Personendaten",
            ["Angabe", "bisher", "neu", "Grund", "geändert durch", "am"],
            [
                [
                    c["label"],
                    histories.person_value(c["field"], _shown(c["field"], c["old"])),
                    histories.person_value(c["field"], _shown(c["field"], c["new"])),
                    c["reason"],
                    c["by"],
                    _date(c["at"]),
                ]
                for c in data["person_history"]
            ],
        ),
        section(
            "Änderungen des Aufenthaltsstatus",
            ["bisher", "neu", "Datum des Entscheids", "Grund", "geändert durch", "am"],
            [
                [
                    histories.person_value("residence_status", c["old_status"]),
                    histories.person_value("residence_status", c["new_status"]),
                    _date(c["regulation_date"]),
                    c["reason"],
                    c["by"],
                    _date(c["at"]),
                ]
                for c in data["status_history"]
            ],
        ),
        section(
            "Zuständige Stellen",
            ["Stelle", "von", "bis", "Grund"],
            [
                [_unit_text(r["unit"]), _date(r["from"]), _date(r["to"]), r["reason"]]
                for r in data["responsibilities"]
            ],
        ),
        section(
            "Delegierte Begleitung",
            ["Organisation", "im Auftrag von", "von", "bis"],
            [
                [
                    _unit_text(d["unit"]),
                    _unit_text(d["granted_by"]),
                    _date(d["from"]),
                    _date(d["to"]),
                ]
                for d in data["delegations"]
            ],
        ),
        section(
            "Zielgruppe",
            ["Zielgruppe", "von", "bis"],
            [
                [g["label"] or g["target_group"], _date(g["from"]), _date(g["to"])]
                for g in data["target_groups"]
            ],
        ),
        section(
            "Massnahmen",
            ["Massnahme", "Anbieter", "Beginn", "Ende", "Status", "Bemerkung"],
            [
                [
                    m["label"] or m["programme"],
                    m["provider"],
                    _date(m["start_date"]),
                    _date(m["end_date"]),
                    MEASURE_STATUSES.get(m["status"], m["status"]),
                    m["note"],
                ]
                for m in data["measures"]
            ],
        ),
        section(
            "Meilensteine",
            ["Art", "Wert", "Datum", "Bemerkung"],
            [[m["kind"], m["value"], _date(m["date"]), m["note"]] for m in data["milestones"]],
        ),
        section(
            "Kostengutsprachen",
            ["Massnahme", "Betrag CHF", "Zeitraum", "Status", "bewilligt CHF", "Begründung"],
            [
                [
                    labels.label("programme", a["programme"]),
                    a["amount_chf"],
                    f"{_date(a['period_from'])} – {_date(a['period_to'])}",
                    a["status"],
                    a["approved_amount_chf"],
                    a["decision_reason"],
                ]
                for a in data["cost_approvals"]
            ],
        ),
        section(
            "Journal",
            ["Datum", "Art", "Beteiligte", "Eintrag", "Stelle", "erfasst am"],
            [
                [
                    _date(e["occurred_on"]),
                    JOURNAL_KINDS.get(e["kind"], e["kind"])
                    + (" (Korrektur eines früheren Eintrags)" if e["corrects"] else ""),
                    ", ".join(e["participants"]),
                    e["text"],
                    e["unit"],
                    _date(e["written_at"]),
                ]
                for e in data["journal"]
            ],
        ),
        section(
            "Wiedervorlagen",
            ["fällig am", "Was ist zu tun", "Stelle", "erledigt am", "Notiz"],
            [
                [_date(f["due_date"]), f["note"], f["unit"], _date(f["done_at"]), f["done_note"]]
                for f in data["follow_ups"]
            ],
        ),
        section(
            "Fallabschluss",
            ["abgeschlossen am", "Grund", "wieder eröffnet am"],
            [
                [_date(c["closed_at"]), c["reason_label"] or c["reason"], _date(c["reopened_at"])]
                for c in data["closures"]
            ],
        ),
    ]


def _shown(field: str, value: str | None) -> str | None:
    """A recorded date or moment in the Swiss form; other values as recorded."""
    if (
        isinstance(value, str)
        and value
        and field in ("regulation_date", "document_date", "withdrawn")
    ):
        try:
            return _date(value)
        except ValueError:  # recorded by an older version in another form: show it as it is
            return value
    return value


def _document_history(data: dict[str, Any]) -> dict[str, Any]:
    """The table of every document's corrections, moves and withdrawal (withdrawn marked)."""
    rows = [
        [
            document["title"] + (" (zurückgezogen)" if document["withdrawn"] else ""),
            labels.label("document_field", change["field"]),
            histories.document_value(change["field"], _shown(change["field"], change["old"])),
            histories.document_value(change["field"], _shown(change["field"], change["new"])),
            change["reason"],
            change["by"],
            _date(change["at"]),
        ]
        for document in data["documents"]
        for change in document["history"]
    ]
    return {
        "title": "Änderungen an Dokumenten",
        "headers": ["Dokument", "Angabe", "bisher", "neu", "Grund", "geändert durch", "am"],
        "rows": rows,
    }


def _documents(data: dict[str, Any], missing: set[str]) -> list[dict[str, Any]]:
    """One row per version; ``href`` None for a version missing from storage."""
    return [
        {
            "type_label": document["type_label"],
            "title": document["title"] + (" (zurückgezogen)" if document["withdrawn"] else ""),
            "number": version["number"],
            "created_at": _date(version["created_at"]),
            "filename": version["filename"],
            "href": None if version["file"] in missing else _href(version["file"]),
        }
        for document in data["documents"]
        for version in document["versions"]
    ]


def _log_rows(container: Container, disclosure: Disclosure) -> Iterator[dict[str, str]]:
    """The access log's rows for the page, read in batches as the template asks for them."""
    for entry in _log_entries(container, disclosure):
        item = _log_json(entry, disclosure)
        document = item["document"] or ""
        if document and item["version"]:
            document = f"{document} (Version {item['version']})"
        yield {
            "at": swiss_datetime(entry.at),
            "unit": item["unit_name"] or item["unit"] or "System",
            "description": item["description"],
            "document": document,
            "outcome": _OUTCOMES.get(entry.outcome, entry.outcome),
        }


def _html(container: Container, disclosure: Disclosure, missing: set[str]) -> Iterator[str]:
    """index.html in parts, from the autoescaped template (the access log streams)."""
    template = templates.environment().get_template(INDEX_TEMPLATE)
    return template.generate(
        reference=disclosure.reference,
        generated_at=swiss_datetime(disclosure.generated_at),
        sections=_sections(disclosure.data),
        documents=_documents(disclosure.data, missing),
        document_history=_document_history(disclosure.data),
        log_rows=_log_rows(container, disclosure),
    )
