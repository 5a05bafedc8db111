"""Demo data: the canton, three municipalities, one organisation, users and real documents."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path

from sqlalchemy import select

from dossier_service.bodies.cases import CaseInput, DelegationInput, TransferInput
from dossier_service.bodies.cost_approvals import CostApprovalInput, DecisionInput
from dossier_service.bodies.plan import CaseUpdate, MeasureInput, MilestoneInput
from dossier_service.container import Container
from dossier_service.dates import local_today
from dossier_service.models import Unit, User
from dossier_service.samples import make_docx, make_pdf
from dossier_service.services import accounts, cases, cost_approvals, documents, plan, transfers
from dossier_service.services.accounts import identity_for_user
from dossier_service.uploads import spool_bytes

UNITS = [
    ("ag-ksd", "Kanton Aargau, Kantonaler Sozialdienst", "canton"),
    ("aarau", "Gemeinde Aarau, Sozialdienst", "municipality"),
    ("baden", "Stadt Baden, Soziale Dienste", "municipality"),
    ("wettingen", "Gemeinde Wettingen, Sozialdienst", "municipality"),
    ("caritas-ag", "Caritas Aargau", "organisation"),
]
USERS = [
    ("ksd.meier", "ag-ksd", "caseworker", "Sandra Meier"),
    ("aarau.keller", "aarau", "caseworker", "Thomas Keller"),
    ("baden.frei", "baden", "caseworker", "Laura Frei"),
    ("wettingen.huber", "wettingen", "caseworker", "Marco Huber"),
    ("caritas.rossi", "caritas-ag", "caseworker", "Giulia Rossi"),
    ("ksd.revision", "ag-ksd", "auditor", "Peter Brunner"),
    ("ksd.archiv", "ag-ksd", "archivist", "Anna Lüthi"),
    ("admin", "ag-ksd", "admin", "Betrieb"),
]
PEOPLE = [
    {
        "family_name": "Haile",
        "given_names": "Semhar",
        "birth_date": "2006-03",
        "sex": "female",
        "nationality": "ER",
        "zemis_number": "12345678.9",
        "ahv_number": "756.9217.0769.85",
        "residence_status": "F",
    },
    {
        "family_name": "Ahmadi",
        "given_names": "Farid",
        "birth_date": "2004",
        "sex": "male",
        "nationality": "AF",
        "zemis_number": "23456789.0",
        "residence_status": "B",
    },
    {
        "family_name": "Al-Hassan",
        "given_names": "Rania",
        "birth_date": "1987-11-02",
        "sex": "female",
        "nationality": "SY",
        "zemis_number": "34567890.1",
        "residence_status": "N",
    },
]


def _upload(
    container: Container, who: User, case_id: str, doc_type: str, title: str, data: bytes, kind: str
) -> str:
    media_type = (
        "application/pdf"
        if kind == "pdf"
        else ("application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    )
    spooled = spool_bytes(container.settings.spool_dir, data, media_type, f"{title}.{kind}")
    with container.db.transaction() as session:
        try:
            doc = documents.create_document(
                container,
                session,
                identity_for_user(who),
                case_id,
                spooled,
                {"type": doc_type, "title": title},
            )
        finally:
            spooled.discard()
        return doc.id


def load_demo(container: Container) -> dict[str, tuple[str, str]] | None:
    """Create the demo data unless present; return each new user's (API token, password)."""
    with container.db.transaction() as session:
        if session.execute(select(Unit.id).where(Unit.code == "ag-ksd")).first():
            return None
        for code, name, kind in UNITS:
            accounts.create_unit(session, code, name, kind)
        for username, unit, role, display in USERS:
            accounts.create_user(session, username, unit, role, display)
        tokens = {}
        for username, *_ in USERS:
            # Random per installation: a demo left running must not open with a known password.
            password = secrets.token_urlsafe(12)
            accounts.set_password(session, username, password)
            tokens[username] = (accounts.create_token(session, username, "demo"), password)
    with container.db.transaction() as session:
        users = {u.username: u for u in session.execute(select(User)).scalars()}
    canton = users["ksd.meier"]
    case_ids = []
    for i, person in enumerate(PEOPLE):
        with container.db.transaction() as session:
            case = cases.create_case(
                session,
                identity_for_user(canton),
                CaseInput.model_validate(
                    {
                        "person": person,
                        "entry_date": (
                            local_today() - dt.timedelta(days=400 + 300 * i)
                        ).isoformat(),
                    }
                ),
            )
            case_ids.append(case.id)
    first, second, _third = case_ids
    name = f"{PEOPLE[0]['given_names']} {PEOPLE[0]['family_name']}"
    _upload(
        container,
        canton,
        first,
        "short_assessment",
        "Kurzassessment",
        make_pdf(
            "Kurzassessment",
            [
                f"Person: {name}. Deutschkenntnisse: A1 mündlich, schriftlich noch nicht.",
                "Berufserfahrung als Näherin in Eritrea. Ziel: Vorlehre Integration (INVOL).",
                "Empfehlung: Integrationskurs Grundkompetenzen IKG1, danach Potenzialabklärung.",
            ],
        ),
        "pdf",
    )
    _upload(
        container,
        canton,
        first,
        "integration_plan",
        "Integrationsplan 2026",
        make_docx(
            "Integrationsplan",
            [
                "Zielgruppe: Ausbildungsfähige (16–25). Sprachkurs bis Niveau A2.",
                "Massnahmen gemäss Vereinbarung über Rechte und Pflichten.",
            ],
            [
                ["Massnahme", "Beginn", "Ende"],
                ["IKG1", "01.02.2026", "30.06.2026"],
                ["Potenzialabklärung", "01.07.2026", "31.07.2026"],
            ],
        ),
        "docx",
    )
    _upload(
        container,
        canton,
        first,
        "end_report",
        "Schlussbericht Kanton",
        make_pdf(
            "Schlussbericht",
            [
                "Übergabe an die Gemeinde Aarau nach Wohnsitznahme.",
                "Die Kostengutsprache für IKG1 ist erteilt. Weitere Schritte: Vorlehre INVOL.",
            ],
        ),
        "pdf",
    )
    with container.db.transaction() as session:
        transfers.transfer_case(
            session,
            identity_for_user(canton),
            first,
            TransferInput.model_validate({"to_unit": "aarau", "reason": "Wohnsitznahme in Aarau"}),
        )
    meeting = _upload(
        container,
        users["aarau.keller"],
        first,
        "meeting_record",
        "Standortgespräch Aarau",
        make_pdf(
            "Gesprächsprotokoll",
            [
                "Standortgespräch im Sozialdienst Aarau. Teilnahme am Deutschkurs regelmässig.",
            ],
        ),
        "pdf",
    )
    with container.db.transaction() as session:
        transfers.delegate_case(
            session,
            identity_for_user(users["aarau.keller"]),
            first,
            DelegationInput.model_validate(
                {"to_unit": "caritas-ag", "reason": "Begleitung im Alltag"}
            ),
        )
    _upload(
        container,
        canton,
        second,
        "agreement",
        "Vereinbarung über Rechte und Pflichten",
        make_docx(
            "Vereinbarung über Rechte und Pflichten",
            [
                "Der Klient verpflichtet sich zur Teilnahme am Sprachkurs "
                "und an den Standortgesprächen.",
            ],
        ),
        "docx",
    )
    _case_process(container, users, first, meeting)
    return tokens


