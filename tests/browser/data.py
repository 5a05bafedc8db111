"""Setting up cases for the browser tests directly through the services (not under test)."""

from __future__ import annotations

import datetime as dt
import io
import os
from typing import Any

import pikepdf
from sqlalchemy import select

from dossier_service.bodies.cases import CaseInput, TransferInput
from dossier_service.container import Container
from dossier_service.dates import local_today
from dossier_service.models import User
from dossier_service.samples import make_pdf
from dossier_service.services import cases, documents, transfers
from dossier_service.services.accounts import identity_for_user
from dossier_service.uploads import spool_bytes
from tests.factories import fresh_person


def _who(container: Container, session: Any, username: str) -> Any:
    user = session.execute(select(User).where(User.username == username)).scalar_one()
    return identity_for_user(user)


def register_case(container: Container, family_name: str, given_names: str, **person: Any) -> str:
    """A case registered by the canton (further person fields as given); returns its id."""
    with container.db.transaction() as session:
        case = cases.create_case(
            session,
            _who(container, session, "canton"),
            CaseInput.model_validate(
                {
                    # One person, one case: every case of the session its own numbers.
                    "person": fresh_person(
                        family_name=family_name, given_names=given_names, **person
                    ),
                    "entry_date": (local_today() - dt.timedelta(days=500)).isoformat(),
                }
            ),
        )
        return case.id


def add_document(
    container: Container,
    username: str,
    case_id: str,
    data: bytes,
    *,
    doc_type: str,
    filename: str,
    title: str,
) -> str:
    """A document uploaded through the document service; returns its id."""
    spooled = spool_bytes(container.settings.spool_dir, data, "application/pdf", filename)
    try:
        with container.db.transaction() as session:
            doc = documents.create_document(
                container,
                session,
                _who(container, session, username),
                case_id,
                spooled,
                {"type": doc_type, "title": title},
            )
            return doc.id
    finally:
        spooled.discard()


def transfer(container: Container, username: str, case_id: str, to_unit: str) -> None:
    """Hand the case to another unit through the transfer service."""
    with container.db.transaction() as session:
        transfers.transfer_case(
            session,
            _who(container, session, username),
            case_id,
            TransferInput.model_validate({"to_unit": to_unit, "reason": "Wohnsitz"}),
        )


def padded_pdf(title: str, paragraphs: list[str], padding_bytes: int) -> bytes:
    """A text PDF made larger by an embedded blob of random bytes (to watch the progress)."""
    pdf = pikepdf.open(io.BytesIO(make_pdf(title, paragraphs)))
    # Random bytes do not compress: the upload really has this size on the wire.
    pdf.Root.DossierPadding = pdf.make_stream(os.urandom(padding_bytes))
    out = io.BytesIO()
    pdf.save(out, compress_streams=False)
    return out.getvalue()
