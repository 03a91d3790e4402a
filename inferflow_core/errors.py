"""The one error hierarchy. Each error carries the gRPC status code it maps to (see serving/)."""

from __future__ import annotations

import grpc


class InferflowError(Exception):
    """Base of every error the core raises on purpose. ``code`` is the gRPC status it maps to."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RequestError(InferflowError):
    """The request is malformed: names the field that is wrong."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class UsageError(RequestError):
    """A command line was given arguments it cannot use: the CLI prints the message and exits 2."""

    exit_code = 2


class ModelNotFoundError(RequestError):
    """No valid model config for the requested id."""

    def __init__(self, model_id: str) -> None:
        super().__init__(f"model config not found or invalid for id: {model_id}")
        self.model_id = model_id


class ConfigError(InferflowError):
    """A model or service config is invalid. ``problems`` lists (json path, message) pairs."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, model_id: str, problems: list[tuple[str, str]]) -> None:
        self.model_id = model_id
        self.problems = problems
        lines = "; ".join(f"{path}: {msg}" if path else msg for path, msg in problems)
        super().__init__(f"model {model_id!r}: {lines}")


class ComponentError(InferflowError):
    """A component could not do its work. Contained by the engine: cells stay missing."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


class PluginError(InferflowError):
    """A plugin failed to load or a model needs a plugin that is not installed."""
