"""Errors as a person reads them: German (or the chosen language), on the page they happened.

The services raise domain errors with an English message and a stable ``code``; the pages
translate the code, never show the English text, and name the form field when there is one.
Errors that no form handles itself end on an error page with a way back.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from dossier_service.errors import DossierError, Forbidden, NotFound
from dossier_service.http.denials import log_denial
from dossier_service.http.errors import error_response
from dossier_service.web.context import wants_json
from dossier_service.web.login_form import login_page

log = logging.getLogger(__name__)

#: What each error code means for the person in front of the page.
MESSAGES: dict[str, Any] = {
    "identical_version": _l(
        "Diese Datei ist identisch mit der aktuellen Version; es wurde nichts gespeichert."
    ),
    "reason_required": _l("Bitte geben Sie eine Begründung an."),
    "nothing_changed": _l("Die Angaben sind unverändert; es wurde nichts gespeichert."),
    "nothing_to_change": _l("Bitte ändern Sie mindestens eine Angabe."),
    "date_in_future": _l("Das Datum des Dokuments darf nicht in der Zukunft liegen."),
    "too_many_tags": _l("Ein Dokument hat höchstens 20 Stichwörter."),
    "tag_too_long": _l("Ein Stichwort hat höchstens 40 Zeichen."),
    "already_withdrawn": _l("Dieses Dokument wurde bereits zurückgezogen."),
    "not_withdrawn": _l("Nur ein zurückgezogenes Dokument kann endgültig gelöscht werden."),
    "legal_hold": _l(
        "Für diesen Fall gilt eine Löschsperre; das Dokument kann erst nach deren Aufhebung "
        "gelöscht werden."
    ),
    "same_case": _l("Das Dokument liegt bereits in diesem Fall."),
    "document_in_use": _l(
        "Das Dokument gehört zu einer Kostengutsprache dieses Falls und kann nicht verschoben "
        "werden. Ziehen Sie es zurück und erfassen Sie es im richtigen Fall neu."
    ),
    "target_not_found": _l("Einen Fall mit dieser Fallnummer gibt es nicht."),
    "merge_case_not_found": _l("Einen Fall mit dieser Fallnummer gibt es nicht."),
    "merge_same_case": _l("Ein Fall kann nicht mit sich selbst zusammengeführt werden."),
    "case_already_merged": _l("Dieser Fall wurde bereits mit einem anderen zusammengeführt."),
    "case_merged": _l("Dieser Fall wurde mit einem anderen Fall zusammengeführt."),
    "different_persons": _l(
        "Die beiden Fälle haben verschiedene AHV-Nummern und betreffen daher nicht dieselbe "
        "Person. Korrigieren Sie zuerst die falsche Nummer."
    ),
    "confirmation_required": _l("Bitte bestätigen Sie den Schritt mit dem Häkchen."),
    "case_not_found": _l("Diesen Fall gibt es nicht, oder Ihre Stelle hat keinen Zugriff darauf."),
    "document_not_found": _l(
        "Dieses Dokument gibt es nicht, oder Ihre Stelle hat keinen Zugriff darauf."
    ),
    "version_not_found": _l("Diese Version des Dokuments gibt es nicht."),
    "case_not_writable": _l(
        "Ihre Stelle kann diesen Fall lesen, aber nicht bearbeiten: "
        "zuständig ist eine andere Stelle."
    ),
    "forbidden": _l("Ihre Rolle erlaubt diese Aktion nicht."),
    "case_closed": _l(
        "Der Fall ist abgeschlossen und kann nicht mehr geändert werden. "
        "Der Kanton kann ihn wieder eröffnen."
    ),
    "end_report_required": _l(
        "Der Kanton übergibt einen Fall erst an eine Gemeinde, wenn ein Schlussbericht im "
        "Dossier liegt. Laden Sie zuerst den Schlussbericht hoch (Dokumenttyp «Schlussbericht»)."
    ),
    "handover_note_required": _l(
        "Eine Gemeinde übergibt einen Fall erst an eine andere Gemeinde, wenn sie eine "
        "Übergabenotiz oder einen Schlussbericht ins Dossier gelegt hat. Laden Sie zuerst die "
        "Übergabenotiz hoch (Dokumenttyp «Übergabenotiz»)."
    ),
    "already_responsible": _l("Diese Stelle ist bereits für den Fall zuständig."),
    "concurrent_transfer": _l(
        "Der Fall wurde gleichzeitig von jemand anderem übergeben. Bitte laden Sie die Seite neu."
    ),
    "invalid_target": _l("An diese Stelle kann der Fall nicht übergeben werden."),
    "unknown_unit": _l("Bitte wählen Sie eine Stelle aus der Liste."),
    "already_delegated": _l("Der Fall ist an diese Organisation bereits delegiert."),
    "delegation_not_found": _l("Der Fall ist an diese Organisation nicht (mehr) delegiert."),
    "file_missing": _l("Bitte wählen Sie eine Datei aus."),
    "empty_file": _l("Die Datei ist leer."),
    "file_too_large": _l("Die Datei ist grösser als erlaubt."),
    "unsupported_media_type": _l(
        "Dieser Dateityp wird nicht angenommen. Erlaubt sind PDF, Word (DOCX), JPEG, PNG, "
        "TIFF und reiner Text."
    ),
    "multipart_required": _l("Bitte senden Sie die Datei über das Formular."),
    "damaged_file": _l(
        "Die Datei ist beschädigt oder kann nicht sicher geöffnet werden und wurde nicht "
        "gespeichert."
    ),
    "malformed_multipart": _l("Die Übertragung war unvollständig. Bitte nochmals versuchen."),
    "too_many_files": _l("Bitte laden Sie eine Datei nach der anderen hoch."),
    "version_conflict": _l(
        "Das Dokument wurde inzwischen geändert. Bitte laden Sie die Seite neu und "
        "versuchen Sie es nochmals."
    ),
    "concurrent_version": _l(
        "Gleichzeitig wurde eine andere Version hochgeladen. Bitte nochmals versuchen."
    ),
    "storage_unavailable": _l(
        "Die Dokumentablage ist nicht erreichbar; nichts wurde gespeichert. "
        "Bitte später nochmals versuchen."
    ),
    "storage_failed": _l("Das Dokument konnte nicht gespeichert werden; nichts wurde gespeichert."),
    "content_missing": _l(
        "Der Inhalt dieses Dokuments fehlt in der Ablage. Der Betrieb ist informiert."
    ),
    "search_unavailable": _l("Die Suche ist zurzeit nicht verfügbar. Bitte später nochmals."),
    "invalid_query": _l(
        'Die Suchanfrage ist ungültig. Beispiele: Deutschkurs, "genaue Wortfolge", '
        "Integr*, -ausschliessen."
    ),
    "query_too_long": _l("Die Suchanfrage ist zu lang."),
    "prefix_too_short": _l(
        "Vor * braucht es mindestens zwei Buchstaben (ae für ä zählt als einer), z. B. Integr*."
    ),
    "csrf_invalid": _l(
        "Das Formular ist abgelaufen oder stammt nicht von dieser Seite. Bitte laden Sie die "
        "Seite neu und senden Sie es nochmals."
    ),
    "already_decided": _l("Über dieses Gesuch wurde bereits entschieden."),
    "cost_approval_not_found": _l("Dieses Gesuch gibt es nicht."),
    "cost_approvals_pending": _l(
        "Offene Gesuche um Kostengutsprache müssen zuerst entschieden werden."
    ),
    "unknown_document": _l("Ein gewähltes Dokument gehört nicht zu diesem Fall."),
    "unknown_measure": _l("Die Massnahme gehört nicht zum Plan dieses Falls."),
    "measure_not_found": _l(
        "Diese Massnahme gibt es nicht, oder Ihre Stelle hat keinen Zugriff darauf."
    ),
    "case_not_closed": _l(
        "Der Fall ist nicht abgeschlossen; er muss nicht wieder eröffnet werden."
    ),
    "concurrent_update": _l(
        "Jemand anderes hat den Fall gleichzeitig geändert. Bitte laden Sie die Seite neu und "
        "versuchen Sie es nochmals."
    ),
    "notification_not_found": _l("Diese Meldung gibt es nicht."),
    "invalid_credentials": _l("Benutzername oder Passwort ist falsch."),
    "oidc_unknown_user": _l(
        "Für diese Anmeldung gibt es keinen aktiven Benutzer. Bitte wenden Sie sich an die "
        "Administration."
    ),
    "database_unavailable": _l(
        "Die Datenbank ist zurzeit nicht erreichbar. Bitte später nochmals versuchen."
    ),
}

#: Field names of the services, as the forms label them.
FIELD_LABELS: dict[str, Any] = {
    "document_date": _l("Datum des Dokuments"),
    "tags": _l("Stichwörter"),
    "to_case": _l("In den Fall (Fallnummer)"),
    "from_case": _l("Zusammenzuführender Fall (Fallnummer)"),
    "title": _l("Titel"),
    "type": _l("Dokumenttyp"),
    "reason": _l("Begründung"),
    "to_unit": _l("Stelle"),
    "amount_chf": _l("Betrag (CHF)"),
    "approved_amount_chf": _l("Bewilligter Betrag (CHF)"),
    "period_from": _l("Zeitraum von"),
    "period_to": _l("Zeitraum bis"),
    "justification": _l("Begründung"),
    "programme": _l("Programm"),
    "decision": _l("Entscheid"),
    "document_ids": _l("Beilagen"),
    "sort": _l("Sortierung"),
    "target_group": _l("Zielgruppe"),
    "provider": _l("Anbieter"),
    "start": _l("Beginn"),
    "end": _l("Ende"),
    "status": _l("Status"),
    "note": _l("Notiz"),
    "kind": _l("Meilenstein"),
    "value": _l("Meilenstein"),
    "date": _l("Datum"),
}

_BY_STATUS: dict[int, Any] = {
    400: _l("Die Anfrage ist ungültig."),
    401: _l("Bitte melden Sie sich an."),
    403: _l("Ihre Rolle erlaubt diese Aktion nicht."),
    404: _l("Diese Seite gibt es nicht."),
    405: _l("Diese Aktion ist hier nicht möglich."),
    409: _l("Der aktuelle Zustand des Falls lässt diese Aktion nicht zu."),
    412: _l("Das Dokument wurde inzwischen geändert. Bitte laden Sie die Seite neu."),
    413: _l("Die Anfrage ist grösser als erlaubt."),
    415: _l("Dieser Dateityp wird nicht angenommen."),
    422: _l("Bitte prüfen Sie Ihre Eingaben."),
    429: _l("Zu viele Versuche. Bitte warten Sie einen Moment."),
    500: _l("Ein unerwarteter Fehler ist aufgetreten. Er wurde protokolliert."),
    503: _l("Ein Dienst ist zurzeit nicht erreichbar. Bitte später nochmals versuchen."),
}


def message_for(exc: DossierError) -> str:
    """The translated sentence for a domain error (by reason or code, else field, status)."""
    reason = exc.details.get("reason")
    if isinstance(reason, str) and reason in MESSAGES:
        return str(MESSAGES[reason])
    if exc.code in MESSAGES:
        return str(MESSAGES[exc.code])
    field = str(exc.details.get("field") or "").split(".")[-1]
    if field in FIELD_LABELS:
        return str(_l("Bitte prüfen Sie das Feld «%(field)s».", field=FIELD_LABELS[field]))
    return str(_BY_STATUS.get(exc.status, _BY_STATUS[500]))


def error_page(status: int, message: str) -> ResponseReturnValue:
    """The error page, or a JSON error for the pages' own scripts."""
    if wants_json():
        response = jsonify({"error": {"message": message}})
        response.status_code = status
        return response
    return render_template("error.html", status=status, message=message), status


