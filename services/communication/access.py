"""Who may call the TaskService. An organisation that owns tasks (an office, a press agency,
commune officers, a unit that receives escalations) lists and reads the tasks it owns or that
were escalated to it, and accepts, reports on and completes only those it owns; the lead
agency's communication office, which commissions the work, may also read and cancel its
regulation's tasks. Operators read every task. Ownership is checked by the servicer."""

from policy.communication.v1 import task_service_pb2
from policykit.auth import COMMUNICATION, OPERATOR, only, rules_for

SERVICE = task_service_pb2.DESCRIPTOR.services_by_name["TaskService"].full_name
RULES = rules_for(SERVICE, {
    "ListTasks": only(COMMUNICATION, OPERATOR),
    "GetTask": only(COMMUNICATION, OPERATOR),
    "AcceptTask": only(COMMUNICATION),
    "ReportProgress": only(COMMUNICATION),
    "CompleteTask": only(COMMUNICATION),
    "CancelTask": only(COMMUNICATION),
})
