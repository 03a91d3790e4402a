"""The core's own plugin (entry point ``core``): the feature initializer and the directory config source.

It is registered like any other plugin, so ``inferflow plugins`` lists it and tests can replace it.
"""

from __future__ import annotations

from pydantic import BaseModel

from ..config.etcd_source import EtcdSourceFactory
from ..config.model import FEATURE_INITIALIZER
from ..config.sources import DirectorySourceFactory
from ..hookspecs import Register, hookimpl
from .base import BuildContext, ColumnSpec, Component
from .feature_init import FeatureInitComponent


class FeatureInitType:
    """Builds the root node of every DAG (``feature_initializer``)."""

    config_key = FEATURE_INITIALIZER
    config_model = BaseModel

    def build_root(
        self,
        ctx: BuildContext,
        target_columns: tuple[ColumnSpec, ...],
        slate_columns: tuple[ColumnSpec, ...],
        components: tuple[Component, ...],
    ) -> Component:
        return FeatureInitComponent(ctx.model_id, ctx.model, target_columns, slate_columns, components)

    def build(self, config: BaseModel, ctx: BuildContext) -> Component:  # pragma: no cover - not a section
        raise TypeError("feature_initializer is not configured through a component section")


@hookimpl
def register_components(register: Register) -> None:
    register(FeatureInitType())


@hookimpl
def register_config_sources(register: Register) -> None:
    register(DirectorySourceFactory())
    register(EtcdSourceFactory())
