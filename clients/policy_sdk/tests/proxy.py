"""A gRPC proxy that can lose answers, for testing what a client does when a response never
arrives although the service did the work."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import grpc

from deploy.local.kafka_broker import free_port


class LossyProxy:
    """Forwards every unary call to `upstream` byte for byte and records the requests by
    method name ("RegisterDraft"). After lose_next_answers(method), the next calls of that
    method are still forwarded, but the client gets UNAVAILABLE instead of the service's
    response, as when a connection drops on the way back.

    Nothing listens on `target` until start() (or entering the `with` block), so a client can
    be pointed at a service that is not up yet."""

    def __init__(self, upstream: str):
        self.target = f"127.0.0.1:{free_port()}"
        self.lost_answers: dict[str, list[bytes]] = defaultdict(list)
        self._requests: dict[str, list[bytes]] = defaultdict(list)
        self._to_lose: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._upstream = grpc.insecure_channel(upstream)
        self._server: grpc.Server | None = None

    def lose_next_answers(self, method: str, count: int = 1) -> None:
        with self._lock:
            self._to_lose[method] += count

    def requests(self, method: str) -> list[bytes]:
        with self._lock:
            return list(self._requests[method])

    def start(self) -> None:
        self._server = grpc.server(ThreadPoolExecutor(max_workers=8), handlers=[_Forward(self)])
        self._server.add_insecure_port(self.target)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None)
        self._upstream.close()

    def __enter__(self) -> LossyProxy:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def forward(self, full_method: str, request: bytes, context: grpc.ServicerContext) -> bytes:
        method = full_method.rsplit("/", 1)[-1]
        with self._lock:
            self._requests[method].append(request)
        try:
            # The caller's credentials go on (services with AUTH_MODE=tokens).
            metadata = [(k, v) for k, v in context.invocation_metadata() if k == "authorization"]
            response = self._upstream.unary_unary(full_method)(request, timeout=30,
                                                               metadata=metadata)
        except grpc.RpcError as error:
            # The trailing metadata carries the details, e.g. INVALID_ARGUMENT's BadRequest.
            context.set_trailing_metadata(error.trailing_metadata())
            context.abort(error.code(), error.details())
        with self._lock:
            lose = self._to_lose[method] > 0
            if lose:
                self._to_lose[method] -= 1
                self.lost_answers[method].append(response)
        if lose:
            context.abort(grpc.StatusCode.UNAVAILABLE, "proxy: connection lost before the answer")
        return response


class _Forward(grpc.GenericRpcHandler):
    def __init__(self, proxy: LossyProxy):
        self.proxy = proxy

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        # No (de)serializers: requests and responses pass through as bytes.
        return grpc.unary_unary_rpc_method_handler(
            lambda request, context: self.proxy.forward(method, request, context))
