"""The request schemas of ``api/openapi.json``, generated from the request-body models.

The paths, responses and response schemas of the document are written by hand; the
schema of every JSON request body comes from its pydantic model (``dossier_service.bodies``)
so that what the document promises is what the service checks. Regenerate after changing
a model::

    python -m dossier_service.api.spec
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from dossier_service.api.health import OPENAPI_PATH
from dossier_service.bodies.archive import (
    AcknowledgeInput,
    ExportInput,
    LegalHoldInput,
    LegalHoldRelease,
)
from dossier_service.bodies.cases import (
    CaseInput,
    DelegationInput,
    MergeInput,
    PersonCorrection,
    TransferInput,
)
from dossier_service.bodies.cost_approvals import CostApprovalInput, DecisionInput
from dossier_service.bodies.documents import DocumentUpdate, MoveInput, WithdrawInput
from dossier_service.bodies.follow_ups import FollowUpDone, FollowUpInput
from dossier_service.bodies.households import HouseholdInput
from dossier_service.bodies.journal import JournalInput
from dossier_service.bodies.plan import (
    CaseUpdate,
    CloseInput,
    MeasureInput,
    MeasureUpdate,
    MilestoneInput,
    ReopenInput,
)

#: The model of every JSON request body; nested models (PersonInput) come along.
REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    CaseInput,
    TransferInput,
    DelegationInput,
    PersonCorrection,
    MergeInput,
    HouseholdInput,
    JournalInput,
    FollowUpInput,
    FollowUpDone,
    CaseUpdate,
    MeasureInput,
    MeasureUpdate,
    MilestoneInput,
    CloseInput,
    ReopenInput,
    CostApprovalInput,
    DecisionInput,
    ExportInput,
    AcknowledgeInput,
    LegalHoldInput,
    LegalHoldRelease,
    DocumentUpdate,
    WithdrawInput,
    MoveInput,
)
REF_TEMPLATE = "#/components/schemas/{model}"
REGENERATE = "python -m dossier_service.api.spec"


def _tidy(schema: Any) -> Any:
    """The schema without pydantic's generated titles and null defaults.

    A title repeats the name; "default": null only says a field may be left out (which
    "required" says already) and contradicts the type of a field that is never null.
    """
    if isinstance(schema, dict):
        return {
            key: _tidy(value)
            for key, value in schema.items()
            # A property may be called "title" or "default": only the keywords go.
            if not (key == "title" and isinstance(value, str))
            and not (key == "default" and value is None)
        }
    if isinstance(schema, list):
        return [_tidy(item) for item in schema]
    return schema


def request_schemas() -> dict[str, Any]:
    """Component schemas of the request bodies, by model name, refs pointing at components."""
    _, top = models_json_schema(
        [(model, "validation") for model in REQUEST_MODELS], ref_template=REF_TEMPLATE
    )
    return {name: _tidy(schema) for name, schema in top["$defs"].items()}


def generated(document: dict[str, Any]) -> dict[str, Any]:
    """The document with its request schemas replaced by the generated ones."""
    result = json.loads(json.dumps(document))
    result["components"]["schemas"].update(request_schemas())
    return result


def render(document: dict[str, Any]) -> str:
    """The document as the file holds it."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    """Rewrite openapi.json with generated request schemas (--check: only report a difference)."""
    current = OPENAPI_PATH.read_text("utf-8")
    fresh = render(generated(json.loads(current)))
    if "--check" in argv:
        if fresh != current:
            print(f"{OPENAPI_PATH} is out of date; run: {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    if fresh != current:
        OPENAPI_PATH.write_text(fresh, "utf-8")
        print(f"wrote {OPENAPI_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
