"""Meine Fälle (the case list), the case page, and the hand-over and delegation dialogs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, flash, jsonify, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select

from dossier_service.api.context import audit_context
from dossier_service.dates import local_today
from dossier_service.errors import DossierError, Forbidden
from dossier_service.models import (
    DOCUMENT_TYPES,
    Delegation,
    Document,
    DocumentVersion,
    Responsibility,
    Unit,
)
from dossier_service.models.documents import PROCESSING_STATES
from dossier_service.policy import Action, allowed
from dossier_service.services import cases, documents, transfers
from dossier_service.web.context import Pager, identity, page_arg, render, session
from dossier_service.web.errors import message_for
from dossier_service.web.plan import (
    CLOSE_REASON_LABELS,
    TARGET_GROUP_LABELS,
    PlanForm,
    plan_context,
)

PER_PAGE = 25
#: Sort orders offered on the list, with their labels (ascending key; "-" = descending).
SORTS = ("-activity", "activity", "reference", "-reference", "name", "-name", "-entry", "entry")
#: The 7-year horizon is flagged this many days before it ends.
HORIZON_WARNING_DAYS = 183


def _units(kinds: tuple[str, ...]) -> list[Unit]:
    """Units of the given kinds by name (the choices of filters and dialogs)."""
    return list(
        session()
        .execute(select(Unit).where(Unit.kind.in_(kinds)).order_by(Unit.kind, Unit.name))
        .scalars()
    )


def case_list() -> ResponseReturnValue:
    """GET /cases: the cases of my unit (the canton: all, with a filter by unit)."""
    who = identity()
    status = request.args.get("status") or None
    if status not in (None, "open", "closed"):
        status = None
    sort = request.args.get("sort") or "-activity"
    if sort not in SORTS:
        sort = "-activity"
    unit = (request.args.get("unit") or None) if who.is_canton else None
    text = (request.args.get("q_case") or "").strip()[:100] or None
    page = page_arg()
    db = session()
    items, total = cases.list_cases(
        db,
        who,
        page=page,
        per_page=PER_PAGE,
        status=status,
        unit_code=unit,
        sort=sort,
        text=text,
    )
    responsible = _responsible_units(db, [c.id for c in items])
    db.commit()
    return render(
        "cases/list.html",
        items=items,
        responsible=responsible,
        pager=Pager(page, PER_PAGE, total),
        filters={"status": status or "", "sort": sort, "unit": unit or "", "q_case": text or ""},
        units=_units(("canton", "municipality")) if who.is_canton else [],
        sorts=SORTS,
    )


def _responsible_units(db: Any, case_ids: list[str]) -> dict[str, Unit]:
    """The unit responsible now for each of these (already authorised) cases."""
    if not case_ids:
        return {}
    rows = db.execute(
        select(Responsibility.case_id, Unit)
        .join(Unit, Unit.id == Responsibility.unit_id)
        .where(Responsibility.case_id.in_(case_ids), Responsibility.ended_at.is_(None))
    ).all()
    return {case_id: unit for case_id, unit in rows}


def _timeline(db: Any, who: Any, case_id: str) -> list[dict[str, Any]]:
    """Responsibility periods and delegations of the case, oldest first."""
    entries: list[dict[str, Any]] = []
    for period in cases.responsibilities_json(db, who, case_id):
        entries.append({"kind": "responsibility", **period})
    delegations = db.execute(
        select(Delegation).where(Delegation.case_id == case_id).order_by(Delegation.started_at)
    ).scalars()
    for d in delegations:
        entries.append(
            {
                "kind": "delegation",
                "unit": cases.unit_json(d.unit),
                "granted_by": cases.unit_json(d.granted_by),
                "from": d.started_at.isoformat(),
                "to": d.ended_at.isoformat() if d.ended_at else None,
                "reason": d.reason,
                "end_reason": d.end_reason,
            }
        )
    entries.sort(key=lambda e: e["from"])
    for entry in entries:
        entry["from"] = dt.datetime.fromisoformat(entry["from"])
        entry["to"] = dt.datetime.fromisoformat(entry["to"]) if entry["to"] else None
    return entries


def group_documents(docs: list[Document]) -> list[tuple[str, str, list[Document]]]:
    """Documents grouped by type, in the order of the type list, newest first in a group."""
    groups: dict[str, list[Document]] = {}
    for doc in docs:
        groups.setdefault(doc.type, []).append(doc)
    return [
        (code, label, sorted(groups[code], key=lambda d: d.created_at, reverse=True))
        for code, label in DOCUMENT_TYPES.items()
        if code in groups
    ]


def case_page(
    case_id: str,
    *,
    upload_error: str | None = None,
    status: int = 200,
    form: dict[str, str] | None = None,
    plan_form: PlanForm | None = None,
) -> ResponseReturnValue:
    """GET /cases/<id>: the whole dossier at a glance, with the plan and its forms."""
    audit_context("case.read", case_id=case_id)
    who = identity()
    db = session()
    case = cases.get_case(db, who, case_id)
    facts = cases.case_json(db, case)
    timeline = _timeline(db, who, case.id)
    docs = documents.list_documents(db, who, case.id)
    rights = {
        "write": allowed(db, who, Action.CASE_WRITE, case.id) and case.status == "open",
        "transfer": allowed(db, who, Action.CASE_TRANSFER, case.id) and case.status == "open",
        "delegate": allowed(db, who, Action.CASE_DELEGATE, case.id) and case.status == "open",
        "close": allowed(db, who, Action.CASE_CLOSE, case.id) and case.status == "open",
        "reopen": allowed(db, who, Action.CASE_REOPEN, case.id) and case.status == "closed",
    }
    plan_facts = plan_context(db, who, case)
    db.commit()
    horizon = cases.horizon_date(case.entry_date)
    today = local_today()
    pending = [v.id for d in docs for v in d.versions if v.processing in {"pending", "processing"}]
    return render(
        "cases/detail.html",
        status=status,
        case=case,
        facts=facts,
        timeline=timeline,
        groups=group_documents(docs),
        document_count=len(docs),
        rights=rights,
        horizon=horizon,
        horizon_days=(horizon - today).days,
        horizon_warning=(horizon - today).days <= HORIZON_WARNING_DAYS,
        target_groups=TARGET_GROUP_LABELS,
        close_reasons=CLOSE_REASON_LABELS,
        document_types=DOCUMENT_TYPES,
        pending_versions=pending,
        processing_labels={s: processing_label(s) for s in PROCESSING_STATES},
        upload_error=upload_error,
        form=form or {},
        failed=plan_form,
        **plan_facts,
    )


def case_processing(case_id: str) -> ResponseReturnValue:
    """GET /cases/<id>/processing: the processing state of the case's versions (JSON).

    Polled by the case and document pages while a version is being processed. It tells
    only states and the reason of a failure (no titles or content), so it is checked by
    the policy but not written to the audit log on every poll.
    """
    from dossier_service.policy import load_case

    audit_context("case.read", case_id=case_id)
    who = identity()
    db = session()
    case = load_case(db, who, case_id, Action.CASE_READ)
    wanted = request.args.getlist("v")[:500]
    query = (
        select(DocumentVersion.id, DocumentVersion.processing, DocumentVersion.processing_error)
        .join(Document, Document.id == DocumentVersion.document_id)
        .where(Document.case_id == case.id)
    )
    if wanted:
        query = query.where(DocumentVersion.id.in_(wanted))
    states = {
        vid: {"state": state, "label": processing_label(state), "error": error}
        for vid, state, error in db.execute(query)
    }
    db.rollback()
    return jsonify({"versions": states})


def processing_label(state: str) -> str:
    """The processing state as the pages name it."""
    labels = {
        "pending": _("wartet auf Verarbeitung"),
        "processing": _("wird verarbeitet"),
        "ready": _("bereit"),
        "failed": _("Verarbeitung fehlgeschlagen"),
    }
    return labels.get(state, state)


# --- hand-over (Übergabe) and delegation ---------------------------------------------------


def _dialog_case(case_id: str, action: Action) -> tuple[Any, dict[str, Any]]:
    """The case (read, audited) for a dialog; Forbidden when the caller may not act on it."""
    audit_context(str(action), case_id=case_id)
    who = identity()
    db = session()
    case = cases.get_case(db, who, case_id)
    facts = cases.case_json(db, case)
    if not allowed(db, who, action, case.id):
        raise Forbidden("not allowed", code="case_not_writable")
    return case, facts


def _has_end_report(db: Any, case_id: str) -> bool:
    return bool(
        db.execute(
            select(Document.id).where(Document.case_id == case_id, Document.type == "end_report")
        ).first()
    )


def transfer_dialog(case_id: str) -> ResponseReturnValue:
    """GET/POST /cases/<id>/transfer: choose, review and confirm the hand-over."""
    who = identity()
    db = session()
    case, facts = _dialog_case(case_id, Action.CASE_TRANSFER)
    current_code = facts["responsible_unit"]["code"]
    targets = [u for u in _units(("canton", "municipality")) if u.code != current_code]
    form = {
        "to_unit": request.form.get("to_unit", ""),
        "reason": request.form.get("reason", "").strip(),
    }
    step = request.form.get("step", "") if request.method == "POST" else ""
    error: str | None = None
    errors: dict[str, str] = {}
    target = next((u for u in targets if u.code == form["to_unit"]), None)
    if step:
        if target is None:
            errors["to_unit"] = _("Bitte wählen Sie die Stelle, die den Fall übernimmt.")
        if not form["reason"]:
            errors["reason"] = _("Bitte geben Sie einen Grund an (z. B. «Wohnsitznahme»).")
        elif len(form["reason"]) > 2000:
            errors["reason"] = _("Der Grund ist zu lang (höchstens 2000 Zeichen).")
    blocked_by_end_report = bool(
        target is not None
        and facts["responsible_unit"]["kind"] == "canton"
        and target.kind == "municipality"
        and not _has_end_report(db, case.id)
    )
    if step == "confirm" and not errors and not blocked_by_end_report:
        try:
            transfers.transfer_case(
                db, who, case.id, {"to_unit": form["to_unit"], "reason": form["reason"]}
            )
        except DossierError as exc:
            db.rollback()
            error = message_for(exc)
        else:
            db.commit()
            assert target is not None
            if allowed(db, who, Action.CASE_READ, case.id):
                flash(_("Der Fall wurde an %(unit)s übergeben.", unit=target.name), "success")
                return redirect(url_for("web.case_page", case_id=case.id))
            flash(
                _(
                    "Der Fall %(reference)s wurde an %(unit)s übergeben. Ihre Stelle hat "
                    "keinen Zugriff mehr darauf.",
                    reference=case.reference,
                    unit=target.name,
                ),
                "success",
            )
            return redirect(url_for("web.case_list"))
    review = step in {"review", "confirm"} and not errors and error is None
    delegations = facts["delegations"]
    db.commit()
    return render(
        "cases/transfer.html",
        status=422 if errors else (409 if error or (review and blocked_by_end_report) else 200),
        case=case,
        facts=facts,
        targets=targets,
        target=target,
        form=form,
        errors=errors,
        error=error,
        review=review,
        blocked_by_end_report=blocked_by_end_report,
        delegations=delegations,
        keeps_read=who.is_canton,
    )


def delegate_dialog(case_id: str) -> ResponseReturnValue:
    """GET/POST /cases/<id>/delegate: delegate day-to-day support to an organisation."""
    who = identity()
    db = session()
    case, facts = _dialog_case(case_id, Action.CASE_DELEGATE)
    delegated = {d["unit"]["code"] for d in facts["delegations"]}
    targets = [u for u in _units(("organisation",)) if u.code not in delegated]
    form = {
        "to_unit": request.form.get("to_unit", ""),
        "reason": request.form.get("reason", "").strip(),
    }
    step = request.form.get("step", "") if request.method == "POST" else ""
    errors: dict[str, str] = {}
    error: str | None = None
    target = next((u for u in targets if u.code == form["to_unit"]), None)
    if step:
        if target is None:
            errors["to_unit"] = _("Bitte wählen Sie eine Organisation.")
        if len(form["reason"]) > 2000:
            errors["reason"] = _("Der Grund ist zu lang (höchstens 2000 Zeichen).")
    if step == "confirm" and not errors:
        try:
            transfers.delegate_case(
                db, who, case.id, {"to_unit": form["to_unit"], "reason": form["reason"]}
            )
        except DossierError as exc:
            db.rollback()
            error = message_for(exc)
        else:
            db.commit()
            assert target is not None
            flash(_("Der Fall wurde an %(unit)s delegiert.", unit=target.name), "success")
            return redirect(url_for("web.case_page", case_id=case.id))
    review = step in {"review", "confirm"} and not errors and error is None
    db.commit()
    return render(
        "cases/delegate.html",
        status=422 if errors else (409 if error else 200),
        case=case,
        facts=facts,
        targets=targets,
        target=target,
        form=form,
        errors=errors,
        error=error,
        review=review,
    )


def end_delegation(case_id: str, unit_code: str) -> ResponseReturnValue:
    """POST /cases/<id>/delegations/<unit>/end: end a delegation (the form confirms it)."""
    audit_context("delegation.end", case_id=case_id)
    who = identity()
    db = session()
    try:
        transfers.end_delegation(db, who, case_id, unit_code)
    except DossierError as exc:
        db.rollback()
        if isinstance(exc, Forbidden) or (exc.status == 404 and exc.code == "case_not_found"):
            raise
        flash(message_for(exc), "error")
        return redirect(url_for("web.case_page", case_id=case_id))
    db.commit()
    flash(_("Die Delegation wurde beendet."), "success")
    return redirect(url_for("web.case_page", case_id=case_id))


def register(bp: Blueprint) -> None:
    """Add the case routes."""
    bp.add_url_rule("/cases", "case_list", case_list)
    bp.add_url_rule("/cases/<case_id>", "case_page", case_page)
    bp.add_url_rule("/cases/<case_id>/processing", "case_processing", case_processing)
    bp.add_url_rule(
        "/cases/<case_id>/transfer", "transfer_dialog", transfer_dialog, methods=["GET", "POST"]
    )
    bp.add_url_rule(
        "/cases/<case_id>/delegate", "delegate_dialog", delegate_dialog, methods=["GET", "POST"]
    )
    bp.add_url_rule(
        "/cases/<case_id>/delegations/<unit_code>/end",
        "end_delegation",
        end_delegation,
        methods=["POST"],
    )
