"""A bounded range of the inference-log topic as a replay source: ``kafka://HOST:PORT[,HOST:PORT]/TOPIC``.

Query parameters (all optional, offsets apply to every partition read):

* ``from=N``: first offset read (inclusive; default: the partition's low watermark, its oldest message);
* ``to=M``: end offset (exclusive; default and upper bound: the high watermark when replay starts, so a
  topic that keeps growing is still read to a fixed end);
* ``partition=P[,P...]``: only these partitions (default: every partition of the topic).

Messages are decoded by :func:`.cli.decode_record`, the decoder of the log files. A Kafka message
carries no schema (the Kafka sink writes the value alone), so the schemas come from ``--schema`` or
are derived from the config that wrote the logs (``--log-config-dir``). The chunks of one request
(``log_batch_size``) may land on different partitions (the sink produces without a key): the range is
read whole and the records regrouped by request before replay, so it is held in memory.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .cli import Schemas, decode_record

SCHEME = "kafka://"
_QUERY_KEYS = {"from", "to", "partition"}


class KafkaSourceError(Exception):
    """The source is malformed, the broker unreachable, the topic missing, or the read timed out."""


@dataclass(frozen=True)
class KafkaSource:
    url: str
    bootstrap: str
    topic: str
    start: int | None = None
    end: int | None = None
    partitions: tuple[int, ...] | None = None


def is_kafka(source: str) -> bool:
    return source.startswith(SCHEME)


def parse_source(url: str) -> KafkaSource:
    parts = urlsplit(url)
    topic = parts.path.lstrip("/")
    if parts.scheme != "kafka" or not parts.netloc or not topic or "/" in topic:
        raise KafkaSourceError(
            f"{url}: expected kafka://HOST:PORT[,HOST:PORT]/TOPIC[?from=N&to=M&partition=P]"
        )
    query: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _QUERY_KEYS:
            raise KafkaSourceError(f"{url}: unknown parameter {key!r} (known: from, to, partition)")
        query[key] = value
    try:
        start = int(query["from"]) if "from" in query else None
        end = int(query["to"]) if "to" in query else None
        partitions = tuple(int(p) for p in query["partition"].split(",")) if "partition" in query else None
    except ValueError:
        raise KafkaSourceError(f"{url}: from, to and partition take non-negative integers") from None
    if any(v is not None and v < 0 for v in (start, end)) or any(p < 0 for p in partitions or ()):
        raise KafkaSourceError(f"{url}: from, to and partition take non-negative integers")
    if start is not None and end is not None and end < start:
        raise KafkaSourceError(f"{url}: to={end} is before from={start}")
    return KafkaSource(url, parts.netloc, topic, start, end, partitions)


def _quiet_logger() -> logging.Logger:
    """librdkafka's own log lines (connection refused, retries...) go here, not to stderr: the failure
    is reported once, as the replay error."""
    log = logging.getLogger("inferflow.replay.kafka")
    if not log.handlers:
        log.addHandler(logging.NullHandler())
    return log


def read_values(source: KafkaSource, timeout: float) -> Iterator[bytes]:
    """The message values of the range, partition by partition in offset order; every broker round trip
    and the whole read bounded by ``timeout`` seconds."""
    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

    errors: list[str] = []
    consumer = Consumer(
        {
            "bootstrap.servers": source.bootstrap,
            "group.id": f"inferflow-replay-{os.getpid()}-{time.monotonic_ns()}",  # assign(): never joins
            "enable.auto.commit": False,
            "auto.offset.reset": "error",
            "enable.partition.eof": False,
            "allow.auto.create.topics": False,
            "logger": _quiet_logger(),
            "error_cb": lambda err: errors.append(str(err.str())),
        }
    )
    deadline = time.monotonic() + timeout

    def left() -> float:
        return max(0.1, deadline - time.monotonic())

    def unreachable(exc: Exception) -> KafkaSourceError:
        err: Any = exc.args[0] if exc.args else exc
        why = errors[-1] if errors else (err.str() if hasattr(err, "str") else str(exc))
        return KafkaSourceError(f"{source.url}: cannot reach the broker within {timeout:g} s ({why})")

    try:
        try:
            meta = consumer.list_topics(source.topic, timeout=left())
        except KafkaException as exc:
            raise unreachable(exc) from None
        topic = meta.topics.get(source.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            why = f" ({topic.error.str()})" if topic is not None and topic.error is not None else ""
            raise KafkaSourceError(f"{source.url}: topic {source.topic!r} does not exist{why}")
        partitions = sorted(topic.partitions)
        if source.partitions is not None:
            unknown = sorted(set(source.partitions) - set(partitions))
            if unknown:
                raise KafkaSourceError(
                    f"{source.url}: topic {source.topic!r} has no partition {unknown} (it has {partitions})"
                )
            partitions = sorted(set(source.partitions))
        ranges: dict[int, tuple[int, int]] = {}
        watermarks: list[str] = []
        for p in partitions:
            try:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(source.topic, p), timeout=left(), cached=False
                )
            except KafkaException as exc:
                raise unreachable(exc) from None
            start = low if source.start is None else max(source.start, low)
            end = high if source.end is None else min(source.end, high)
            if start < end:
                ranges[p] = (start, end)
            watermarks.append(f"{p}: [{low}, {high})")
        if not ranges:
            raise KafkaSourceError(
                f"{source.url}: the range holds no message (partition: offsets held: {', '.join(watermarks)})"
            )
        for p, (start, end) in ranges.items():  # one partition at a time: offsets in order, bounded
            consumer.assign([TopicPartition(source.topic, p, start)])
            next_offset = start
            while next_offset < end:
                if time.monotonic() >= deadline:
                    raise KafkaSourceError(
                        f"{source.url}: timed out after {timeout:g} s reading partition {p} "
                        f"(at offset {next_offset} of [{start}, {end}))"
                    )
                msg: Any = consumer.poll(min(0.5, left()))
                if msg is None:
                    continue
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaSourceError(f"{source.url}: partition {p}: {err.str()}")
                if msg.offset() < next_offset:
                    continue
                next_offset = msg.offset() + 1  # compacted or transactional gaps are skipped over
                if msg.offset() < end and msg.value() is not None:
                    yield msg.value()
            consumer.unassign()
    finally:
        consumer.close()


def read_kafka(url: str, schemas: Schemas, timeout: float) -> Iterator[dict[str, Any]]:
    """The decoded records (``inferflow logs read`` lines) of the range, regrouped so that the records of
    one logged request (and event) are adjacent, in the order each request was first seen."""
    source = parse_source(url)
    groups: dict[tuple[str, str, int, str], list[dict[str, Any]]] = {}
    for value in read_values(source, timeout):
        for line in decode_record(value, schemas):
            key = (line["model_config_id"], line["tracking_id"], line["created_at"], line["event_name"])
            groups.setdefault(key, []).append(line)
    for lines in groups.values():
        yield from lines
