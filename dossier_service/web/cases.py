"""Meine Fälle (the case list), the case page, and the hand-over, delegation and merge forms."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, jsonify, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from dossier_service.bodies.cases import DelegationInput, MergeInput, TransferInput
from dossier_service.bodies.parse import parse
from dossier_service.dates import local_today
from dossier_service.errors import DossierError, Forbidden, Gone, Unprocessable
from dossier_service.http.context import audit_context
from dossier_service.models import DOCUMENT_TYPES, Document
from dossier_service.models.documents import PROCESSING_STATES
from dossier_service.policy import (
    Action,
    allowed,
    delegation_scope,
    load_case,
    reads_every_case,
    rights,
)
from dossier_service.services import (
    cases,
    document_corrections,
    documents,
    follow_ups,
    households,
    journal,
    merges,
    person,
    processing,
    timeline,
    transfers,
)
from dossier_service.web.context import Pager, identity, page_arg, render, session
from dossier_service.web.errors import message_for
from dossier_service.web.i18n import label
from dossier_service.web.plan import (
    CLOSE_REASON_LABELS,
    JOURNAL_KIND_LABELS,
    TARGET_GROUP_LABELS,
    PlanForm,
    plan_context,
)

PER_PAGE = 25
#: Sort orders offered on the list, with their labels (ascending key; "-" = descending).
SORTS = ("-activity", "activity", "reference", "-reference", "name", "-name", "-entry", "entry")
#: What the case page's templates ask (rights.write, ...) and the action each one means.
PAGE_RIGHTS = {
    "write": Action.CASE_WRITE,
    "transfer": Action.CASE_TRANSFER,
    "delegate": Action.CASE_DELEGATE,
    "close": Action.CASE_CLOSE,
    "reopen": Action.CASE_REOPEN,
    "read_withdrawn": Action.DOCUMENT_READ_WITHDRAWN,
    "correct": Action.PERSON_CORRECT,
    "merge": Action.CASE_MERGE,
    "target_group": Action.TARGET_GROUP_SET,
}
#: What a linked case's person is to this case's person, as the case page says it.
HOUSEHOLD_LABELS = {"parent": _l("Elternteil"), "child": _l("Kind"), "partner": _l("Partner/in")}
#: The 7-year horizon is flagged this many days before it ends.
HORIZON_WARNING_DAYS = 183


def case_list() -> ResponseReturnValue:
    """GET /cases: the cases of my unit (the canton: all, with a filter by unit)."""
    who = identity()
    status = request.args.get("status") or None
    if status not in (None, "open", "closed"):
        status = None
    sort = request.args.get("sort") or "-activity"
    if sort not in SORTS:
        sort = "-activity"
    reads_all = reads_every_case(who)
    unit = (request.args.get("unit") or None) if reads_all else None
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
    responsible = cases.responsible_units(db, [c.id for c in items])
    return render(
        "cases/list.html",
        items=items,
        responsible=responsible,
        pager=Pager(page, PER_PAGE, total),
        filters={"status": status or "", "sort": sort, "unit": unit or "", "q_case": text or ""},
        units=cases.units_of_kinds(db, transfers.RESPONSIBLE_KINDS) if reads_all else [],
        reads_all=reads_all,
        sorts=SORTS,
    )


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
    merge_form: dict[str, str] | None = None,
    merge_error: str | None = None,
) -> ResponseReturnValue:
    """GET /cases/<id>: the whole dossier at a glance, with the plan and its forms.

    A merged case shows only where its dossier went (410).
    """
    audit_context("case.read", case_id=case_id)
    who = identity()
    db = session()
    try:
        case = cases.get_case(db, who, case_id)
    except Gone as exc:
        return render("cases/merged.html", status=410, **exc.details["public"])
    facts = cases.case_json(db, case)
    history = timeline.case_timeline(db, who, case.id)
    docs = documents.list_documents(db, who, case.id)
    # Withdrawn documents only when the canton asks (?withdrawn=true): a separate, audited list.
    withdrawn = (
        documents.list_documents(db, who, case.id, withdrawn=True)
        if request.args.get("withdrawn") == "true"
        else None
    )
    granted = rights(db, who, case)
    plan_facts = plan_context(db, who, case)
    horizon = cases.horizon_date(case.entry_date)
    today = local_today()
    pending = [v.id for d in docs for v in d.versions if v.processing in {"pending", "processing"}]
    family = households.members(db, who, case.id)
    entries = journal.entries_of(db, case.id)
    return render(
        "cases/detail.html",
        status=status,
        case=case,
        facts=facts,
        timeline=history,
        groups=group_documents(docs),
        document_count=len(docs),
        withdrawn_documents=withdrawn,
        rights={name: action in granted for name, action in PAGE_RIGHTS.items()},
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
        person_history=person.person_history(db, case.id),
        status_history=person.status_history(db, case.id),
        household=family,
        household_labels=HOUSEHOLD_LABELS,
        journal=entries,
        journal_corrected_by=journal.corrected_by(entries),
        journal_kinds=JOURNAL_KIND_LABELS,
        follow_ups=follow_ups.of_case(db, case.id),
        merged_from=merges.merges_into(db, case.id),
        merge_form=merge_form or {},
        merge_error=merge_error,
        **plan_facts,
    )


def case_processing(case_id: str) -> ResponseReturnValue:
    """GET /cases/<id>/processing: the processing state of the case's versions (JSON).

    Polled by the case and document pages while a version is being processed. It tells
    only states and the reason of a failure (no titles or content), so it is checked by
    the policy but not written to the audit log on every poll.
    """
    audit_context("case.read", case_id=case_id)
    db = session()
    wanted = request.args.getlist("v")[:500]
    states = {
        vid: {"state": state, "label": processing_label(state), "error": error}
        for vid, (state, error) in processing.version_states(
            db, identity(), case_id, wanted
        ).items()
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


def transfer_dialog(case_id: str) -> ResponseReturnValue:
    """GET/POST /cases/<id>/transfer: choose, review and confirm the hand-over."""
    who = identity()
    db = session()
    case, facts = _dialog_case(case_id, Action.CASE_TRANSFER)
    current_code = facts["responsible_unit"]["code"]
    targets = [
        u for u in cases.units_of_kinds(db, transfers.RESPONSIBLE_KINDS) if u.code != current_code
    ]
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
    preview = transfers.preview_transfer(db, who, case.id, target) if target is not None else None
    blocked_by = preview.missing if preview is not None else None
    if step == "confirm" and not errors and blocked_by is None:
        try:
            body = parse(TransferInput, {"to_unit": form["to_unit"], "reason": form["reason"]})
            transfers.transfer_case(db, who, case.id, body)
        except DossierError as exc:
            db.rollback()
            error = message_for(exc)
        else:
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
    return render(
        "cases/transfer.html",
        status=422 if errors else (409 if error or (review and blocked_by) else 200),
        case=case,
        facts=facts,
        targets=targets,
        target=target,
        form=form,
        errors=errors,
        error=error,
        review=review,
        blocked_by=blocked_by,
        delegations=delegations,
        keeps_read=bool(preview and preview.former_unit_keeps_read),
    )


def delegate_dialog(case_id: str) -> ResponseReturnValue:
    """GET/POST /cases/<id>/delegate: delegate day-to-day support to an organisation."""
    who = identity()
    db = session()
    case, facts = _dialog_case(case_id, Action.CASE_DELEGATE)
    delegated = {d["unit"]["code"] for d in facts["delegations"]}
    targets = [
        u for u in cases.units_of_kinds(db, transfers.DELEGATE_KINDS) if u.code not in delegated
    ]
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
            body = parse(DelegationInput, {"to_unit": form["to_unit"], "reason": form["reason"]})
            transfers.delegate_case(db, who, case.id, body)
        except DossierError as exc:
            db.rollback()
            error = message_for(exc)
        else:
            assert target is not None
            flash(_("Der Fall wurde an %(unit)s delegiert.", unit=target.name), "success")
            return redirect(url_for("web.case_page", case_id=case.id))
    review = step in {"review", "confirm"} and not errors and error is None
    # What the organisation gains and what stays with this unit, both asked of the policy
    # (in the enum's order), so the dialog cannot promise more or less than is granted.
    scope = delegation_scope()
    mine = rights(db, who, case)
    gains = [label("case_right", a.value) for a in Action if a in scope]
    kept = [label("case_right", a.value) for a in Action if a in mine and a not in scope]
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
        gains=gains,
        kept=kept,
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
    flash(_("Die Delegation wurde beendet."), "success")
    return redirect(url_for("web.case_page", case_id=case_id))


def merge_form(case_id: str) -> ResponseReturnValue:
    """POST /cases/<id>/merge: merge the case with the given reference into this one
    (canton), after a confirmation and with a reason."""
    audit_context("case.merge", case_id=case_id)
    db = session()
    who = identity()
    form = {
        "from_reference": request.form.get("from_reference", "").strip(),
        "reason": request.form.get("reason", ""),
    }
    try:
        # The right to merge first: the reference is looked up only for those who may.
        load_case(db, who, case_id, Action.CASE_MERGE)
        if request.form.get("confirm") != "yes":
            raise Unprocessable("confirm", code="confirmation_required", field="confirm")
        other = document_corrections.case_by_reference(db, form["from_reference"])
        if other is None:
            raise Unprocessable("from_case", code="merge_case_not_found", field="from_case")
        body = parse(MergeInput, {"from_case": other.id, "reason": form["reason"]})
        merges.merge_cases(db, who, case_id, body)
    except DossierError as exc:
        if isinstance(exc, Forbidden) or exc.code in {"case_not_found", "case_merged"}:
            raise
        db.rollback()
        return case_page(case_id, status=exc.status, merge_form=form, merge_error=message_for(exc))
    flash(
        _(
            "Der Fall %(reference)s wurde mit diesem Fall zusammengeführt.",
            reference=other.reference,
        ),
        "success",
    )
    return redirect(url_for("web.case_page", case_id=case_id), code=303)


def register(bp: Blueprint) -> None:
    """Add the case routes."""
    bp.add_url_rule("/cases", "case_list", case_list)
    bp.add_url_rule("/cases/<case_id>", "case_page", case_page)
    bp.add_url_rule("/cases/<case_id>/merge", "merge_case", merge_form, methods=["POST"])
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
