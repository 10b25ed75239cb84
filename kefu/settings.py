"""Kefu settings: one module, everything that differs between installs comes from KEFU_* variables."""

import os
import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.utils.translation import gettext_lazy as _

from kefu.core.log import logging_config
from kefu.core.public_address import served_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("KEFU_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _secret_key() -> str:
    """KEFU_SECRET_KEY, else a key generated once and kept in var/ so sessions survive restarts."""
    if key := os.environ.get("KEFU_SECRET_KEY"):
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("KEFU_DEBUG", False)
ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("KEFU_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
    if h.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_filters",
    "template_partials",
    "ninja",
    "channels",
    "huey.contrib.djhuey",
    "kefu.core",
    "kefu.accounts",
    "kefu.audit",
    "kefu.businesstime",
    "kefu.customers",
    "kefu.notifications",
    "kefu.jobs",
    "kefu.tickets",
    "kefu.followups",
    "kefu.conversations",
    "kefu.campaigns",
    "kefu.appointments",
    "kefu.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "kefu.core.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "kefu.core.middleware.DomainErrorMiddleware",
]

ROOT_URLCONF = "kefu.urls"
WSGI_APPLICATION = "kefu.wsgi.application"
ASGI_APPLICATION = "kefu.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "kefu" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "kefu.core.context_processors.csp_nonce",
                "kefu.core.context_processors.navigation",
                "kefu.businesstime.context_processors.calendar_warnings",
                "kefu.core.context_processors.public_address_warning",
            ],
        },
    }
]

# --- Database: SQLite (WAL) under var/ by default, PostgreSQL with KEFU_DATABASE_URL -------------
_default_sqlite = f"sqlite:///{VAR_DIR / 'kefu.sqlite3'}"
DATABASE_URL = os.environ.get("KEFU_DATABASE_URL", _default_sqlite)
# Connections are kept between requests: a new SQLite connection starts with a cold page cache.
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=600, conn_health_checks=True)
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;"
            " PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-65536;"
            " PRAGMA mmap_size=1073741824;"
        ),
        "transaction_mode": "IMMEDIATE",
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The ASGI server runs each request's database work in a fresh thread: persistent
    # per-thread connections would pile up ("too many clients"), so connections come from a
    # pool shared by the process (psycopg_pool) instead.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "pool": {
            "min_size": 2,
            "max_size": int(os.environ.get("KEFU_DB_POOL_SIZE", "20")),
            "timeout": 10,
        }
    }
# The test suite runs on SQLite unless KEFU_TEST_DATABASE_URL names a PostgreSQL server.
TESTING = "pytest" in sys.modules
if TESTING and (test_url := os.environ.get("KEFU_TEST_DATABASE_URL")):
    DATABASES = {"default": dj_database_url.parse(test_url)}
elif TESTING:
    # A file, not SQLite's shared in-memory database: live servers' threads then take WAL's
    # row-versioned reads instead of table locks that can outlive a request.
    import tempfile

    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"kefu-test-{os.getpid()}.sqlite3")
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "core:home"
LOGOUT_REDIRECT_URL = "accounts:login"

if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# Repeated failed logins: after KEFU_LOGIN_MAX_FAILURES failures for one username, or
# KEFU_LOGIN_MAX_ADDRESS_FAILURES from one address (an office behind one address shares it),
# within KEFU_LOGIN_LOCK_SECONDS, further attempts are refused until failures age out of the window.
LOGIN_MAX_FAILURES = int(os.environ.get("KEFU_LOGIN_MAX_FAILURES", "5"))
LOGIN_MAX_ADDRESS_FAILURES = int(os.environ.get("KEFU_LOGIN_MAX_ADDRESS_FAILURES", "20"))
LOGIN_LOCK_SECONDS = int(os.environ.get("KEFU_LOGIN_LOCK_SECONDS", "900"))

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "kefu_cache",
    }
}

