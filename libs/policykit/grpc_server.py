"""gRPC server bootstrap: the standard health service, server reflection, per-call metrics,
domain errors mapped to status codes (policykit.errors), and a graceful stop that reports NOT_SERVING before draining in-flight calls."""

from __future__ import annotations

import time
from typing import Callable, Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from policykit import metrics
from policykit.errors import abort_for


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    """Maps domain errors to status codes, counts calls by method and code, and times them."""

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _measured(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                _measured(handler.stream_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        return handler  # streaming responses (health Watch, reflection) are not timed


def _measured(behaviour, method: str):
    async def wrapper(request, context: grpc.aio.ServicerContext):
        started = time.perf_counter()
        try:
            return await behaviour(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            await abort_for(error, context)
        finally:
            code = context.code() or grpc.StatusCode.OK
            metrics.GRPC_REQUESTS.labels(method, code.name).inc()
            metrics.GRPC_LATENCY.labels(method).observe(time.perf_counter() - started)
    return wrapper


class GrpcServer:
    """An aio gRPC server with health and reflection for the given service descriptors."""

    def __init__(self, port: int, registrations: Iterable[Callable[[grpc.aio.Server], None]],
                 service_names: Iterable[str], *, host: str = "0.0.0.0"):
        self.server = grpc.aio.server(interceptors=[ServiceInterceptor()])
        self.health = health.aio.HealthServicer()
        self.service_names = list(service_names)
        for register in registrations:
            register(self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server)
        self.port = self.server.add_insecure_port(f"{host}:{port}")

    async def start(self) -> int:
        """Starts serving and reports SERVING; returns the port bound."""
        await self.server.start()
        for name in ("", *self.service_names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        return self.port

    async def stop(self, grace_seconds: float) -> None:
        """Reports NOT_SERVING, refuses new calls and lets in-flight ones finish."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_seconds)
