"""ComponentConformance for the predator over the wire: a TCP relay in front of MLServer decides whether the
backend works (relays), is broken (closes every connection) or hangs (accepts and never answers)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import predator_support as cf
import pytest
from inferflow_predator import PredatorSettings, PredatorType

from inferflow_core.api import BuildContext, DataType, Metrics, ModelConfig, RunContext, TypedValues
from inferflow_core.testing import ComponentConformance, make_context

pytestmark = pytest.mark.integration


class Relay:
    """Loopback TCP relay whose behaviour (``mode``) is read when a connection arrives."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.mode = "ok"
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.mode == "broken":
                conn.close()
            elif self.mode == "slow":
                self.held.append(conn)
            else:
                up = socket.create_connection(self.upstream)
                self.held += [conn, up]
                threading.Thread(target=self._pump, args=(conn, up), daemon=True).start()
                threading.Thread(target=self._pump, args=(up, conn), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.sock.close()
        for s in self.held:
            s.close()


class TestPredatorConformance(ComponentConformance):
    finish_within_s = 2.0

    @pytest.fixture(autouse=True)
    def _relay(self, mlserver: Any) -> Iterator[None]:
        self.mlserver = mlserver
        self.relay = Relay(("127.0.0.1", mlserver.grpc_port))
        yield
        self.relay.close()

    def make_component(self) -> Any:
        ptype = PredatorType(PredatorSettings(plain_text=True))
        cfg = ptype.config_model.model_validate(
            {
                "component": "clf",
                "component_id": "id",
                "model_name": "clf",
                "model_end_point": f"127.0.0.1:{self.relay.port}",
                "deadline": 10_000,
                "batch_size": 4,
                "inputs": [
                    {
                        "name": "x",
                        "features": [f"f{i}" for i in range(cf.N_FEATURES)],
                        "shape": [cf.N_FEATURES],
                        "data_type": "FP32",
                    }
                ],
                "outputs": [
                    {
                        "name": "predict_proba",
                        "model_scores": ["p0", "p1"],
                        "model_scores_dims": [[1], [1]],
                        "data_type": "FP64",
                    }
                ],
            }
        )
        model = ModelConfig.model_validate({"dag_execution_config": {"component_dependency": {"clf": []}}})
        self.component = ptype.build(cfg, BuildContext("test_model", model, {}, Metrics()))  # type: ignore[arg-type]
        return self.component

    def make_context(self, mode: str) -> RunContext:
        self.relay.mode = mode
        x = self.mlserver.expected["X"][:10]
        ctx = make_context(self.component, rows=10)
        for i in range(cf.N_FEATURES):
            tv = TypedValues(DataType.FP32, x[:, i].copy(), np.ones(10, dtype=bool))
            ctx.matrix.declare(f"f{i}", tv.dtype)
            ctx.matrix.set_column(f"f{i}", tv.values, tv.valid)
        return ctx
