"""The one error hierarchy. Each error carries the gRPC status code it maps to (see serving/)."""

from __future__ import annotations

import re

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
        super().__init__(f"model config not found or invalid for id: {clip(model_id, quote=False)}")
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


class OverloadedError(InferflowError):
    """Admission control shed the request (too many in flight / queued): retry elsewhere or later."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class ShedError(InferflowError):
    """The request waited too long for a slot: UNAVAILABLE (retryable)."""

    code = grpc.StatusCode.UNAVAILABLE


class ExpiredError(InferflowError):
    """The request's deadline passed (or cannot be met) before any work started."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


CLIP_CHARS = 128
MAX_MESSAGE_CHARS = 2048
_PATH = re.compile(
    r"(?<![\w.:/])(?:[A-Za-z]:)?(?:[\\/][\w.@+~-]+){2,}[\\/]?|(?<![\w.])~?[\w.-]*[\\/][\w.@+~/-]+\.\w+"
)


def clip(text: object, limit: int = CLIP_CHARS, quote: bool = True) -> str:
    """A request string for an error message (``repr`` unless ``quote=False``), cut to ``limit`` chars."""
    shown = repr(text) if quote else str(text)
    if len(shown) <= limit:
        return shown
    return f"{shown[:limit]}... ({len(str(text))} chars)"


def sanitize(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """A message fit for a caller: file-system paths replaced by ``<path>``, at most ``limit`` chars.

    The full message belongs in the application log (operators), never in a response or /health/ready.
    """
    out = _PATH.sub("<path>", message)
    return out if len(out) <= limit else out[:limit] + "..."
