"""Who may call the ConsultationService. Portals forward comments; the lead agency of the
draft alone answers them, extends the window and reads the comments and campaigns (their
texts may carry what commenters wrote about themselves, and pseudonyms link one person's
comments), checked by the servicer. The consultation's state and its report are public."""

from policy.consultation.v1 import consultation_service_pb2
from policykit.auth import ANY_ROLE, DRAFTING_AGENCY, PORTAL, only, rules_for

SERVICE = consultation_service_pb2.DESCRIPTOR.services_by_name["ConsultationService"].full_name
RULES = rules_for(SERVICE, {
    "GetConsultation": ANY_ROLE,
    "ExtendConsultation": only(DRAFTING_AGENCY),
    "SubmitComment": only(PORTAL),
    "SubmitComments": only(PORTAL),
    "AnswerComments": only(DRAFTING_AGENCY),
    "ListComments": only(DRAFTING_AGENCY),
    "ListCampaigns": only(DRAFTING_AGENCY),
    "GetConsultationReport": ANY_ROLE,
})
