"""Inferflow PredatorComponent: model calls over KServe v2 gRPC (Triton, MLServer) or in-process ONNX."""

from .component import PredatorComponent, PredatorType
from .config import PredatorConfig
from .settings import PredatorSettings

__all__ = ["PredatorComponent", "PredatorConfig", "PredatorSettings", "PredatorType"]
