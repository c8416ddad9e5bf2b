"""Vietnamese names of the platform's vocabulary, for reasons, timelines and the dashboard."""

from __future__ import annotations

from policy.common.v1 import common_pb2 as common

CHANNELS = {
    common.CHANNEL_PRESS: "Báo chí",
    common.CHANNEL_TELEVISION: "Truyền hình",
    common.CHANNEL_RADIO: "Phát thanh",
    common.CHANNEL_GOVERNMENT_PORTAL: "Cổng thông tin điện tử",
    common.CHANNEL_SOCIAL_MEDIA: "Mạng xã hội",
    common.CHANNEL_SMS: "Tin nhắn SMS",
    common.CHANNEL_COMMUNE_LOUDSPEAKER: "Loa truyền thanh cơ sở",
    common.CHANNEL_GRASSROOTS_COLLABORATOR: "Cộng tác viên cơ sở",
    common.CHANNEL_PRESS_BRIEFING: "Họp báo",
    common.CHANNEL_PUBLICATION: "Công báo",
}

FUNNEL_STAGES = {
    common.FUNNEL_STAGE_KNOW: "Dân biết",
    common.FUNNEL_STAGE_UNDERSTAND: "Dân hiểu",
    common.FUNNEL_STAGE_TRUST: "Dân tin",
    common.FUNNEL_STAGE_FOLLOW: "Dân theo",
    common.FUNNEL_STAGE_ACT: "Dân làm",
    common.FUNNEL_STAGE_BENEFIT: "Dân thụ hưởng",
}


def channel(value: int) -> str:
    return CHANNELS.get(value, f"kênh {value}")


def funnel_stage(value: int) -> str:
    return FUNNEL_STAGES.get(value, f"giai đoạn {value}")


def number(value: float, decimals: int = 0) -> str:
    """Vietnamese number format: dots between thousands, a comma before decimals."""
    text = f"{value:,.{decimals}f}"
    return text.replace(",", " ").replace(".", ",").replace(" ", ".")
