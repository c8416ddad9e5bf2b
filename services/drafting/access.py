"""Who may call the DraftingService. A drafting agency changes only its own drafts: those whose
lead agency it is, or whose pre-merger lead agency it succeeded (checked by the servicer).
Drafts are readable by every authenticated caller: their titles, lead agencies and states are
on the public timeline anyway."""

from policy.drafting.v1 import drafting_service_pb2
from policykit.auth import ANY_ROLE, DRAFTING_AGENCY, only, rules_for

SERVICE = drafting_service_pb2.DESCRIPTOR.services_by_name["DraftingService"].full_name
RULES = rules_for(SERVICE, {
    "RegisterDraft": only(DRAFTING_AGENCY),  # with its own id (or a predecessor's) as lead
    "ReviseDraft": only(DRAFTING_AGENCY),
    "RecordImpactAssessment": only(DRAFTING_AGENCY),
    "SubmitForConsultation": only(DRAFTING_AGENCY),
    "AdoptDraft": only(DRAFTING_AGENCY),
    "WithdrawDraft": only(DRAFTING_AGENCY),
    "GetDraft": ANY_ROLE,
    "ListDrafts": ANY_ROLE,
})
