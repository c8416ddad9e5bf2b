"""The state a command runs with: settings, output, and the connections it opened."""

from __future__ import annotations

import functools

import click
import grpc

from policy_sdk.channels import open_channel, tls_credentials
from policyctl import errors
from policyctl.output import Output
from policyctl.settings import TLS_VARIABLES, Settings


class Session:
    """What every command needs: settings, output, and one gRPC channel per service used."""

    def __init__(self, settings: Settings, output: Output):
        self.settings = settings
        self.out = output
        self.json = output.json
        self._channels: dict[str, grpc.Channel] = {}

    def target(self, service: str) -> str:
        return self.settings.targets[service]

    @functools.cached_property
    def credentials(self) -> grpc.ChannelCredentials | None:
        """TLS from the POLICYCTL_TLS_* files, None for plaintext."""
        if self.settings.tls_files is None:
            return None
        try:
            return tls_credentials(*self.settings.tls_files)
        except (OSError, ValueError) as error:
            raise errors.CommandError(f"{'/'.join(TLS_VARIABLES)}: {error}",
                                      errors.USAGE) from error

    def channel(self, service: str) -> grpc.Channel:
        if service not in self._channels:
            self._channels[service] = open_channel(self.target(service),
                                                   token=self.settings.token,
                                                   credentials=self.credentials)
        return self._channels[service]

    def stub(self, service: str, stub_type):
        return stub_type(self.channel(service))

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()


pass_session = click.make_pass_decorator(Session)
