"""Who may call the PublicationService. The Official Gazette (the Government Office, role
gazette) records any promulgation, amendment and repeal; a drafting agency records those of
its own regulations (for an amendment or repeal: of the amending or repealing one). A
release is issued by the spokesperson of the regulation's lead agency. Timelines are
public-accountability data, readable by every authenticated caller. Ownership is checked by
the servicer."""

from policy.publication.v1 import publication_service_pb2
from policykit.auth import ANY_ROLE, DRAFTING_AGENCY, GAZETTE, SPOKESPERSON, only, rules_for

SERVICE = publication_service_pb2.DESCRIPTOR.services_by_name["PublicationService"].full_name
RULES = rules_for(SERVICE, {
    "RecordPromulgation": only(GAZETTE, DRAFTING_AGENCY),
    "AmendRegulation": only(GAZETTE, DRAFTING_AGENCY),
    "RepealRegulation": only(GAZETTE, DRAFTING_AGENCY),
    "IssueSpokespersonRelease": only(SPOKESPERSON),
    "GetTimeline": ANY_ROLE,
})
