"""hpcgate settings, read from the environment.

Defaults suit a laptop: SQLite and a file-system Celery broker under ``var/``, so a fresh clone runs
with no server. With ``DEBUG`` off the process refuses to start without a secret key and allowed
hosts.
"""

import base64
import hashlib
import os
import sys
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from core.federation import login_policy_check, oidc_apps_from_env
from core.proxies import trusted_proxies_parse

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
VAR_DIR = Path(env.str("HPCGATE_VAR_DIR", default=str(BASE_DIR / "var")))

SECRET_KEY = env.str("SECRET_KEY", default="")
# `manage.py` run from a checkout marks itself: with neither DEBUG nor a secret key given, a
# command there is development work, as under `make run`. gunicorn and Celery never get the mark,
# and a deployment that sets SECRET_KEY (or DEBUG=0) keeps the production settings everywhere.
FROM_CHECKOUT = env.bool("HPCGATE_FROM_CHECKOUT", default=False)
DEBUG = env.bool("DEBUG", default=FROM_CHECKOUT and not SECRET_KEY)
# Under pytest the suite gets fast hashing, eager tasks and development keys.
TESTING = env.bool("HPCGATE_TESTING", default="pytest" in sys.modules)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
if DEBUG or TESTING:
    SECRET_KEY = SECRET_KEY or "insecure-development-key-never-use-in-production"
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["127.0.0.1", "localhost", "[::1]", "testserver"]
else:
    if len(SECRET_KEY) < 50:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set to a random value of at least 50 characters when DEBUG is off "
            "(for development, run with DEBUG=1 or through manage.py in a checkout)."
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "ALLOWED_HOSTS must list the host names this site is served under when DEBUG is off."
        )

# Where people reach the site: links in the e-mails workers send, outside any request.
if DEBUG or TESTING:
    _SITE_URL_DEFAULT = "http://127.0.0.1:8000"
else:
    _SITE_HOST = next((host for host in ALLOWED_HOSTS if host != "*" and host[0] != "."), "")
    _SITE_URL_DEFAULT = f"https://{_SITE_HOST}" if _SITE_HOST else ""
SITE_URL = (env.str("SITE_URL", default="") or _SITE_URL_DEFAULT).rstrip("/")
if not SITE_URL:
    raise ImproperlyConfigured(
        "SITE_URL must be set (e.g. https://hpcgate.example.eu) when ALLOWED_HOSTS has only "
        "wildcard entries: e-mails link to it."
    )

INSTALLED_APPS = [
    "core.apps.HpcgateAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.sites",
    "csp",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_celery_beat",
    "simple_history",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "core",
    "organisations",
    "systems",
    "allocations",
    "usage",
    "compliance",
    "vetting",
    "demo",
]

MIDDLEWARE = [
    "core.middleware.HealthCheckMiddleware",
    "core.middleware.RequestLimitsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "core.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "core.login_policy.login_options",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'hpcgate.sqlite3'}"),
}
DATABASES["default"].setdefault("ATOMIC_REQUESTS", False)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the Celery worker writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE", "timeout": 20}
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if TESTING and DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that a real Celery worker in the tests sees the same database.
    # One file per test process, so that parallel runs never share a database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# allauth's backend (e-mail or user name), refusing passwords where the login policy below
# sends people to an OpenID Connect provider.
AUTHENTICATION_BACKENDS = ["core.login_policy.PasswordPolicyBackend"]

LANGUAGE_CODE = "en"
# The site's time zone: times on pages, in the admin and in e-mails are shown in it, and "today"
# (allocation start and end dates, reminders) is its calendar day.
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
FORMAT_MODULE_PATH = ["config.formats"]
USE_I18N = True
USE_TZ = True
SITE_ID = 1

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=64 * 1024 * 1024)
# Bodies larger than these are refused (413) before they are read (core.middleware): pages and the
# API take forms and annexes of at most 10 MB; accounting pushed to the usage import is larger.
REQUEST_BODY_MAX_BYTES = env.int("REQUEST_BODY_MAX_BYTES", default=20 * 1024 * 1024)
REQUEST_BODY_LIMITS = {
    "/api/v1/usage/imports/": env.int("USAGE_IMPORT_MAX_BYTES", default=512 * 1024 * 1024),
}

LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"

# Accounts: sign-up by e-mail and password, verified e-mail required.
ACCOUNT_LOGIN_METHODS = {"email", "username"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="mandatory")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = True
ACCOUNT_ADAPTER = "core.login_policy.AccountAdapter"
# Failed passwords, on the site's log-in, the admin's and the API token endpoint alike: per client
# address, and per account from one address (core.login_policy.AccountAdapter), so a guesser
# never locks the account's owner out.
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": env.str("LOGIN_FAILED_LIMITS", default="10/m/ip,5/5m/key"),
}

# The proxies in front of the app (README: a TLS-terminating proxy): a number of proxies, or their
# addresses and networks. Every limit counts per client address read through them
# (core.throttles.client_address); with none, per connecting address.
TRUSTED_PROXIES = trusted_proxies_parse(env.str("TRUSTED_PROXIES", default=""))

# Personal API tokens (core.models.ApiToken): valid this many days unless the owner picks fewer.
API_TOKEN_DAYS = env.int("API_TOKEN_DAYS", default=90)
API_TOKEN_MAX_DAYS = env.int("API_TOKEN_MAX_DAYS", default=365)
if not 1 <= API_TOKEN_DAYS <= API_TOKEN_MAX_DAYS:
    raise ImproperlyConfigured("API_TOKEN_DAYS must be between 1 and API_TOKEN_MAX_DAYS.")
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[hpcgate] "

# Federated log-in through OpenID Connect providers (core/federation.py, README "Federated
# log-in"). LOCAL_ACCOUNTS off: no local sign-up, and applicants log in only through a provider.
# OIDC_REQUIRED_FOR_STAFF on: staff never log in with a local password.
LOCAL_ACCOUNTS = env.bool("LOCAL_ACCOUNTS", default=True)
OIDC_REQUIRED_FOR_STAFF = env.bool("OIDC_REQUIRED_FOR_STAFF", default=False)
SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": oidc_apps_from_env(os.environ)}}
login_policy_check(
    apps=SOCIALACCOUNT_PROVIDERS["openid_connect"]["APPS"],
    local_accounts=LOCAL_ACCOUNTS,
    staff_oidc_only=OIDC_REQUIRED_FOR_STAFF,
)
ACCOUNT_SIGNUP_ENABLED = LOCAL_ACCOUNTS
SOCIALACCOUNT_ADAPTER = "core.identity.SocialAccountAdapter"
# A provider's verified address logs into the account that has verified the same address, and
# links the provider to it; the provider's subject (sub) is what the link keys on afterwards.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_STORE_TOKENS = False

EMAIL_CONFIG = env.email_url(
    "EMAIL_URL", default="consolemail://" if DEBUG or TESTING else "smtp://localhost:25"
)
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="hpcgate <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
elif TESTING:
    # Per process: test runs side by side must not share throttling counters.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# Celery. Without a broker URL the file-system transport under var/ needs no server.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost/")
BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "messages"),
        "data_folder_out": str(BROKER_DIR / "messages"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    CELERY_BROKER_CONFIGURED = False
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 3600,
        # a web request that queues work gives up quickly when the broker is away
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
    }
    CELERY_BROKER_CONFIGURED = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=15 * 60)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 60
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=TESTING)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Every periodic schedule lives here; django-celery-beat mirrors it into the database so operators
# can pause or retime a schedule in the admin.
CELERY_BEAT_SCHEDULE = {
    "allocations: activate and expire by date (daily)": {
        "task": "allocations.tasks.allocation_dates_apply",
        "schedule": 60 * 60 * 24,
    },
    "allocations: remind owners before the end date (daily)": {
        "task": "allocations.tasks.allocation_expiry_reminders",
        "schedule": 60 * 60 * 24,
    },
    "allocations: re-queue e-mails a lost message left behind (every 15 minutes)": {
        "task": "allocations.tasks.allocation_mail_sweep",
        "schedule": 15 * 60,
    },
    "compliance: check thresholds (hourly)": {
        "task": "compliance.tasks.thresholds_check",
        "schedule": 60 * 60,
    },
    "usage: import the spool (every 5 minutes)": {
        "task": "usage.tasks.usage_spool_import",
        "schedule": 5 * 60,
    },
    "vetting: re-queue screenings a lost message left behind (every 5 minutes)": {
        "task": "vetting.tasks.screening_sweep",
        "schedule": 5 * 60,
    },
    "vetting: re-queue e-mails a lost message left behind (every 15 minutes)": {
        "task": "vetting.tasks.mail_sweep",
        "schedule": 15 * 60,
    },
}

# Confidential reports (/report/) are stored encrypted with this Fernet key: 32 random bytes,
# URL-safe base64. Several keys, separated by commas, rotate: the first encrypts, all decrypt.
# Without one in production the reporting channel stays closed (and `check --deploy` says so);
# development and tests derive one from SECRET_KEY.
REPORT_ENCRYPTION_KEY = env.str("REPORT_ENCRYPTION_KEY", default="")
if not REPORT_ENCRYPTION_KEY and (DEBUG or TESTING):
    REPORT_ENCRYPTION_KEY = base64.urlsafe_b64encode(
        hashlib.sha256(f"hpcgate report encryption:{SECRET_KEY}".encode()).digest()
    ).decode()

USAGE_SPOOL_DIR = Path(env.str("USAGE_SPOOL_DIR", default=str(VAR_DIR / "spool")))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.api_auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON, as the schema says; the operations that take uploads name their own parsers.
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "core.schema.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "anon": "120/minute",
        "user": "1200/minute",
        # calls of the token endpoint per client address; failed passwords count in the
        # site's own limits (ACCOUNT_RATE_LIMITS above)
        "login_address": "30/minute",
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "hpcgate API",
    "DESCRIPTION": (
        "Calls, applications, allocations, scheduler exports, usage and threshold alerts of an "
        "hpcgate site. Authenticate with `Authorization: Token <key>` or a browser session."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.text_rules_hook",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ExportFormatEnum": "allocations.models.SchedulerExport.Format",
        "AccountingFormatEnum": "usage.api.INPUT_FORMATS",
        "ApplicationStateEnum": "vetting.models.Application.State",
        "AssignmentStateEnum": "vetting.models.ReviewAssignment.State",
        "AllocationStateEnum": "allocations.models.Allocation.State",
        "ChangeRequestStateEnum": "allocations.models.ChangeRequest.State",
        "ChangeRequestKindEnum": "allocations.models.ChangeRequest.Kind",
        "AccessModeKindEnum": "systems.models.AccessMode.Kind",
    },
}

# Content-Security-Policy (django-csp): scripts and styles only from the site's own files, no
# inline script or style anywhere (pages, admin, API docs). core.middleware adds the OpenID
# Connect providers to form-action: the log-in buttons post here and are redirected there.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG and not TESTING:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^livez$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Requests to the confidential reporting pages are never logged, whatever logs them (README,
# "Confidential reports"); gunicorn's access log skips them too (gunicorn.conf.py).
_QUIET = ["reporting_channel"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "reporting_channel": {"()": "compliance.privacy.ReportingChannelFilter"},
        "forbidden_once": {"()": "core.logging.ForbiddenOnce"},
    },
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": _QUIET}
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The development server's request lines, and the loggers that name a request's path
        "django.server": {
            "handlers": ["console"],
            "level": "INFO",
            "propagate": False,
            "filters": ["forbidden_once"],
        },
        "django.request": {"filters": [*_QUIET, "forbidden_once"]},
        "django.security.csrf": {"filters": _QUIET},
    },
}

HPCGATE_ALLOW_DEMO_USERS = DEBUG or TESTING
