"""When to log (go-compatibility §7.1, §6.5): uniform for Predict, a user-day hash for RetrieveModelScore."""

from __future__ import annotations

import random
import time

import mmh3

RETRIEVE_MODEL_SCORE = "retrieve_model_score"
_rng = random.Random()


def user_day_enabled(user_id: str, percentage: int, now: float | None = None) -> bool:
    """``abs(int32(murmur3_32(user_id + DDMMYYYY))) % 100 < percentage``; date in server local time."""
    day = time.strftime("%d%m%Y", time.localtime(now))
    return abs(mmh3.hash(user_id + day, 0, signed=True)) % 100 < percentage


def should_log(api: str, tracking_id: str, user_id: str, percentage: int) -> bool:
    """Go Inferflow's trigger: a tracking id, and the API's sampling rule at ``logging_perc``."""
    if percentage <= 0 or not tracking_id:
        return False
    if api == RETRIEVE_MODEL_SCORE:
        return user_day_enabled(user_id, percentage)
    return percentage >= 100 or _rng.randint(1, 100) <= percentage