# --- Language and time ----------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "kefu" / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [
    BASE_DIR / "kefu" / "static",
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
]
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "media/"
BACKUP_DIR = Path(os.environ.get("KEFU_BACKUP_DIR", VAR_DIR / "backups"))

# --- Background tasks: Huey on SQLite (embedded) or on Redis (KEFU_REDIS_URL) -------------------
# Scheduled tasks live in that storage, not in a worker's memory: a restarted worker loses none.
REDIS_URL = os.environ.get("KEFU_REDIS_URL", "")
HUEY = {
    "huey_class": "huey.RedisHuey" if REDIS_URL else "huey.SqliteHuey",
    "name": "kefu",
    # Unit tests run tasks in-process; the worker tests start real `kefu worker` processes.
    "immediate": TESTING,
    "utc": False,  # crontabs read in TIME_ZONE (Django sets the process time zone)
    "connection": {"url": REDIS_URL} if REDIS_URL else {"filename": str(VAR_DIR / "tasks.sqlite3")},
    "consumer": {
        "workers": int(os.environ.get("KEFU_WORKER_THREADS", "2")),
        "worker_type": "thread",
        "periodic": True,
    },
}
# A worker's claim on work only one may do at a time (an SMS gateway's dispatch, a mailbox poll)
# lapses this many seconds after its last renewal, so a killed worker's work is taken over then.
LEASE_SECONDS = max(int(os.environ.get("KEFU_LEASE_SECONDS", "60")), 2)
# Background jobs (imports, exports): a job whose worker shows no sign of life for this many
# seconds is run again (a dead worker on the same machine is noticed at once when one starts);
# their files (uploads, results) are deleted this many days after the job ends; and each worker
# process runs at most this many jobs at once, keeping its other threads for timers and sends.
JOB_STALE_SECONDS = int(os.environ.get("KEFU_JOB_STALE_SECONDS", "120"))
JOB_KEEP_DAYS = int(os.environ.get("KEFU_JOB_KEEP_DAYS", "7"))
JOB_CONCURRENCY = int(os.environ.get("KEFU_JOB_CONCURRENCY", "1"))
# Daily backup by the worker (PRODUCT §2.12): hour in Asia/Shanghai, empty to switch it off.
BACKUP_DAILY_HOUR = os.environ.get("KEFU_BACKUP_DAILY_HOUR", "2")
BACKUP_KEEP = int(os.environ.get("KEFU_BACKUP_KEEP", "14"))

# An outgoing chat message a provider refused or could not take is tried again this many times,
# 30 s apart, before it is marked failed (tests run tasks inline, where a delayed retry never runs).
MESSAGE_DELIVERY_RETRIES = int(os.environ.get("KEFU_DELIVERY_RETRIES", "0" if TESTING else "3"))

# --- Real time: Django Channels; in-memory in one process, Redis across processes -----------------
CHANNEL_LAYERS = {
    "default": (
        {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": "kefu", "capacity": 1000},
        }
        if REDIS_URL
        else {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}
    )
}

