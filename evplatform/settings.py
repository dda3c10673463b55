"""Django settings, all from environment variables (see README "Configuration")."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.utils.translation import gettext_lazy as _

from .env import (
    PRODUCTION,
    env_bool,
    env_int,
    env_list,
    env_secret,
    env_str,
    production_refusals,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# Development values, refused in production (see the end of this file).
DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me-0123456789"
DEV_FIELD_ENCRYPTION_KEY = "ZGV2LW9ubHktZmllbGQta2V5LWRvLW5vdC11c2UtISE="

# Off unless asked for: people opening `make run` see the product's own error pages.
DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_secret("DJANGO_SECRET_KEY", DEV_SECRET_KEY)
# Fernet key (urlsafe base64, 32 bytes) for secrets stored in the database.
FIELD_ENCRYPTION_KEY = env_secret("FIELD_ENCRYPTION_KEY", DEV_FIELD_ENCRYPTION_KEY)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["*"] if not PRODUCTION else [])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# Hosts: the platform's own (super admin) and the shared API host for mini-programs.
PUBLIC_HOST = env_str("EVP_PUBLIC_HOST", "localhost")
TENANT_HOST_SUFFIX = env_str("EVP_TENANT_HOST_SUFFIX", "localhost")
SITE_PORT = env_int("EVP_PORT", 8000)
SITE_SCHEME = env_str("EVP_SCHEME", "http")

SHARED_APPS = [
    "django_tenants",
    "tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.admin",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI / ReDoc served from our own static files
    "import_export",
    "channels",
    "axes",
    "analytics.platform",  # cross-operator daily rollups (public schema)
    "settlement.platform",  # the platform's commission statements (public schema)
    # Model-change log (django-auditlog): in both lists, as auth is, since staff users live
    # in both; an operator's log is in its own schema.
    "auditlog",
]
# The demo operator and its seeding commands (seed_demo, demo_session): development tooling,
# installed unless EVP_DEMO=0 (default: on outside production, off in production).
DEMO = env_bool("EVP_DEMO", not PRODUCTION)
if DEMO:
    SHARED_APPS.append("demo")
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.admin",
    "django.contrib.sessions",
    "django.contrib.messages",
    "axes",  # login lockouts per schema: an operator's are its own
    "auditlog",  # model changes per schema (operations.model_changes.AUDITED)
    "accounts",
    "stations",
    "billing",
    "settlement",
    "charging",
    "marketing",
    "protocols",
    "protocols.ykc",
    "analytics",
    "operations",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Operator"
TENANT_DOMAIN_MODEL = "tenants.Domain"
# New operators are cloned from this schema instead of replaying every migration.
TENANT_BASE_SCHEMA = "tenant_template"
TENANT_CREATION_FAKES_MIGRATIONS = True
TENANT_LIMIT_SET_CALLS = True
# migrate_schemas skips operator schemas already at the head, then runs the rest with
# django-tenants' executor (`--executor multiprocessing` for parallel); see tenants/migration_executor.py
GET_EXECUTOR_FUNCTION = "tenants.migration_executor.get_executor"
TENANT_MULTIPROCESSING_MAX_PROCESSES = env_int("TENANT_MIGRATE_PROCESSES", 2)
# The driver API's operator (by X-Tenant, X-WX-AppId or the token's schema) is kept per
# process this many seconds (0: looked up on every request): a suspension made elsewhere
# reaches every web process within it. See tenants.selectors.operator_for_api.
TENANT_ROUTE_CACHE_SECONDS = env_int("TENANT_ROUTE_CACHE_SECONDS", 5)
PUBLIC_SCHEMA_URLCONF = "evplatform.urls_public"
ROOT_URLCONF = "evplatform.urls"

MIDDLEWARE = [
    "evplatform.middleware.reject_nul_middleware",
    # Static files next: they are the same on every host, before any tenant routing.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "evplatform.middleware.TenantRoutingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication: the model changes of a request are logged with its staff user.
    "evplatform.middleware.AuditlogMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a refused login into the lockout page
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "evplatform.wsgi.application"
ASGI_APPLICATION = "evplatform.asgi.application"
# HTTP under ASGI (evplatform/asgi.py): "wsgi" (Django's WSGI handler in a pool of
# ASGI_HTTP_THREADS threads, through a2wsgi), "sync_chain" (Django's ASGI handler, the
# middleware and view as one sync call) or "stock" (a thread hop per middleware).
ASGI_HTTP = env_str("ASGI_HTTP", "wsgi")
# Two: the requests of one process then run nearly first come, first served, and a short
# request's latency stays near its queue's; with ten, ten requests shared the GIL at once and
# the driver's list and map had a p95 twice their median (README, *Station search*). A slow
# request holds one of the two: serve more at once with more `web` processes.
ASGI_HTTP_THREADS = env_int("ASGI_HTTP_THREADS", 2)

# DB_POOL=1 (the `web` process): a psycopg 3 connection pool per process (Django's native
# pool); connections go back to it after each request, so ASGI's thread per request no
# longer connects per request. Needs psycopg 3; CONN_MAX_AGE is then 0 by definition.
DB_POOL = env_bool("DB_POOL", False)
PREPARE_ONLY_WHEN_ASKED = 2**31 - 1  # executions before psycopg would prepare on its own
DATABASES = {
    "default": {
        "ENGINE": "django_tenants.postgresql_backend",
        "NAME": env_str("DB_NAME", "evplatform"),
        "USER": env_str("DB_USER", "postgres"),
        "PASSWORD": env_secret("DB_PASSWORD", ""),
        "HOST": env_str("DB_HOST", "127.0.0.1"),
        "PORT": env_int("DB_PORT", 5432),
        "CONN_MAX_AGE": 0 if DB_POOL else env_int("DB_CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            # psycopg prepares a statement only when asked (evplatform.prepared, one hot
            # statement per order); never on its own after N runs (Django's default of None
            # would refuse even the asked ones).
            "prepare_threshold": PREPARE_ONLY_WHEN_ASKED,
            **({
                "pool": {
                    "min_size": env_int("DB_POOL_MIN", 2),
                    "max_size": env_int("DB_POOL_MAX", 16),
                    "timeout": env_int("DB_POOL_TIMEOUT_S", 10),
                }
            } if DB_POOL else {}),
        },
        "TEST": {"NAME": env_str("DB_TEST_NAME", "test_" + env_str("DB_NAME", "evplatform"))},
    }
}
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
# Every raw Redis key the platform writes starts with this prefix, then the tenant.
REDIS_KEY_PREFIX = env_str("REDIS_KEY_PREFIX", "evp")

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX,
        # Cache keys carry the tenant's schema (django-tenants' key function).
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
    }
}

# Redis timeouts (s). redis-py times out every read after 5 s unless told otherwise, so
# each blocking read gets a socket timeout longer than what it blocks for: the channel
# layer waits up to 5 s per BZPOPMIN (channels-redis), the command bus up to
# REDIS_BLOCKING_READ_MAX_S for a gateway's answer.
REDIS_SOCKET_TIMEOUT_S = env_int("REDIS_SOCKET_TIMEOUT_S", 5)
REDIS_BLOCKING_READ_MAX_S = 60
# Stations the driver's list/map snapshots (stations/snapshot.py) hold per web process, over
# all operators, least recently used dropped first (~1–2 KB each with their connectors).
STATION_SNAPSHOT_MAX_STATIONS = env_int("STATION_SNAPSHOT_MAX_STATIONS", 100_000)
# ... and rebuilt after this long whatever its generation says (s).
STATION_SNAPSHOT_MAX_AGE_S = env_int("STATION_SNAPSHOT_MAX_AGE_S", 300)
# ... and, when only the database statuses it copies moved, at most this often (ms).
STATION_SNAPSHOT_STATUS_REFRESH_MS = env_int("STATION_SNAPSHOT_STATUS_REFRESH_MS", 1000)
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_timeout": 5 + 2 * REDIS_SOCKET_TIMEOUT_S,
                    "socket_connect_timeout": REDIS_SOCKET_TIMEOUT_S,
                    "socket_keepalive": True,
                }
            ],
            "prefix": f"{REDIS_KEY_PREFIX}:asgi",
        },
    }
}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TENANT_CACHE_SECONDS = 30
# A task taken by a worker that died comes back after the visibility timeout. It must be
# longer than any countdown or retry delay (Redis redelivers a waiting ETA task after it,
# twice), and redelivery must be harmless: commands to piles carry a deadline of a minute
# and are checked against their order just before sending (charging.services), so a stop
# redelivered late is dropped rather than ending another driver's session.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "global_keyprefix": f"{REDIS_KEY_PREFIX}:celery:",
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT_S", 900),
}
# Periodic per-operator jobs: "evplatform.fan_out" queues the named task in every active
# operator's schema (evplatform/tenancy.py).
# How often the big screen's server side rebuilds its state and pushes what changed.
BIGSCREEN_TICK_MS = env_int("BIGSCREEN_TICK_MS", 1000)
# T/CEC 102 interconnection: where partners call us on an operator's host, and how pushes
# to partners are retried (seconds after each failed attempt; then the push is dead).
CEC_PATH_PREFIX = env_str("CEC_PATH_PREFIX", "/evcs/v1/")
CEC_RETRY_DELAYS_S = tuple(
    int(x) for x in env_str("CEC_RETRY_DELAYS_S", "15,60,300,1800,3600").split(",") if x.strip()
)
CEC_HTTP_TIMEOUT_S = env_int("CEC_HTTP_TIMEOUT_S", 10)
# check_charge_orders goes out for the previous day between these China-time hours
# ([first, last), "0-3": 00:00–03:00, what city platforms' profiles expect); the beat job
# looks every CEC_CHECK_ORDERS_SECONDS and sends once per day inside the window.
CEC_CHECK_ORDERS_HOURS = tuple(int(h) for h in env_str("CEC_CHECK_ORDERS_HOURS", "0-3").split("-", 1))
CELERY_BEAT_SCHEDULE: dict = {
    # Today's statistics: faults, offline time, members and wallets (orders update theirs
    # as they settle).
    "analytics-today": {"task": "evplatform.fan_out", "schedule": env_int("STATS_REFRESH_SECONDS", 300),
                        "args": ["analytics.today_refresh"]},
    "stations-piles-offline": {
        "task": "evplatform.fan_out",
        "schedule": env_int("PILES_OFFLINE_CHECK_S", 15),
        "args": ["stations.piles_check_offline"],
    },
    # Frame log and session messages past their days; meter samples of no order likewise.
    "protocols-prune": {
        "task": "evplatform.fan_out",
        "schedule": env_int("PROTOCOLS_PRUNE_SECONDS", 3600),
        "args": ["protocols.prune"],
    },
    "charging-samples-prune": {
        "task": "evplatform.fan_out",
        "schedule": env_int("PROTOCOLS_PRUNE_SECONDS", 3600),
        "args": ["charging.samples_prune"],
    },
    # Station prices follow the clock and piles get a new billing model when a version takes
    # effect, a season or special date starts, or the station's local day changes.
    "billing-tariffs-refresh": {
        "task": "evplatform.fan_out",
        "schedule": env_int("TARIFFS_REFRESH_SECONDS", 300),
        "args": ["billing.tariffs_refresh"],
    },
    # Lost payment/refund notifications, unclear transfers, expired unpaid payments.
    "billing-reconcile": {
        "task": "evplatform.fan_out",
        "schedule": env_int("PAYMENTS_RECONCILE_SECONDS", 60),
        "args": ["billing.reconcile_tenant"],
    },
    # Yesterday's WeChat Pay trade bill matched line by line against payments and refunds
    # (a day is checked once it downloads; WeChat publishes it after 10:00 the next day).
    "billing-bills-reconcile": {
        "task": "evplatform.fan_out",
        "schedule": env_int("BILLS_RECONCILE_SECONDS", 3600),
        "args": ["billing.bills_reconcile"],
    },
    # Owners' settlement statements, each period T+N after it ends (per owner contract).
    "settlement-statements": {
        "task": "evplatform.fan_out",
        "schedule": env_int("STATEMENTS_BUILD_SECONDS", 3600),
        "args": ["settlement.statements_build_due"],
    },
    # Invoices queued through a provider outage, unclear or unanswered; reversals owed.
    "billing-invoices-reconcile": {
        "task": "evplatform.fan_out",
        "schedule": env_int("INVOICES_RECONCILE_SECONDS", 60),
        "args": ["billing.invoices_reconcile"],
    },
    # The operators' mini-programs' tokens through the third-party platform (2 h lifetime).
    "tenants-authorizer-tokens": {
        "task": "tenants.authorizer_tokens_refresh",
        "schedule": env_int("AUTHORIZER_TOKENS_REFRESH_S", 600),
    },
    # The station queue's offers past their hold window pass to the next driver; stations
    # with a power limit are re-planned when a pile did not take its cap.
    "charging-scheduling": {
        "task": "evplatform.fan_out",
        "schedule": env_int("SCHEDULING_TICK_SECONDS", 30),
        "args": ["charging.scheduling_tick"],
    },
    # Alarm rules that need the clock: piles offline too long, connectors stuck in finishing.
    "operations-alarms-evaluate": {
        "task": "evplatform.fan_out",
        "schedule": env_int("ALARMS_EVALUATE_SECONDS", 60),
        "args": ["operations.alarms_evaluate"],
    },
    # Alarm rule: a station whose revenue dropped to zero (an hourly look is enough).
    "operations-revenue-watch": {
        "task": "evplatform.fan_out",
        "schedule": env_int("REVENUE_WATCH_SECONDS", 3600),
        "args": ["operations.revenue_watch"],
    },
    # Orders stuck between states are finished (or flagged) exactly once.
    "charging-orders-reconcile": {
        "task": "evplatform.fan_out",
        "schedule": env_int("ORDERS_RECONCILE_SECONDS", 60),
        "args": ["charging.orders_reconcile"],
    },
    # Marketing: points past their expiry; SMS delivery receipts pulled from the provider.
    "marketing-points-expire": {
        "task": "evplatform.fan_out",
        "schedule": env_int("POINTS_EXPIRE_SECONDS", 3600),
        "args": ["marketing.points_expire"],
    },
    "marketing-sms-receipts": {
        "task": "evplatform.fan_out",
        "schedule": env_int("SMS_RECEIPTS_SECONDS", 60),
        "args": ["marketing.sms_pull_receipts"],
    },
    # Interconnection (T/CEC): charge-status pushes at partners' cadence and pushes due
    # (retries); the daily order reconciliation (check_charge_orders) with partners.
    "cec-pushes-due": {
        "task": "evplatform.fan_out",
        "schedule": env_int("CEC_PUSHES_DUE_SECONDS", 15),
        "args": ["cec.pushes_due"],
    },
    "cec-partner-stations": {
        "task": "evplatform.fan_out",
        "schedule": env_int("CEC_PARTNER_STATIONS_SECONDS", 3600),
        "args": ["cec.partner_stations_pull"],
    },
    "cec-check-orders": {
        "task": "evplatform.fan_out",
        "schedule": env_int("CEC_CHECK_ORDERS_SECONDS", 900),
        "args": ["cec.check_orders"],
    },
}

# Limited stations are re-planned at least this often (a lost event, a pile back online).
POWER_REPLAN_SECONDS = env_int("POWER_REPLAN_SECONDS", 300)

# Reverse proxies in front of the web process that append to X-Forwarded-For; the client's
# address is the one the outermost of them saw (evplatform/net.py). 0: trust no header.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

# Admin import/export: exporting needs <app>.export_<model> (made for every exporting admin,
# evplatform/admin_export.py), importing needs the add permission.
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "export"
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "add"

# The model-change log (django-auditlog, operations' 模型变更记录): what an operator's staff
# change in the models of operations.model_changes.AUDITED — by whom (the request's user,
# evplatform.middleware.AuditlogMiddleware), when, from where, before and after. Changes
# are compared as Python values and stored as JSON, so Decimal("30") saved over 30.00 is no
# change; masked fields (secrets) say only that they changed.
AUDITLOG_STORE_JSON_CHANGES = True
AUDITLOG_DISABLE_ON_RAW_SAVE = True  # fixtures and imports of raw rows
AUDITLOG_MASK_CALLABLE = "operations.model_changes.mask"

# Admin logins (operator hosts and the super admin), django-axes: after AXES_FAILURE_LIMIT
# failures a username is locked out from every address, and an address for every username,
# for AXES_COOLOFF_MINUTES; a successful login before that resets the count.
AUTHENTICATION_BACKENDS = [
    "evplatform.lockout.LoginLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ADMIN = False  # accounts/admin.py shows lockouts and failures in Chinese
AXES_CLIENT_IP_CALLABLE = "evplatform.net.client_ip"
AXES_LOCKOUT_CALLABLE = "evplatform.lockout.lockout_response"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True  # stored in UTC; shown in the station's or operator's zone

# Static files are served by the app itself (whitenoise) on every host, from STATIC_ROOT
# after `manage.py collectstatic` (part of `make setup`), hashed and compressed; in
# development whitenoise also finds them in the apps, so an edit shows without collecting.
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]  # the project's own (admin styles)
STATIC_ROOT = Path(env_str("EVP_STATIC_ROOT", str(BASE_DIR / "var" / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG
MEDIA_URL = "media/"
MEDIA_ROOT = BASE_DIR / "var" / "media"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.MemberTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.authentication.IsMember"],
    # DRF's JSON and content negotiation, cheaper (evplatform/api/renderers.py).
    "DEFAULT_RENDERER_CLASSES": ["evplatform.api.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "evplatform.api.renderers.ContentNegotiation",
    "DEFAULT_PARSER_CLASSES": ["evplatform.api.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "evplatform.api.pagination.Pagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "evplatform.api.errors.exception_handler",
    # Per client address (evplatform/net.py); "login" is WeChat sign-in, "token_refresh"
    # the refresh of a driver's tokens.
    "DEFAULT_THROTTLE_RATES": {"login": "30/min", "token_refresh": "60/min"},
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "充电运营平台 · 车主接口 — EV charging platform, driver API",
    "DESCRIPTION": "See evplatform/api/schema.py",  # replaced there (bilingual)
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # No CDN: the docs' scripts and styles come from drf-spectacular-sidecar's static files.
    "SWAGGER_UI_DIST": "SIDECAR",
    # Choice sets that share a field name get names of their own in the schema.
    "ENUM_NAME_OVERRIDES": {
        "InvoiceTitleKindEnum": "billing.invoices.models.TitleKind",
        "InvoiceKindEnum": "billing.invoices.models.Invoice.Kind",
        "TariffKindEnum": "billing.tariffs.models.Tariff.Kind",
        "QueueKindEnum": "charging.models.QueueEntry.Kind",
    },
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "evplatform.api.schema.postprocess",
    ],
}

# YKC v1.6 pile gateway (`manage.py ykc_gateway`); times in seconds.
YKC_GATEWAY_PORT = env_int("YKC_PORT", 8768)  # where piles connect (TCP)
OCPP_GATEWAY_PORT = env_int("OCPP_PORT", 8769)  # OCPP 1.6J charge points (WebSocket)
YKC_MAX_FRAME_SIZE = env_int("YKC_MAX_FRAME_SIZE", 204)  # the PDF caps L at 200
YKC_LOGIN_TIMEOUT_S = env_int("YKC_LOGIN_TIMEOUT_S", 30)  # connect → successful 0x01
YKC_IDLE_HEARTBEATS = env_int("YKC_IDLE_HEARTBEATS", 3)  # silent for 3 heartbeat intervals
YKC_SAMPLE_INTERVAL_S = env_int("YKC_SAMPLE_INTERVAL_S", 60)  # 0x13 → MeterSample per connector
YKC_FRAME_LOG_DAYS = env_int("YKC_FRAME_LOG_DAYS", 7)
YKC_SAMPLE_DAYS = env_int("YKC_SAMPLE_DAYS", 90)  # session messages (0x15 … 0x25)
# Meter samples that belong to no order (idle connectors, status changes); an order's own
# samples stay with it.
METER_SAMPLE_DAYS = env_int("METER_SAMPLE_DAYS", YKC_SAMPLE_DAYS)
# Heartbeats (0x03 and its 0x04) in the frame log: at most one per pile link every N seconds
# (the first after login always; 0: every one; -1: none). Other frames: all of them.
YKC_FRAME_LOG_HEARTBEAT_SECONDS = env_int("YKC_FRAME_LOG_HEARTBEAT_SECONDS", 60)
YKC_DB_THREADS = env_int("YKC_DB_THREADS", 8)  # thread pool for PostgreSQL work
YKC_COMMAND_TIMEOUT_S = env_int("YKC_COMMAND_TIMEOUT_S", 10)
# YKC 0x94 remote update downloads over FTP: ftp://user:password@host:port/ of an FTP server
# whose root is MEDIA_ROOT (firmware images are under firmware/). Empty: YKC piles cannot
# be sent firmware (OCPP piles download over HTTP from /firmware/{token}).
FIRMWARE_FTP_URL = env_str("FIRMWARE_FTP_URL", "")
# Prometheus metrics (unauthenticated): loopback unless a scraper elsewhere needs them.
YKC_METRICS_HOST = env_str("YKC_METRICS_HOST", "127.0.0.1")

# Driver tokens (JWT, HS256 with SECRET_KEY); lifetimes in seconds.
MEMBER_ACCESS_TOKEN_TTL = env_int("MEMBER_ACCESS_TOKEN_TTL", 2 * 3600)
MEMBER_REFRESH_TOKEN_TTL = env_int("MEMBER_REFRESH_TOKEN_TTL", 30 * 86400)
# An order's WebSocket re-checks the member's sign-in before a push at most this often.
WS_MEMBER_RECHECK_S = env_int("WS_MEMBER_RECHECK_S", 30)
# Customer-service chat: a staff message the driver has not read this many seconds later is
# told to them by WeChat subscribe message (operations/chat.py).
CHAT_OFFLINE_NOTIFY_S = env_int("CHAT_OFFLINE_NOTIFY_S", 60)

# WeChat endpoints: in production the real ones; in development the local fake servers
# that `make run` starts (fakes/), unless set.
WECHAT_API_BASE_URL = env_str(
    "WECHAT_API_BASE_URL", "https://api.weixin.qq.com/" if PRODUCTION else "http://127.0.0.1:8801/"
)
WECHATPAY_API_BASE_URL = env_str(
    "WECHATPAY_API_BASE_URL",
    "https://api.mch.weixin.qq.com" if PRODUCTION else "http://127.0.0.1:8802",
)
WECHAT_HTTP_TIMEOUT = env_int("WECHAT_HTTP_TIMEOUT", 10)

# The drivers' H5 app (`make miniprogram` builds it) served at /m/ on each operator's host.
MINIPROGRAM_H5_DIR = Path(env_str("MINIPROGRAM_H5_DIR", str(BASE_DIR / "miniprogram/dist/build/h5")))
# Development only: the H5 app logs in through the fake WeChat (codes demo-<name>#…) and
# "pays" in the fake WeChat Pay at WECHATPAY_API_BASE_URL. Never on in production.
MINIPROGRAM_H5_DEV_TOOLS = env_bool("MINIPROGRAM_H5_DEV_TOOLS", not PRODUCTION) and not PRODUCTION

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"tenant": {"()": "django_tenants.log.TenantContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s [%(schema_name)s] %(name)s: %(message)s"}
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["tenant"], "formatter": "plain"}
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "httpx": {"level": "WARNING"}},
}

# Production: refuse development values, then HTTPS only. TLS ends at the proxy in front,
# which must set X-Forwarded-Proto (and, for client addresses, X-Forwarded-For: see
# TRUSTED_PROXY_COUNT).
production_refusals(
    {
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "FIELD_ENCRYPTION_KEY": FIELD_ENCRYPTION_KEY,
        "DEBUG": DEBUG,
        "WECHAT_API_BASE_URL": WECHAT_API_BASE_URL,
        "WECHATPAY_API_BASE_URL": WECHATPAY_API_BASE_URL,
    },
    {"DJANGO_SECRET_KEY": DEV_SECRET_KEY, "FIELD_ENCRYPTION_KEY": DEV_FIELD_ENCRYPTION_KEY},
)
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # the load balancer's probe speaks plain HTTP
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 86400)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
