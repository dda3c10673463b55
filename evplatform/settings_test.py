"""Test settings: the real PostgreSQL and Redis, with keys and databases of their own."""

import os

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/1")
os.environ.setdefault("REDIS_KEY_PREFIX", "evptest")
os.environ["EVP_DEMO"] = "1"  # the demo journey is part of the suite

from .settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast user creation
REST_FRAMEWORK = {  # noqa: F405
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"login": "10000/min", "token_refresh": "10000/min"},
}

# Tests render templates without a collected manifest: plain storage, and whitenoise finds
# the files in the apps (test_static_files.py collects with the production storage).
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
