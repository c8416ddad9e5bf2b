"""gRPC server bootstrap: the standard health service, server reflection, authentication and
the access rules of each method (policykit.auth), per-call metrics, domain errors mapped to
status codes (policykit.errors), and a graceful stop that reports NOT_SERVING before draining
in-flight calls."""

from __future__ import annotations

import functools
import re
import secrets
import time
from typing import Callable, Iterable, Mapping

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import Counter

from policykit import auth, grpc_requests, metrics
from policykit.errors import abort_for

# The request id of a call: the client's, when usable, else one made for it; either way sent
# back in the trailing metadata and written to the audit log (policykit.audit). Trailing, not
# initial: sending initial metadata before the answer halved the throughput of bulk comment
# streams. An error whose status carries details (INVALID_ARGUMENT, RESOURCE_EXHAUSTED)
# replaces it.
REQUEST_ID = "x-request-id"
_USABLE_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,200}$")


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    """Admits each call through the gate (health and reflection are open), makes its caller
    the current principal and the call (method, request id) current, maps domain errors to
    status codes, counts calls by method and code, and times them."""

    def __init__(self, gate: auth.Gate):
        self.gate = gate
        # grpc asks on every call; each method's handler is wrapped once.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        known = self._wrapped.get(method)
        if known is None or known[0] is not handler:
            known = self._wrapped[method] = (handler, self._wrap(handler, method))
        return known[1]

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        admit = None if self.gate.is_open(method) else functools.partial(self.gate.admit, method)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _measured(handler.unary_unary, method, admit),
                request_deserializer=grpc_requests.tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                _measured(handler.stream_unary, method, admit),
                request_deserializer=grpc_requests.tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer)
        # Streaming responses: health Watch and reflection, both open; auth.rules_for refuses
        # them in the platform's APIs, so none passes here unchecked.
        return handler


def _measured(behaviour, method: str,
              admit: Callable[[grpc.aio.ServicerContext], auth.Principal] | None):
    # The method's labelled metrics, looked up once: labels() locks and builds a key.
    latency = metrics.GRPC_LATENCY.labels(method)
    counted: dict[grpc.StatusCode, Counter] = {}

    async def wrapper(request, context: grpc.aio.ServicerContext):
        started = time.perf_counter()
        try:
            request_id = _request_id(context)
            context.set_trailing_metadata(((REQUEST_ID, request_id),))
            principal = auth.UNCHECKED if admit is None else admit(context)
            # A stream of requests has no key of its own (each request may have one).
            call = auth.Call(method, request_id, getattr(request, "idempotency_key", ""))
            with auth.calling_as(principal, call):
                return await behaviour(grpc_requests.checked(request), context)
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            await abort_for(error, context)
        finally:
            code = context.code() or grpc.StatusCode.OK
            calls = counted.get(code)
            if calls is None:
                calls = counted[code] = metrics.GRPC_REQUESTS.labels(method, code.name)
            calls.inc()
            latency.observe(time.perf_counter() - started)
    return wrapper


def _request_id(context: grpc.aio.ServicerContext) -> str:
    sent = next((value for key, value in context.invocation_metadata() or ()
                 if key == REQUEST_ID), "")
    # 32 random hex digits, as a uuid4's hex would be, at a third of its cost.
    return sent if _USABLE_REQUEST_ID.match(sent) else secrets.token_hex(16)


class GrpcServer:
    """An aio gRPC server with health and reflection for the given service descriptors, whose
    callers authenticate and are admitted as `auth_settings` and `rules` say (by default, no
    authentication). With a health port, a second, plaintext server answers only the health
    service there, for probes that cannot present a client certificate."""

    def __init__(self, port: int, registrations: Iterable[Callable[[grpc.aio.Server], None]],
                 service_names: Iterable[str], *, host: str = "0.0.0.0",
                 auth_settings: auth.AuthSettings = auth.AuthSettings(),
                 rules: Mapping[str, auth.Rule] | None = None):
        gate = auth.Gate(auth_settings.authenticator(), rules or {})
        self.server = grpc.aio.server(interceptors=[ServiceInterceptor(gate)])
        self.health = health.aio.HealthServicer()
        self.service_names = list(service_names)
        for register in registrations:
            register(self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server)
        credentials = auth_settings.server_credentials()
        address = f"{host}:{port}"
        self.port = (self.server.add_insecure_port(address) if credentials is None
                     else self.server.add_secure_port(address, credentials))
        self.servers = [self.server]
        if auth_settings.health_port:
            probes = grpc.aio.server()
            health_pb2_grpc.add_HealthServicer_to_server(self.health, probes)
            probes.add_insecure_port(f"{host}:{auth_settings.health_port}")
            self.servers.append(probes)

    async def start(self) -> int:
        """Starts serving and reports SERVING; returns the port bound."""
        for server in self.servers:
            await server.start()
        for name in ("", *self.service_names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        return self.port

    async def stop(self, grace_seconds: float) -> None:
        """Reports NOT_SERVING, refuses new calls and lets in-flight ones finish."""
        await self.health.enter_graceful_shutdown()
        for server in self.servers:
            await server.stop(grace_seconds)
