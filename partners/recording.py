"""A recording fake adapter for tests: keeps delivered events in memory, can fail on demand.

Instances are rebuilt by the delivery run, so the record lives in a class-level store keyed by
the config's ``"bucket"`` (default ``"default"``): tests read ``RecordingAdapter.events(bucket)``.
Config: ``{"bucket": str, "fail": int}``: the first ``fail`` deliveries of the bucket raise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from partners.base import PERSONAL_FIELDS, DeliveryError, PartnerAdapter, PartnerEvent

__all__ = ["RecordingAdapter"]


class RecordingAdapter(PartnerAdapter):
    name = "recording"
    accepts = PERSONAL_FIELDS

    _delivered: ClassVar[dict[str, list[PartnerEvent]]] = {}
    _failures_left: ClassVar[dict[str, int]] = {}

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.bucket = str(config.get("bucket", "default"))
        self._failures_left.setdefault(self.bucket, int(config.get("fail", 0)))

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        super().validate_config(config)
        fail = config.get("fail", 0)
        if not isinstance(fail, int) or fail < 0:
            raise ValueError("'fail' must be a non-negative integer")

    async def deliver(self, event: PartnerEvent) -> None:
        if self._failures_left.get(self.bucket, 0) > 0:
            self._failures_left[self.bucket] -= 1
            raise DeliveryError("recording adapter told to fail")
        self._delivered.setdefault(self.bucket, []).append(event)

    @classmethod
    def events(cls, bucket: str = "default") -> list[PartnerEvent]:
        return list(cls._delivered.get(bucket, []))

    @classmethod
    def fail_next(cls, count: int, bucket: str = "default") -> None:
        cls._failures_left[bucket] = count

    @classmethod
    def reset(cls, bucket: str | None = None) -> None:
        if bucket is None:
            cls._delivered.clear()
            cls._failures_left.clear()
        else:
            cls._delivered.pop(bucket, None)
            cls._failures_left.pop(bucket, None)
