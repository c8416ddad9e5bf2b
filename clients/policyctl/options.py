"""Option types and helpers the command groups share: protobuf enums as friendly choices,
idempotency keys, and walking through paged results."""

from __future__ import annotations

import uuid
from typing import Callable, Iterator

import click
from google.protobuf.descriptor import EnumDescriptor

from policyctl.output import label

PAGE_SIZE = 200


class EnumChoice(click.Choice):
    """A protobuf enum as lowercase choices without its prefix (`--status in-progress` for
    TASK_STATUS_IN_PROGRESS); converts to the enum number. UNSPECIFIED is not offered."""

    def __init__(self, enum: EnumDescriptor, prefix: str):
        self.numbers = {label(value.name, prefix): value.number for value in enum.values
                        if value.number != 0}
        super().__init__(list(self.numbers), case_sensitive=False)

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        return self.numbers[super().convert(value, param, ctx)]


def idempotency_key_option(command: Callable) -> Callable:
    return click.option(
        "--idempotency-key", default=lambda: str(uuid.uuid4()), show_default="a new UUID",
        help="Repeat a call safely: a retry with the same key returns the first result and "
             "changes nothing.")(command)


def paged(call: Callable, request, items: str, limit: int | None = None) -> Iterator:
    """Yields the items of every page (at most `limit`), asking for the next page with the
    token of the previous one."""
    yielded = 0
    request.page.page_size = PAGE_SIZE
    while True:
        response = call(request)
        for item in getattr(response, items):
            if limit is not None and yielded >= limit:
                return
            yield item
            yielded += 1
        if not response.page.next_page_token:
            return
        request.page.page_token = response.page.next_page_token
