"""Registers a draft decree over gRPC, revises it and submits it for public consultation.

    .venv/bin/python clients/policy_sdk/examples/register_and_submit.py [--target HOST:PORT]

The default target is the drafting service of the local platform (`make up`,
deploy/local/ports.env)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta, timezone

from policy_sdk import DraftingClient, DraftState, InvalidArgument, PolicySdkError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:50051",
                        help="the drafting service's gRPC address (default: %(default)s)")
    args = parser.parse_args(argv)

    now = datetime.now(timezone.utc)
    with DraftingClient(args.target) as client:
        try:
            draft = client.register_draft(
                regulation_type="REGULATION_TYPE_DECREE",
                title="Nghị định về quản lý đất đai",
                summary="Quy định chi tiết về giá đất, bồi thường và tái định cư.",
                lead_agency_id="bnnmt", impact_level="IMPACT_LEVEL_HIGH",
                affected_groups=["nong-dan", "doanh-nghiep"],
                affected_province_codes=["01", "lai-chau"],  # a 2008 code and a 2025 id
                planned_consultation_start=now + timedelta(days=14),
                planned_adoption=now + timedelta(days=90))
            print(f"registered  {draft.regulation_id}  v{draft.version}  {draft.title}")

            draft = client.revise_draft(
                draft.regulation_id, change_summary="Bổ sung quy định về hỗ trợ chuyển đổi nghề",
                summary="Quy định chi tiết về giá đất, bồi thường, hỗ trợ và tái định cư.")
            print(f"revised     {draft.regulation_id}  v{draft.version}  {draft.summary}")

            draft = client.submit_for_consultation(draft.regulation_id)
            print(f"submitted   {draft.regulation_id}  v{draft.version}  "
                  f"{DraftState.Name(draft.state)}")
        except InvalidArgument as error:
            for field, problem in error.violations:
                print(f"invalid {field}: {problem}", file=sys.stderr)
            return 1
        except PolicySdkError as error:
            print(f"failed: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
