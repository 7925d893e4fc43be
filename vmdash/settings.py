"""vmdash settings. Every knob is an environment variable; see README.md."""

from __future__ import annotations

from pathlib import Path

import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from vmdash.env import database, envbool, envfloat, envint, envlist, envstr, secret_key

django_stubs_ext.monkeypatch()  # lets ModelAdmin[Host] and friends work at run time

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(envstr("VMDASH_DATA_DIR", str(BASE_DIR / "var"))).resolve()

SECRET_KEY = secret_key(DATA_DIR)
DEBUG = envbool("VMDASH_DEBUG", False)
ALLOWED_HOSTS = envlist("VMDASH_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = envlist("VMDASH_CSRF_TRUSTED_ORIGINS", [])
# Trust X-Forwarded-For/-Proto (audit addresses): only behind a reverse proxy.
VMDASH_PROXY_HEADERS = envbool("VMDASH_PROXY_HEADERS", False)

# Not "daphne": that app only swaps in its own `runserver`, and importing it
# loads Twisted into every manage.py process (0.4 s of the 1.3 s setup).
# `manage.py vmdash_run` serves with Daphne itself.
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_htmx",
    "template_partials",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "vmdash",
    "vmdash.console",
    "vmdash.access",
    "hosts",
    "domains",
    "networks",
    "storage",
    "people",
    "stats",
    "vmdash.hooks",
    "ninja",  # its bundled Swagger UI for /api/docs/ (static files, no CDN)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The Content-Security-Policy header (django-csp, CONTENT_SECURITY_POLICY below).
    "vmdash.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions (it reads the chosen language), before common: the
    # language comes from the switch on /me/ (a cookie) or Accept-Language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "vmdash.middleware.SessionAgeMiddleware",
    # A login that owes its second factor may only reach the code or enrolment page.
    "people.twofactor.SecondFactorMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "vmdash.door.WhoMiddleware",
    "vmdash.middleware.PrivateCacheMiddleware",
    "vmdash.middleware.AuditDeniedMiddleware",
    "vmdash.middleware.VirtErrorMiddleware",
    # Last: it answers locked-out logins (django-axes).
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # First: refuses logins of locked-out accounts before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# --- LDAP login (vmdash/ldap.py, docs/permissions.md) ---------------------------
# With VMDASH_LDAP_URI set, directory accounts log in after axes' lock-out check
# and before local accounts; their LDAP groups become Django groups of that name.
VMDASH_LDAP_URI = envstr("VMDASH_LDAP_URI", "")
if VMDASH_LDAP_URI:
    from vmdash.ldap import ldap_settings

    globals().update(ldap_settings())
    AUTHENTICATION_BACKENDS.insert(1, "vmdash.ldap.Backend")
# --- end of LDAP login ------------------------------------------------------------

ROOT_URLCONF = "vmdash.urls"
ASGI_APPLICATION = "vmdash.asgi.application"

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

# SQLite in the data directory by default (one machine, one web process or a
# few); DATABASE_URL=postgresql://… for a deployment with several web workers
# (docs/deploy.md).
_db_path = envstr("VMDASH_DB_PATH", str(DATA_DIR / "vmdash.sqlite3"))
DATABASES = {
    "default": database(
        "DATABASE_URL",
        {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _db_path,
            # IMMEDIATE: a transaction takes the write lock when it begins, so
            # that a writer waits (timeout) instead of failing at once with
            # "database is locked" when it upgrades from reading while the
            # events service's sinks and jobs write beside requests (ci33).
            "OPTIONS": {
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL;",
                "transaction_mode": "IMMEDIATE",
            },
            # Tests use a file too: an in-memory shared-cache database answers
            # "table is locked" at once when consumers' threads meet, ignoring
            # the timeout.
            "TEST": {"NAME": str(DATA_DIR / "test.sqlite3")},
        },
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The channel layer carries live events to WebSockets (docs/live-events.md):
# in memory within one process by default; with REDIS_URL (redis://host:6379/0)
# through Redis, so that several web processes share one event stream.
REDIS_URL = envstr("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # channels-redis waits 5 s per BZPOPMIN; redis-py 8 gives up reading
            # after 5 s by default, which would end consumers at random.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15}], "capacity": 1000},
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}
    }
# Where the libvirt events service runs: "embedded" (inside the web process,
# the default without Redis), "external" (`manage.py vmdash_events`, which
# `manage.py vmdash_run` starts; the default with REDIS_URL) or "off".
VMDASH_EVENTS = envstr("VMDASH_EVENTS", "external" if REDIS_URL else "embedded")
if VMDASH_EVENTS not in ("embedded", "external", "off"):
    raise ImproperlyConfigured(f"VMDASH_EVENTS={VMDASH_EVENTS!r}: use embedded, external or off")
# Seconds between reconnect attempts of the events service, at most.
VMDASH_EVENTS_MAX_BACKOFF = envint("VMDASH_EVENTS_MAX_BACKOFF", 15)
# Seconds between two bulk reads of each host's counters (graphs, /metrics);
# 0 turns the sampler off. It runs where the events service runs.
VMDASH_STATS_INTERVAL = envint("VMDASH_STATS_INTERVAL", 2)
# The bearer token Prometheus sends to GET /metrics; empty: no /metrics (404).
VMDASH_METRICS_TOKEN = envstr("VMDASH_METRICS_TOKEN", "")
# Seconds between two reads of a list libvirt sends no event for (a pool's
# volumes, the pools table) while a page shows it.
VMDASH_LIST_POLL = envint("VMDASH_LIST_POLL", 10)
# Webhooks (vmdash/hooks, docs/webhooks.md), delivered where the events
# service runs: a failed try waits BASE·2^(n-1) seconds (at most CAP) and a
# delivery is given up after ATTEMPTS tries of TIMEOUT seconds each. The
# sender looks at the queue every POLL seconds (at once for events of its own
# process); pools, grants and failed logins are checked every CHECK_INTERVAL.
VMDASH_HOOK_RETRY_BASE = envfloat("VMDASH_HOOK_RETRY_BASE", 1.0)
VMDASH_HOOK_RETRY_CAP = envfloat("VMDASH_HOOK_RETRY_CAP", 60.0)
VMDASH_HOOK_ATTEMPTS = envint("VMDASH_HOOK_ATTEMPTS", 8)
VMDASH_HOOK_TIMEOUT = envfloat("VMDASH_HOOK_TIMEOUT", 5.0)
VMDASH_HOOK_POLL = envfloat("VMDASH_HOOK_POLL", 1.0)
VMDASH_HOOK_CHECK_INTERVAL = envfloat("VMDASH_HOOK_CHECK_INTERVAL", 60.0)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = envstr("VMDASH_TIME_ZONE", "UTC")
USE_I18N = True
# English is the source; the Russian catalogue is locale/ru/LC_MESSAGES/django.po
# (compiled to .mo by `make venv`, not committed).
LANGUAGES = [("en", "English"), ("ru", "Русский")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Sessions end after VMDASH_SESSION_IDLE seconds without a request, and after
# VMDASH_SESSION_MAX seconds in any case (vmdash.middleware.SessionAgeMiddleware).
VMDASH_SESSION_IDLE = envint("VMDASH_SESSION_IDLE", 8 * 3600)
VMDASH_SESSION_MAX = envint("VMDASH_SESSION_MAX", 7 * 24 * 3600)
SESSION_COOKIE_AGE = VMDASH_SESSION_IDLE
SESSION_SAVE_EVERY_REQUEST = False  # SessionAgeMiddleware renews busy sessions

# Repeated wrong passwords lock the account and the address (django-axes):
# VMDASH_LOGIN_FAILURES failures lock for VMDASH_LOGIN_LOCKOUT seconds.
AXES_FAILURE_LIMIT = envint("VMDASH_LOGIN_FAILURES", 10)
AXES_COOLOFF_TIME = envint("VMDASH_LOGIN_LOCKOUT", 900) / 3600  # hours
AXES_LOCKOUT_PARAMETERS = [["username"], ["ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked.html"
AXES_VERBOSE = False
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

# Second factor (people/twofactor.py, README "Two-factor login"): TOTP apps and
# one-time recovery codes (django-otp). Wrong codes slow down (each one doubles
# the wait, from 1 s) and count as failed logins towards the lockout above.
OTP_TOTP_ISSUER = envstr("VMDASH_OTP_ISSUER", "vmdash")
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_STATIC_THROTTLE_FACTOR = 1
# How many one-time recovery codes an enrolment hands out.
VMDASH_RECOVERY_CODES = 10

# Content-Security-Policy (django-csp 4): nothing inline, nothing from elsewhere.
# connect-src 'self' covers ws:/wss: to this origin (CSP 3); the console proxy's
# own origin is added per request by vmdash.middleware.ContentSecurityPolicyMiddleware.
# noVNC draws its cursor from data: URLs; the two-factor QR code is a data: SVG.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Request bodies larger than this are refused before they are read (vmdash.asgi);
# uploads (a later issue) stream through their own route.
VMDASH_MAX_BODY = envint("VMDASH_MAX_BODY", 2 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = VMDASH_MAX_BODY

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# VMDASH_HTTPS=1 when browsers reach vmdash over HTTPS only (directly or behind a
# reverse proxy that sets X-Forwarded-Proto, with VMDASH_PROXY_HEADERS=1): secure
# cookies, HSTS for VMDASH_HSTS_SECONDS, plain HTTP redirected. `manage.py check
# --deploy` is clean with it (README, "Production").
VMDASH_HTTPS = envbool("VMDASH_HTTPS", False)
SESSION_COOKIE_SECURE = envbool("VMDASH_SECURE_COOKIES", VMDASH_HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
if VMDASH_HTTPS:
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = envint("VMDASH_HSTS_SECONDS", 365 * 24 * 3600)
    # Strict by default; a domain with plain-HTTP subdomains sets these to 0.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("VMDASH_HSTS_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = envbool("VMDASH_HSTS_PRELOAD", True)
    if VMDASH_PROXY_HEADERS:
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# vmdash's own knobs.
# Hosts to manage, as "slug=uri,slug=uri"; synced into the database at start.
VMDASH_HOSTS = envstr("VMDASH_HOSTS", "")
# Seconds to wait for one host before a page shows it as unreachable.
VMDASH_HOST_TIMEOUT = envint("VMDASH_HOST_TIMEOUT", 5)
# Seconds between reconnect attempts to a host that failed.
VMDASH_RECONNECT_INTERVAL = envint("VMDASH_RECONNECT_INTERVAL", 2)
# Host URIs may name an SSH key with ?keyfile= only for files inside this directory.
VMDASH_SSH_KEY_DIR = envstr("VMDASH_SSH_KEY_DIR", str(DATA_DIR / "ssh"))
# test:///<file>.xml worlds of libvirt's test driver are opened only inside this
# directory (the repository's public test fixtures); empty: only the demo host.
VMDASH_TEST_DRIVER_DIR = envstr("VMDASH_TEST_DRIVER_DIR", str(BASE_DIR / "tests" / "data"))
# VMs per page on the VM list.
VMDASH_PAGE_SIZE = envint("VMDASH_PAGE_SIZE", 100)
# API calls allowed per token (or browser session) in each web process, as
# "<n>/<s|min|h|d>" (api/core.py); beyond it: 429 with Retry-After.
VMDASH_API_RATE = envstr("VMDASH_API_RATE", "1200/min")
# Audit entries older than this many days go at `manage.py vmdash_audit_prune`; 0 keeps them all.
VMDASH_AUDIT_DAYS = envint("VMDASH_AUDIT_DAYS", 0)
# Libvirt events kept for the VM timeline (docs/timeline.md), in days; 0 keeps them all.
VMDASH_TIMELINE_DAYS = envint("VMDASH_TIMELINE_DAYS", 90)
# Definitions kept per VM for its History tab (domains/versions.py); 0 keeps them all.
VMDASH_DEFINITION_VERSIONS = envint("VMDASH_DEFINITION_VERSIONS", 200)

# Consoles (docs/consoles.md). The VNC proxy (websockify + our ticket plugin)
# listens here; `manage.py vmdash_run` starts it unless VMDASH_CONSOLE_PROXY=0.
VMDASH_CONSOLE_PROXY = envbool("VMDASH_CONSOLE_PROXY", True)
VMDASH_CONSOLE_PROXY_HOST = envstr("VMDASH_CONSOLE_PROXY_HOST", "127.0.0.1")
VMDASH_CONSOLE_PROXY_PORT = envint("VMDASH_CONSOLE_PROXY_PORT", 6080)
# The proxy's WebSocket URL as the browser sees it, e.g. wss://vmdash.example.org/websockify
# behind a reverse proxy; empty: ws://<the page's host name>:<VMDASH_CONSOLE_PROXY_PORT>/.
VMDASH_CONSOLE_PUBLIC_URL = envstr("VMDASH_CONSOLE_PUBLIC_URL", "")
# Seconds a console ticket may wait before it is opened (at most 30).
VMDASH_CONSOLE_TICKET_SECONDS = envint("VMDASH_CONSOLE_TICKET_SECONDS", 30)
# Accept a ticket only with the session cookie of the login that asked for it
# (the browser sends it when the proxy is on the same host name as the pages).
VMDASH_CONSOLE_BIND_SESSION = envbool("VMDASH_CONSOLE_BIND_SESSION", True)
if not 1 <= VMDASH_CONSOLE_TICKET_SECONDS <= 30:
    raise ImproperlyConfigured("VMDASH_CONSOLE_TICKET_SECONDS must be between 1 and 30")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": envstr("VMDASH_LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
