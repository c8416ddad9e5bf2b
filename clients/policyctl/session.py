"""The state a command runs with: settings, output, and the connections it opened."""

from __future__ import annotations

import click
import grpc

from policyctl.output import Output
from policyctl.settings import Settings


class Session:
    """What every command needs: settings, output, and one gRPC channel per service used."""

    def __init__(self, settings: Settings, output: Output):
        self.settings = settings
        self.out = output
        self.json = output.json
        self._channels: dict[str, grpc.Channel] = {}

    def target(self, service: str) -> str:
        return self.settings.targets[service]

    def channel(self, service: str) -> grpc.Channel:
        if service not in self._channels:
            self._channels[service] = grpc.insecure_channel(self.target(service))
        return self._channels[service]

    def stub(self, service: str, stub_type):
        return stub_type(self.channel(service))

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()


pass_session = click.make_pass_decorator(Session)