# --- Email: notifications go out by SMTP when KEFU_SMTP_HOST is set, else they stay in the app ---
SMTP_ENABLED = bool(os.environ.get("KEFU_SMTP_HOST"))
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if SMTP_ENABLED
    else "django.core.mail.backends.dummy.EmailBackend"
)
EMAIL_HOST = os.environ.get("KEFU_SMTP_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("KEFU_SMTP_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("KEFU_SMTP_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("KEFU_SMTP_PASSWORD", "")
EMAIL_USE_TLS = env_bool("KEFU_SMTP_TLS", False)
EMAIL_USE_SSL = env_bool("KEFU_SMTP_SSL", False)
EMAIL_TIMEOUT = 20
DEFAULT_FROM_EMAIL = os.environ.get("KEFU_EMAIL_FROM", "kefu@localhost")
# Where `kefu run` serves (its --host and --port default to these and pass them on to the web and
# worker processes it starts).
SERVE_HOST = os.environ.get("KEFU_HOST", "").strip() or "127.0.0.1"
SERVE_PORT = int(os.environ.get("KEFU_PORT", "8000"))


SERVED_URL = served_url(SERVE_HOST, SERVE_PORT)
# Where links in e-mails and customer status links point (scheme and host, no trailing slash):
# KEFU_BASE_URL, else the address `kefu run` serves. While it is that local address, pages reached
# through a proxy or at another name warn administrators and show no status link
# (kefu.core.public_address).
BASE_URL = (os.environ.get("KEFU_BASE_URL", "").strip() or SERVED_URL).rstrip("/")

# --- Inbound e-mail: `kefu smtp` receives mail for the e-mail channels; IMAP mailboxes are polled -
SMTP_LISTEN_HOST = os.environ.get("KEFU_SMTP_LISTEN_HOST", "127.0.0.1")
SMTP_LISTEN_PORT = int(os.environ.get("KEFU_SMTP_LISTEN_PORT", "2525"))
# A larger mail is refused (SMTP 552) or, from IMAP, left in the mailbox marked read.
INBOUND_MAIL_MAX_BYTES = int(os.environ.get("KEFU_INBOUND_MAIL_MAX_BYTES", str(25 * 1024 * 1024)))
# Minutes between two polls of the IMAP mailboxes of the e-mail channels (1 to 59).
IMAP_POLL_MINUTES = min(max(int(os.environ.get("KEFU_IMAP_POLL_MINUTES", "2")), 1), 59)

# --- Bulk messages: where each kind leaves and how fast -----------------------------------------
# "outbox" records messages in the app (the default); e-mail goes over SMTP when KEFU_SMTP_HOST is
# set; a provider adapter is a dotted path (see kefu/campaigns/gateways.py).
CAMPAIGN_GATEWAYS = {
    "sms": os.environ.get("KEFU_SMS_GATEWAY", "outbox"),
    "email": os.environ.get("KEFU_EMAIL_GATEWAY", "smtp" if SMTP_ENABLED else "outbox"),
    "wechat": os.environ.get("KEFU_WECHAT_GATEWAY", "outbox"),
}
# Messages per second each gateway may take (providers cap them; 0: no limit).
CAMPAIGN_RATES = {
    "sms": int(os.environ.get("KEFU_SMS_RATE", "50")),
    "email": int(os.environ.get("KEFU_EMAIL_RATE", "10")),
    "wechat": int(os.environ.get("KEFU_WECHAT_RATE", "100")),
}
# The sender signature (【签名】) each gateway puts before every message: SMS in China must
# carry the one registered with the provider ("康宁大药房" or "【康宁大药房】").
CAMPAIGN_SIGNATURES = {"sms": os.environ.get("KEFU_SMS_SIGNATURE", "").strip()}
# The opt-out footer of marketing SMS; empty: "回T退订" (in the department's language).
SMS_OPTOUT_TEXT = os.environ.get("KEFU_SMS_OPTOUT_TEXT", "").strip()
# Marketing SMS are not sent between these times (TIME_ZONE); a dispatch that reaches them waits
# until they end. Transactional messages (reminders, verification) are exempt. Empty: none.
SMS_QUIET_HOURS = os.environ.get("KEFU_SMS_QUIET_HOURS", "" if TESTING else "21:00-08:00").strip()
# A campaign reaching more recipients than this waits for a manager's approval; 0: never.
CAMPAIGN_APPROVAL_THRESHOLD = max(
    int(os.environ.get("KEFU_CAMPAIGN_APPROVAL_THRESHOLD", "1000")), 0
)
# Hour of the day (Asia/Shanghai) the worker sends birthday and holiday greetings.
GREETING_HOUR = int(os.environ.get("KEFU_GREETING_HOUR", "9"))

# --- HTTPS: cookies, HSTS, the proxy in front ----------------------------------------------------
# Served over HTTPS (KEFU_BASE_URL starts with https://, or KEFU_SECURE_COOKIES=true): the session
# and CSRF cookies go only over HTTPS, and browsers are told to use HTTPS only (HSTS,
# KEFU_HSTS_SECONDS, a year by default). The HSTS header goes only on requests that came in over
# HTTPS: behind a proxy that ends TLS, `kefu run` (uvicorn) reads X-Forwarded-Proto from a proxy on
# 127.0.0.1 (FORWARDED_ALLOW_IPS for others); another server needs KEFU_PROXY_SSL_HEADER.
_https_base_url = os.environ.get("KEFU_BASE_URL", "").strip().lower().startswith("https://")
SECURE_COOKIES = env_bool("KEFU_SECURE_COOKIES", _https_base_url)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SECURE_HSTS_SECONDS = int(
    os.environ.get("KEFU_HSTS_SECONDS", "31536000" if SECURE_COOKIES else "0") or "0"
)
if _proxy_header := os.environ.get("KEFU_PROXY_SSL_HEADER", "").strip():
    # Only when the proxy sets (and so overwrites) this header on every request: e.g.
    # X-Forwarded-Proto. A client could otherwise claim HTTPS.
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_header.upper().replace("-", "_"), "https")
# Origins a form may be posted from besides the host a request names, e.g. the public address
# when a proxy rewrites Host: comma-separated, scheme included. KEFU_BASE_URL's origin is one.
CSRF_TRUSTED_ORIGINS = [
    o.strip().rstrip("/")
    for o in os.environ.get("KEFU_CSRF_TRUSTED_ORIGINS", "").split(",")
    if o.strip()
]
_base = urlsplit(os.environ.get("KEFU_BASE_URL", "").strip())
if _base.scheme in ("http", "https") and _base.netloc:
    CSRF_TRUSTED_ORIGINS = list(
        dict.fromkeys([*CSRF_TRUSTED_ORIGINS, f"{_base.scheme}://{_base.netloc}"])
    )
X_FRAME_OPTIONS = "DENY"

# Phone numbers without a country code are read in this region.
PHONE_DEFAULT_REGION = os.environ.get("KEFU_PHONE_REGION", "CN")
# Size limit of an uploaded spreadsheet.
IMPORT_MAX_BYTES = int(os.environ.get("KEFU_IMPORT_MAX_BYTES", str(50 * 1024 * 1024)))
# Size limit of a file attached to a ticket or a chat message, or kept from an inbound mail.
ATTACHMENT_MAX_BYTES = int(os.environ.get("KEFU_ATTACHMENT_MAX_BYTES", str(10 * 1024 * 1024)))
# The file types tickets, chat and inbound mail accept (kefu/core/attachments.py): a
# comma-separated list of extensions replaces these.
_DEFAULT_ATTACHMENT_EXTENSIONS = (
    ".jpg .jpeg .png .gif .webp .heic .pdf .doc .docx .xls .xlsx .ppt .pptx .txt .csv"
    " .eml .mp3 .amr .wav .m4a .mp4 .mov"
)
ATTACHMENT_EXTENSIONS = frozenset(
    "." + e.strip().lower().lstrip(".")
    for e in os.environ.get("KEFU_ATTACHMENT_EXTENSIONS", "").replace(",", " ").split()
    or _DEFAULT_ATTACHMENT_EXTENSIONS.split()
)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# Everything to the console; with KEFU_LOG_FILE (`kefu run` sets var/log/kefu.log) to that file,
# and only errors, one line each, to the console. Refused requests (4xx) log no traceback.
LOG_FILE = os.environ.get("KEFU_LOG_FILE", "")
LOGGING = logging_config(log_file=LOG_FILE, level=os.environ.get("KEFU_LOG_LEVEL", "INFO"))