def _domain_error(exc: DossierError) -> ResponseReturnValue:
    if isinstance(exc, Forbidden | NotFound):
        log_denial(exc)
    if exc.code == "csrf_invalid" and request.endpoint == "web.login":
        return login_page(error=message_for(exc), status=400)
    return error_page(exc.status, message_for(exc))


def _http_error(exc: HTTPException) -> ResponseReturnValue:
    status = exc.code or 500
    return error_page(status, str(_BY_STATUS.get(status, _BY_STATUS[400])))


def _database_down(exc: OperationalError) -> ResponseReturnValue:
    log.error("database error: %s", exc)
    return error_page(503, str(MESSAGES["database_unavailable"]))


def _unexpected(exc: Exception) -> ResponseReturnValue:
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    log.exception("unhandled error on a page")
    return error_page(500, str(_BY_STATUS[500]))


def register_blueprint(bp: Blueprint) -> None:
    """HTML error handlers for everything raised inside the pages."""
    bp.register_error_handler(DossierError, _domain_error)
    bp.register_error_handler(HTTPException, _http_error)
    bp.register_error_handler(OperationalError, _database_down)
    bp.register_error_handler(Exception, _unexpected)


def init_app(app: Flask) -> None:
    """Addresses outside every route: an HTML page, except under /api (JSON as before)."""

    def not_found(exc: HTTPException) -> ResponseReturnValue:
        if request.path.startswith("/api/"):
            return error_response(404, "not_found", "There is nothing at this address.")
        return error_page(404, str(_BY_STATUS[404]))

    app.register_error_handler(404, not_found)
