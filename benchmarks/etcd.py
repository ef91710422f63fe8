"""etcd v3, the system users would pick instead, measured through its gRPC API.

The etcd stubs are not reliably on PyPI, so the few messages we need are described here as a
protobuf descriptor built at import time (field numbers from etcd's `rpc.proto` / `kv.proto`) and
called through generic grpcio multi-callables. Only the fields the benchmark touches are declared;
protobuf keeps the others as unknown fields.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

__all__ = ["EtcdClient"]

_F = descriptor_pb2.FieldDescriptorProto
_BYTES, _INT64, _BOOL, _MESSAGE = _F.TYPE_BYTES, _F.TYPE_INT64, _F.TYPE_BOOL, _F.TYPE_MESSAGE
_REPEATED = _F.LABEL_REPEATED

# message name -> [(field name, number, type, message type or "", repeated)]
_MESSAGES: dict[str, list[tuple[str, int, int, str, bool]]] = {
    "ResponseHeader": [("revision", 3, _INT64, "", False)],
    "KeyValue": [
        ("key", 1, _BYTES, "", False),
        ("mod_revision", 3, _INT64, "", False),
        ("value", 5, _BYTES, "", False),
    ],
    "RangeRequest": [("key", 1, _BYTES, "", False)],
    "RangeResponse": [
        ("header", 1, _MESSAGE, "ResponseHeader", False),
        ("kvs", 2, _MESSAGE, "KeyValue", True),
    ],
    "PutRequest": [("key", 1, _BYTES, "", False), ("value", 2, _BYTES, "", False)],
    "PutResponse": [("header", 1, _MESSAGE, "ResponseHeader", False)],
    "RequestOp": [("request_put", 2, _MESSAGE, "PutRequest", False)],
    "TxnRequest": [("success", 2, _MESSAGE, "RequestOp", True)],
    "TxnResponse": [("header", 1, _MESSAGE, "ResponseHeader", False), ("succeeded", 2, _BOOL, "", False)],
    "WatchCreateRequest": [("key", 1, _BYTES, "", False), ("start_revision", 3, _INT64, "", False)],
    "WatchRequest": [("create_request", 1, _MESSAGE, "WatchCreateRequest", False)],
    "Event": [("kv", 2, _MESSAGE, "KeyValue", False)],
    "WatchResponse": [
        ("header", 1, _MESSAGE, "ResponseHeader", False),
        ("created", 3, _BOOL, "", False),
        ("events", 11, _MESSAGE, "Event", True),
    ],
}


def _message_classes() -> dict[str, type[Message]]:
    file = descriptor_pb2.FileDescriptorProto(name="ub_bench_etcd.proto", package="etcdserverpb")
    for name, fields in _MESSAGES.items():
        message = file.message_type.add(name=name)
        for field_name, number, kind, type_name, repeated in fields:
            field = message.field.add(name=field_name, number=number, type=kind)
            field.label = _REPEATED if repeated else _F.LABEL_OPTIONAL
            if type_name:
                field.type_name = f".etcdserverpb.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"etcdserverpb.{name}"))
        for name in _MESSAGES
    }


_TYPES = _message_classes()


def _new(name: str, **fields: Any) -> Message:
    return _TYPES[name](**fields)


def _codec(name: str) -> tuple[Callable[[Message], bytes], Callable[[bytes], Message]]:
    return (lambda message: message.SerializeToString()), _TYPES[name].FromString


class EtcdClient:
    """Blocking get / put / txn, and a watch whose events are timestamped on arrival."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.insecure_channel(target)
        self._range = self._unary("KV/Range", "RangeRequest", "RangeResponse")
        self._put = self._unary("KV/Put", "PutRequest", "PutResponse")
        self._txn = self._unary("KV/Txn", "TxnRequest", "TxnResponse")

    def _unary(
        self, method: str, request: str, response: str
    ) -> grpc.UnaryUnaryMultiCallable[Message, Message]:
        serialize, _ = _codec(request)
        _, deserialize = _codec(response)
        return self.channel.unary_unary(
            f"/etcdserverpb.{method}", request_serializer=serialize, response_deserializer=deserialize
        )

    def get(self, key: bytes) -> bytes:
        response = self._range(_new("RangeRequest", key=key))
        kvs: list[Any] = list(getattr(response, "kvs"))  # noqa: B009 -- dynamic message
        return bytes(kvs[0].value) if kvs else b""

    def put(self, key: bytes, value: bytes) -> None:
        self._put(_new("PutRequest", key=key, value=value))

    def txn_puts(self, items: dict[bytes, bytes]) -> None:
        ops = [_new("RequestOp", request_put=_new("PutRequest", key=k, value=v)) for k, v in items.items()]
        self._txn(_new("TxnRequest", success=ops))

    def watch_latencies(self, key: bytes, n: int, settle_s: float = 0.001) -> list[int]:
        """Nanoseconds from the start of a put to the arrival of its watch event (same process)."""
        serialize, _ = _codec("WatchRequest")
        _, deserialize = _codec("WatchResponse")
        watch = self.channel.stream_stream(
            "/etcdserverpb.Watch/Watch", request_serializer=serialize, response_deserializer=deserialize
        )
        stop = threading.Event()

        def requests() -> Iterator[Message]:
            yield _new("WatchRequest", create_request=_new("WatchCreateRequest", key=key))
            stop.wait()

        arrivals: queue.Queue[int] = queue.Queue()
        created = threading.Event()
        responses = watch(requests())

        def follow() -> None:
            try:
                for response in responses:
                    if getattr(response, "created"):  # noqa: B009
                        created.set()
                    for _ in getattr(response, "events"):  # noqa: B009
                        arrivals.put(time.perf_counter_ns())
            except grpc.RpcError as exc:
                if exc.code() is not grpc.StatusCode.CANCELLED:  # our own cancel ends the stream
                    raise

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        samples: list[int] = []
        try:
            if not created.wait(10):
                raise TimeoutError("etcd watch was not created")
            for i in range(n):
                start = time.perf_counter_ns()
                self.put(key, str(i).encode())
                samples.append(arrivals.get(timeout=10) - start)
                time.sleep(settle_s)
        finally:
            stop.set()
            responses.cancel()  # type: ignore[no-untyped-call]  # grpc-stubs leaves it untyped
            thread.join(5)
        return samples

    def close(self) -> None:
        self.channel.close()