def _case_process(container: Container, users: dict[str, User], case_id: str, doc: str) -> None:
    """Plan, milestone and a partly approved cost approval on the case Aarau holds."""
    aarau = identity_for_user(users["aarau.keller"])
    today = local_today()
    with container.db.transaction() as session:
        plan.update_case(
            session, aarau, case_id, CaseUpdate.model_validate({"target_group": "education"})
        )
        plan.create_measure(
            session,
            aarau,
            case_id,
            MeasureInput.model_validate(
                {
                    "programme": "IKG1",
                    "provider": "ECAP Aargau",
                    "start": (today - dt.timedelta(days=120)).isoformat(),
                    "end": (today + dt.timedelta(days=60)).isoformat(),
                    "status": "running",
                }
            ),
        )
        plan.create_milestone(
            session,
            aarau,
            case_id,
            MilestoneInput.model_validate(
                {
                    "kind": "language_level",
                    "value": "A1",
                    "date": (today - dt.timedelta(days=30)).isoformat(),
                }
            ),
        )
        approval = cost_approvals.request_cost_approval(
            session,
            aarau,
            case_id,
            CostApprovalInput.model_validate(
                {
                    "programme": "INVOL",
                    "amount_chf": "4800.00",
                    "period_from": dt.date(today.year + 1, 8, 1).isoformat(),
                    "period_to": dt.date(today.year + 2, 7, 31).isoformat(),
                    "justification": "Vorlehre Integration gemäss Potenzialabklärung.",
                    "document_ids": [doc],
                }
            ),
        )
        approval_id = approval.id
    with container.db.transaction() as session:
        cost_approvals.decide_cost_approval(
            container,
            session,
            identity_for_user(users["ksd.meier"]),
            approval_id,
            DecisionInput.model_validate(
                {
                    "decision": "partially_approved",
                    "approved_amount_chf": "3600.00",
                    "reason": "Die Fahrkosten übernimmt die Gemeinde.",
                }
            ),
        )


def write_tokens(path: Path, tokens: dict[str, tuple[str, str]]) -> None:
    """Write the demo users' tokens and web passwords to a file only the operator can read.

    One line per user: username, API token, password (tab-separated), so
    ``awk '$1=="ksd.meier" {print $2}'`` still yields the token.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        for username, (token, password) in tokens.items():
            handle.write(f"{username}\t{token}\t{password}\n")
