"""gRPC channels to the platform's services with the caller's credentials: a bearer token
(services with AUTH_MODE=tokens) and TLS with a client certificate (AUTH_MODE=mtls)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Sequence

import grpc


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Sequence[tuple[str, str]] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                  grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds `authorization: Bearer <token>` to every call, retries included. Metadata rather
    than call credentials: gRPC sends those over TLS only, and the local platform is
    plaintext."""

    def __init__(self, token: str):
        self._header = ("authorization", f"Bearer {token}")

    def _details(self, details: grpc.ClientCallDetails) -> _CallDetails:
        return _CallDetails(details.method, details.timeout,
                            [*(details.metadata or ()), self._header], details.credentials,
                            details.wait_for_ready, details.compression)

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return continuation(self._details(client_call_details), request_iterator)


def tls_credentials(ca_file: str | Path, cert_file: str | Path | None = None,
                    key_file: str | Path | None = None) -> grpc.ChannelCredentials:
    """TLS trusting the CA in `ca_file`, presenting the client certificate and key when given
    (both or neither)."""
    if (cert_file is None) != (key_file is None):
        raise ValueError("a client certificate needs its key, and a key its certificate")
    return grpc.ssl_channel_credentials(
        Path(ca_file).read_bytes(),
        private_key=Path(key_file).read_bytes() if key_file else None,
        certificate_chain=Path(cert_file).read_bytes() if cert_file else None)


def with_token(channel: grpc.Channel, token: str | None) -> grpc.Channel:
    """The channel sending the token with every call, or the channel itself without one."""
    return grpc.intercept_channel(channel, BearerToken(token)) if token else channel


def open_channel(target: str, *, token: str | None = None,
                 credentials: grpc.ChannelCredentials | None = None,
                 options: Sequence[tuple[str, object]] = ()) -> grpc.Channel:
    """A channel to "host:port": TLS with `credentials` (tls_credentials), else plaintext; the
    token, if any, on every call. Closing it closes the connection."""
    channel = (grpc.insecure_channel(target, options=options) if credentials is None
               else grpc.secure_channel(target, credentials, options=options))
    return with_token(channel, token)
