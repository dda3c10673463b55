"""Test settings: the real PostgreSQL and Redis, with keys and databases of their own."""

import os

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/1")
os.environ.setdefault("REDIS_KEY_PREFIX", "evptest")
os.environ["EVP_DEMO"] = "1"  # the demo journey is part of the suite

from .settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast user creation
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"login": "10000/min"}}  # noqa: F405
