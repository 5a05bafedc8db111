"""Bodies of a cost-approval request and of the canton's decision."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from dossier_service.bodies.fields import (
    Amount,
    Date,
    IdList,
    OneOf,
    OptionalAmount,
    OptionalId,
    OptionalText,
    Text,
)
from dossier_service.models.process import PROGRAMMES

#: Most documents one request can attach.
MAX_ATTACHMENTS = 20
#: The canton's possible decisions.
DECISIONS = ("approved", "partially_approved", "rejected")
_AMOUNT = 'CHF as a string (never a JSON number), e.g. "4800.00"; at most two decimals, '


class CostApprovalInput(BaseModel):
    """A request for a cost approval of a programme for a period."""

    measure_id: OptionalId = None
    programme: Annotated[
        str | None,
        OneOf(PROGRAMMES, nullable=True),
        Field(description="Defaults to the measure's."),
    ] = None
    amount_chf: Annotated[Amount, Field(description=_AMOUNT + "at most 1000000.00.")]
    period_from: Date
    period_to: Date
    justification: Annotated[Text, Field(max_length=4000)]
    document_ids: Annotated[
        list[str] | None,
        IdList(max_items=MAX_ATTACHMENTS),
        Field(description="Documents of this case attached to the request."),
    ] = None


class DecisionInput(BaseModel):
    """The canton's decision on a request."""

    decision: Annotated[str, OneOf(DECISIONS)]
    approved_amount_chf: Annotated[
        OptionalAmount,
        Field(description="Required for partially_approved (more than 0, less than requested)."),
    ] = None
    reason: Annotated[
        OptionalText, Field(max_length=4000, description="Required unless approved.")
    ] = ""
