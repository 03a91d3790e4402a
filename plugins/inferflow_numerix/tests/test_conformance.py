"""The core's ComponentConformance contract, embedded and against a real remote server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from inferflow_numerix.client import NumerixClient
from inferflow_numerix.component import NumerixComponent, NumerixType
from inferflow_numerix.config import NumerixConfig
from inferflow_numerix.settings import NumerixSettings

from inferflow_core.api import BuildContext, Metrics, RunContext
from inferflow_core.testing import ComponentConformance, make_context, pick_free_port, silent_port

CFG = {
    "component": "final",
    "component_id": "catalog_id",
    "score_col": "final_score",
    "data_type": "fp32",
    "score_mapping": {"pctr@fp32": "pctr", "price@fp32": "price"},
    "compute_id": "s1",
}
TEXTS = {"catalog_id": ["a", "b", "c"], "pctr": ["0.5", "0.1", "0.9"], "price": ["1", "2", "3"]}


def build(settings: NumerixSettings) -> NumerixComponent:
    # the compute_id's expression must exist at build time (each run's context may carry another version)
    tree = {"numerix/expression-config/s1": json.dumps({"expression": "pctr price 2 + log /"})}
    ctx = BuildContext(model_id="conf", model=None, config=tree, metrics=Metrics())  # type: ignore[arg-type]
    comp = NumerixType(settings).build(NumerixConfig.model_validate(CFG), ctx)
    assert isinstance(comp, NumerixComponent)
    return comp


class TestEmbeddedConformance(ComponentConformance):
    modes = ("ok", "broken")  # the embedded evaluator never waits on anything: there is no slow backend

    def make_component(self) -> NumerixComponent:
        return build(NumerixSettings(host=""))

    def make_context(self, mode: str) -> RunContext:
        expression = {"ok": "pctr price 2 + log /", "broken": "pctr price 2 - log /"}[mode]
        key = "numerix/expression-config/s1"
        return make_context(
            self.make_component(), rows=3, texts=TEXTS, config={key: json.dumps({"expression": expression})}
        )


@pytest.fixture(scope="module")
def conformance_server(start_numerix_server, tmp_path_factory) -> int:
    from inferflow_core.testing import write_config_dir

    root = tmp_path_factory.mktemp("conf_cfg")
    write_config_dir(
        root, {"numerix/expression-config/s1": json.dumps({"expression": "pctr price 2 + log /"})}
    )
    return start_numerix_server(root)


@pytest.fixture(scope="module")
def blackhole() -> Iterator[int]:
    """A socket that accepts TCP connections but never speaks HTTP/2: a hanging backend."""
    with silent_port() as port:
        yield port


@pytest.mark.integration
class TestRemoteConformance(ComponentConformance):
    @pytest.fixture(autouse=True)
    def _ports(self, conformance_server: int, blackhole: int) -> None:
        self.ports = {"ok": conformance_server, "broken": pick_free_port(), "slow": blackhole}

    def make_component(self) -> NumerixComponent:
        self.component = build(NumerixSettings(host="127.0.0.1", port=self.ports["ok"], plaintext=True))
        return self.component

    def make_context(self, mode: str) -> RunContext:
        # the same component, pointed at a working / refusing / hanging backend
        settings = NumerixSettings(host="127.0.0.1", port=self.ports[mode], plaintext=True)
        self.component.client = NumerixClient(settings)
        return make_context(self.component, rows=3, texts=TEXTS)
