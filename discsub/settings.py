"""Settings for Discsub.

Everything is read from the environment, with defaults that work on a fresh
machine: SQLite, django-q2's ORM broker and filesystem storage, all under one
data folder (``DISCSUB_DATA_DIR``, default ``./var``).
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


DATA_DIR = Path(os.environ.get("DISCSUB_DATA_DIR") or BASE_DIR / "var").resolve()
MEDIA_ROOT = DATA_DIR / "media"
IMAGES_DIR = DATA_DIR / "images"
# Temporary and staging files for image builds live on the data disk, never
# in memory: images are far larger than RAM.
BUILD_DIR = DATA_DIR / "build"

# Production is opt-in; it refuses to start with unsafe or missing values.
PRODUCTION = env_bool("DISCSUB_PRODUCTION", False)
DEBUG = env_bool("DJANGO_DEBUG", not PRODUCTION)

# The data folder holds the secret key, the database, every subscriber's
# originals and images: whatever this process (and its children: par2, the
# task workers) creates is for the service's own user alone (0700 folders,
# 0600 files), and so are uploads, which Django chmods itself.
os.umask(0o077)
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
if not PRODUCTION and DATA_DIR.stat().st_uid == os.getuid():
    # A development folder made world-readable by an earlier version.
    DATA_DIR.chmod(0o700)

_PLACEHOLDER_WORDS = ("change", "insecure", "secret", "example", "password", "xxxxx")


def weak_secret_key(key: str) -> str | None:
    """Why ``key`` is not fit for production, or None."""
    if len(key) < 50:
        return "it is shorter than 50 characters"
    if key.startswith("django-insecure"):
        return "it is Django's insecure development key"
    if len(set(key)) < 20:
        return "it has fewer than 20 different characters"
    if any(word in key.lower() for word in _PLACEHOLDER_WORDS):
        return "it looks like a placeholder"
    return None


if PRODUCTION:
    SECRET_KEY = os.environ.get("SECRET_KEY", "")
    if not SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY must be set (50+ random characters) in production.")
    if _weak := weak_secret_key(SECRET_KEY):
        raise ImproperlyConfigured(
            f"SECRET_KEY is too weak for production ({_weak}); make one with "
            "python -c 'import secrets; print(secrets.token_urlsafe(64))'."
        )
    if DEBUG:
        raise ImproperlyConfigured("DJANGO_DEBUG must be off in production.")
    ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()]
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must be set in production.")
    if "*" in ALLOWED_HOSTS:
        # Any Host header would do: password-reset links could point anywhere.
        raise ImproperlyConfigured("ALLOWED_HOSTS must name the site's hosts in production, not '*'.")
else:
    SECRET_KEY = os.environ.get("SECRET_KEY") or ""
    if not SECRET_KEY:
        # A development key that survives restarts, kept in the data folder.
        key_file = DATA_DIR / "secret_key"
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key_file.chmod(0o600)
            SECRET_KEY = key_file.read_text().strip()
        else:
            SECRET_KEY = secrets.token_urlsafe(50)
            with os.fdopen(fd, "w") as f:
                f.write(SECRET_KEY)
    ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
    # Optional authenticator codes for staff (discsub/staff/two_factor.py).
    "django_otp",
    "django_otp.plugins.otp_totp",
    "exporter",
    "discsub",
]

MIDDLEWARE = [
    # Debug pages only for this machine's own clients (discsub/error_reports.py).
    "discsub.error_reports.DebugOnlyForLoopback",
    # Every response, error pages too (discsub/content_security.py).
    "discsub.content_security.ContentSecurityPolicy",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "discsub.urls"

# Every error report (debug page, email to ADMINS) without connection
# passwords, secret values or the environment; debug pages only for
# 127.0.0.1/::1 (discsub/error_reports.py).
DEFAULT_EXCEPTION_REPORTER = "discsub.error_reports.LocalDebugReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "discsub.error_reports.SecretsFilter"

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

WSGI_APPLICATION = "discsub.wsgi.application"

DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "discsub.sqlite3",
            # Several processes (web, scheduler) share the file: wait for
            # locks instead of failing, and take the write lock up front.
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL;",
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

STORAGES = {
    # Originals.  S3 is plugged in here by settings.
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT)},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Object storage (S3-compatible, django-storages + boto3) for originals
# ("default", keys under originals/) and images ("images", keys under
# images/), on when DISCSUB_S3_BUCKET is set.  Credentials come from the
# usual AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or an instance role).
# See docs/deploy.md.
S3_BUCKET = os.environ.get("DISCSUB_S3_BUCKET", "")
# Sources downloaded at once while a disc is staged, and attempts per object
# (a refused, timed-out or corrupt transfer) before the disc fails or the
# item is held back.
DISCSUB_S3_DOWNLOADS = env_int("DISCSUB_S3_DOWNLOADS", 4)
DISCSUB_STORAGE_ATTEMPTS = env_int("DISCSUB_STORAGE_ATTEMPTS", 3)
# Images go up in parts of this size (more for a BD: S3 takes 10,000 parts at most).
DISCSUB_S3_PART_MB = env_int("DISCSUB_S3_PART_MB", 64)
# Seconds before the second attempt at an object; doubled for each further one.
DISCSUB_STORAGE_RETRY_PAUSE = float(os.environ.get("DISCSUB_STORAGE_RETRY_PAUSE") or 0.5)
if S3_BUCKET:
    from botocore.config import Config as _S3Config

    _s3_endpoint = os.environ.get("DISCSUB_S3_ENDPOINT_URL") or None
    _s3 = {
        "bucket_name": S3_BUCKET,
        "endpoint_url": _s3_endpoint,
        "region_name": os.environ.get("DISCSUB_S3_REGION") or None,
        # Names are never reused (a new upload is a new version): never
        # overwrite, and no public ACL; downloads are signed, short-lived URLs.
        "file_overwrite": False,
        "default_acl": None,
        "querystring_auth": True,
        # An object opened whole (EXIF dates, thumbnails) spills to a temporary
        # file (FILE_UPLOAD_TEMP_DIR, on the data disk) past 8 MB, never all in memory.
        "max_memory_size": 8 * 1024 * 1024,
        "client_config": _S3Config(
            signature_version="s3v4",
            # Most S3-compatible services (MinIO, Ceph) want path-style URLs.
            s3={"addressing_style": os.environ.get("DISCSUB_S3_ADDRESSING_STYLE", "path" if _s3_endpoint else "auto")},
            connect_timeout=env_int("DISCSUB_S3_CONNECT_TIMEOUT", 10),
            read_timeout=env_int("DISCSUB_S3_READ_TIMEOUT", 60),
            retries={"mode": "standard", "max_attempts": env_int("DISCSUB_S3_CLIENT_ATTEMPTS", 3)},
        ),
    }
    STORAGES["default"] = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {**_s3, "location": ""}}
    STORAGES["images"] = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {**_s3, "location": "images"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

if PRODUCTION:
    # Several web and worker machines share one database: SQLite cannot be it.
    if not DATABASE_URL:
        raise ImproperlyConfigured("DATABASE_URL must be set in production (PostgreSQL; see docs/deploy.md).")
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        raise ImproperlyConfigured("DATABASE_URL must not be SQLite in production (PostgreSQL; see docs/deploy.md).")
    # gunicorn serves the static files itself, through whitenoise, from
    # collectstatic's compressed, content-hashed copies (cached for ever).
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
        "whitenoise.middleware.WhiteNoiseMiddleware",
    )
    STORAGES["staticfiles"] = {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}
    # TLS ends at the proxy in front of gunicorn, which says so in X-Forwarded-Proto
    # (and must strip a client's own).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DISCSUB_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DISCSUB_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DISCSUB_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DISCSUB_HSTS_PRELOAD", True)
    CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Who makes the discs; written into every disc's bag-info and README.
DISCSUB_ORGANIZATION = os.environ.get("DISCSUB_ORGANIZATION", "Discsub")

# Sector recovery data after every disc's ISO volume (exporter.ecc, layout
# 3): m parity layers of a Reed-Solomon code over groups of 255 sectors,
# per medium.  32 is dvdisaster RS03's "normal" strength (14.3 % of the
# image); docs/benchmarks.md has the damage it repairs and why it is the
# default.  0 puts none.  A disc keeps what it was planned with.
DISCSUB_SECTOR_PARITY = {"cd": 32, "dvd": 32, "dvd-dl": 32, "bd": 32}
if os.environ.get("DISCSUB_SECTOR_PARITY"):  # one figure for every medium
    DISCSUB_SECTOR_PARITY = dict.fromkeys(DISCSUB_SECTOR_PARITY, env_int("DISCSUB_SECTOR_PARITY", 32))
if not all(0 <= parity <= 128 for parity in DISCSUB_SECTOR_PARITY.values()):
    # More parity than data would be a strange disc; 255 or more is no code at all.
    raise ImproperlyConfigured(f"DISCSUB_SECTOR_PARITY must be 0 to 128 parity layers of 255: {DISCSUB_SECTOR_PARITY}")
# PAR2 files over the payload (recovery/), in % of the payload's blocks, per
# medium: the discs of layouts 1 and 2 carry them.  Off by default since
# layout 3: par2's blocks of many sectors lose to scattered dead sectors,
# which the sector recovery data above repairs (docs/benchmarks.md).
DISCSUB_PAR2_REDUNDANCY = {"cd": 0, "dvd": 0, "dvd-dl": 0, "bd": 0}
if os.environ.get("DISCSUB_PAR2_PERCENT"):  # one percentage for every medium (tests, small deployments)
    DISCSUB_PAR2_REDUNDANCY = dict.fromkeys(DISCSUB_PAR2_REDUNDANCY, env_int("DISCSUB_PAR2_PERCENT", 10))
# Memory par2 may use (MB); with less it reads the payload several times.
DISCSUB_PAR2_MEMORY_MB = env_int("DISCSUB_PAR2_MEMORY_MB", 512)

# The scheduler (exporter.scheduling).  At the end of a period what is
# pending ships even if the disc is not full, unless it is under
# DISCSUB_MIN_PARTIAL_MB and has waited fewer than DISCSUB_MAX_WAIT_PERIODS
# periods; a subscriber gets at most DISCSUB_MAX_DISCS_PER_PERIOD discs per
# period (the rest waits, oldest first).  An explicit "ship now" or a
# cancellation's final disc ignores the minimum.
DISCSUB_MIN_PARTIAL_MB = env_int("DISCSUB_MIN_PARTIAL_MB", 0)
DISCSUB_MAX_WAIT_PERIODS = env_int("DISCSUB_MAX_WAIT_PERIODS", 3)
DISCSUB_MAX_DISCS_PER_PERIOD = env_int("DISCSUB_MAX_DISCS_PER_PERIOD", 4)
# How often the scheduler's pass runs (minutes; setup_schedules).
DISCSUB_SCHEDULE_MINUTES = env_int("DISCSUB_SCHEDULE_MINUTES", 5)
# A worker renews its lease on the disc it builds every third of this; a
# lease that runs out (the worker died) lets another worker take over.
DISCSUB_LEASE_SECONDS = env_int("DISCSUB_LEASE_SECONDS", 300)
# A build task that vanished before any worker claimed its disc (the cluster
# that took it from the queue was killed) is queued again after this long if
# the build queue is empty (exporter.scheduling.queue_due_builds); otherwise
# after the build queue's retry time.
DISCSUB_LOST_BUILD_MINUTES = env_int("DISCSUB_LOST_BUILD_MINUTES", 15)
# After this many attempts a disc's failure is permanent (staff retry it).
DISCSUB_MAX_BUILD_ATTEMPTS = env_int("DISCSUB_MAX_BUILD_ATTEMPTS", 8)
# An item whose bytes could not be read for a disc this many scheduler passes
# in a row is held back (an ItemIssue for staff); the rest of its
# subscriber's library goes on without it from its first failure.
DISCSUB_ITEM_MAX_FAILURES = env_int("DISCSUB_ITEM_MAX_FAILURES", 3)
# ... and only once its failures span at least this many minutes (three
# quick passes during a short outage hold nothing back).
DISCSUB_ITEM_HOLD_AFTER_MINUTES = env_int("DISCSUB_ITEM_HOLD_AFTER_MINUTES", 60)

# Deletes wait (exporter.deletion, docs/deletion.md): a trashed item moves to
# Recently deleted after DISCSUB_TRASH_DAYS; a deleted item's bytes are
# erased by the purge DISCSUB_DELETE_HOLD_DAYS after that, not sooner.
DISCSUB_TRASH_DAYS = env_int("DISCSUB_TRASH_DAYS", 30)
DISCSUB_DELETE_HOLD_DAYS = env_int("DISCSUB_DELETE_HOLD_DAYS", 30)
# The purge's guard (exporter.purge_guard): a subscriber's items due within a
# day over this share of their library (items or bytes), and over the floor,
# wait for staff; so does the whole service over a volume a day, or over a
# jump against the trailing average once past its own floor.
DISCSUB_PURGE_MAX_LIBRARY_PERCENT = env_int("DISCSUB_PURGE_MAX_LIBRARY_PERCENT", 10)
DISCSUB_PURGE_FLOOR_ITEMS = env_int("DISCSUB_PURGE_FLOOR_ITEMS", 50)
DISCSUB_PURGE_FLOOR_MB = env_int("DISCSUB_PURGE_FLOOR_MB", 500)
DISCSUB_PURGE_MAX_GB_PER_DAY = env_int("DISCSUB_PURGE_MAX_GB_PER_DAY", 500)
DISCSUB_PURGE_JUMP_FACTOR = env_int("DISCSUB_PURGE_JUMP_FACTOR", 10)
DISCSUB_PURGE_TRAILING_DAYS = env_int("DISCSUB_PURGE_TRAILING_DAYS", 14)
DISCSUB_PURGE_SERVICE_FLOOR_MB = env_int("DISCSUB_PURGE_SERVICE_FLOOR_MB", 50 * 1024)
if not 1 <= DISCSUB_PURGE_MAX_LIBRARY_PERCENT <= 100:
    raise ImproperlyConfigured(
        f"DISCSUB_PURGE_MAX_LIBRARY_PERCENT must be 1 to 100: {DISCSUB_PURGE_MAX_LIBRARY_PERCENT}"
    )
for _name in (
    "DISCSUB_PURGE_FLOOR_ITEMS",
    "DISCSUB_PURGE_FLOOR_MB",
    "DISCSUB_PURGE_MAX_GB_PER_DAY",
    "DISCSUB_PURGE_JUMP_FACTOR",
    "DISCSUB_PURGE_TRAILING_DAYS",
    "DISCSUB_PURGE_SERVICE_FLOOR_MB",
):
    if globals()[_name] < 0:
        raise ImproperlyConfigured(f"{_name} must not be negative: {globals()[_name]}")
# How often the trash is emptied and the purge runs (minutes; setup_schedules).
DISCSUB_DELETION_MINUTES = env_int("DISCSUB_DELETION_MINUTES", 60)
for _name in ("DISCSUB_TRASH_DAYS", "DISCSUB_DELETE_HOLD_DAYS"):
    if not 0 <= globals()[_name] <= 3650:
        raise ImproperlyConfigured(f"{_name} must be 0 to 3650 days: {globals()[_name]}")

# Replacement copies a subscriber may ask for (lost or damaged discs), per rolling period.
DISCSUB_REPLACEMENTS_PER_PERIOD = env_int("DISCSUB_REPLACEMENTS_PER_PERIOD", 2)
DISCSUB_REPLACEMENT_PERIOD_DAYS = env_int("DISCSUB_REPLACEMENT_PERIOD_DAYS", 90)

# The portal's address, for links in emails.
DISCSUB_SITE_URL = os.environ.get("DISCSUB_SITE_URL", "http://127.0.0.1:8000")

# Portal uploads: files over 2.5 MB go to temporary files on the data disk
# (never held in memory) and are then streamed into storage.  One file may
# be at most DISCSUB_UPLOAD_MAX_MB (the largest disc, a BD-R, holds 24 GB).
FILE_UPLOAD_TEMP_DIR = str(DATA_DIR / "uploads")
# Made here: Django's checks refuse a temporary folder that does not exist.
Path(FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
DISCSUB_UPLOAD_MAX_BYTES = env_int("DISCSUB_UPLOAD_MAX_MB", 4096) * 1024 * 1024
# What one subscriber may store (every version of every item, deleted ones
# included until they are purged), unless their subscription says otherwise
# (Subscription.quota_gb); 0 for no limit.  And how many files they may
# upload in the portal in any hour (a sliding window; 0 for no limit).
DISCSUB_QUOTA_GB = env_int("DISCSUB_QUOTA_GB", 200)
DISCSUB_UPLOADS_PER_HOUR = env_int("DISCSUB_UPLOADS_PER_HOUR", 2000)

# Thumbnails are decoded by a child of the worker (exporter.thumbnail_decoder):
# an image whose pixels would take more than DISCSUB_THUMBNAIL_MAX_DECODE_MB
# (after a JPEG's reduced decode) gets the placeholder without being decoded;
# the child may use DISCSUB_THUMBNAIL_MEMORY_MB of address space beyond its
# own start-up size, and DISCSUB_THUMBNAIL_SECONDS for one thumbnail.
DISCSUB_THUMBNAIL_MAX_DECODE_MB = env_int("DISCSUB_THUMBNAIL_MAX_DECODE_MB", 256)
DISCSUB_THUMBNAIL_MEMORY_MB = env_int("DISCSUB_THUMBNAIL_MEMORY_MB", 768)
DISCSUB_THUMBNAIL_SECONDS = env_int("DISCSUB_THUMBNAIL_SECONDS", 60)

# Every sign-in door (sign-in, its code step, password reset) goes through
# one limiter (discsub/signin_limits.py): sliding windows kept in the cache,
# shared by every web process (Redis with REDIS_URL, else the data folder).
# Failed sign-ins are counted per username from one client, and per client;
# past either limit that client may try once every DISCSUB_LOGIN_DELAY_SECONDS
# (the right password then works; other clients are not slowed).
DISCSUB_LOGIN_ATTEMPTS_PER_USER = env_int("DISCSUB_LOGIN_ATTEMPTS_PER_USER", 5)
DISCSUB_LOGIN_ATTEMPTS_PER_IP = env_int("DISCSUB_LOGIN_ATTEMPTS_PER_IP", 30)
DISCSUB_LOGIN_WINDOW_MINUTES = env_int("DISCSUB_LOGIN_WINDOW_MINUTES", 15)
DISCSUB_LOGIN_DELAY_SECONDS = env_int("DISCSUB_LOGIN_DELAY_SECONDS", 30)
# Password-reset emails per address and per client, over a sliding window.
DISCSUB_RESET_REQUESTS_PER_EMAIL = env_int("DISCSUB_RESET_REQUESTS_PER_EMAIL", 3)
DISCSUB_RESET_REQUESTS_PER_IP = env_int("DISCSUB_RESET_REQUESTS_PER_IP", 10)
DISCSUB_RESET_WINDOW_MINUTES = env_int("DISCSUB_RESET_WINDOW_MINUTES", 60)
# Behind a reverse proxy every request seems to come from the proxy: name the
# request header that carries the client's address (e.g. HTTP_X_REAL_IP).
DISCSUB_CLIENT_IP_HEADER = os.environ.get("DISCSUB_CLIENT_IP_HEADER") or None
# Authenticator codes: the issuer name shown in the app.
OTP_TOTP_ISSUER = os.environ.get("DISCSUB_ORGANIZATION", "Discsub")
if os.environ.get("REDIS_URL"):
    _REDIS_CACHE = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["REDIS_URL"]}
    CACHES = {"default": _REDIS_CACHE}
else:
    # Without Redis, a cache in the data folder: every process of this
    # machine (the web server's workers) counts sign-in attempts together.
    # Several machines need Redis.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }

# Email: the console in development; SMTP settings from the environment in production.
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Discsub <discs@localhost>")

REDIS_URL = os.environ.get("REDIS_URL", "")
# Two queues: the default one runs the scheduler's pass and other short jobs;
# image builds (minutes to an hour for a BD) go to their own queue, served
# by a cluster started with Q_CLUSTER_NAME=discsub-builds, so they never
# hold up short jobs.  In each, retry must exceed timeout so a task is never
# handed to a second worker while the first still runs.
DISCSUB_BUILD_QUEUE = os.environ.get("DISCSUB_BUILD_QUEUE", "discsub-builds")
Q_CLUSTER = {
    "name": "discsub",
    "workers": env_int("DISCSUB_WORKERS", 2),
    "timeout": env_int("DISCSUB_TASK_TIMEOUT", 1800),
    "retry": env_int("DISCSUB_TASK_RETRY", 2400),
    "max_attempts": 3,
    "catch_up": False,
    "ack_failures": True,
    "label": "Task queue",
    "ALT_CLUSTERS": {
        DISCSUB_BUILD_QUEUE: {
            "workers": env_int("DISCSUB_BUILD_WORKERS", 1),
            "timeout": env_int("DISCSUB_BUILD_TIMEOUT", 3 * 3600),
            "retry": env_int("DISCSUB_BUILD_RETRY", 3 * 3600 + 600),
            # A killed build is taken over through its disc's lease and the
            # scheduler's next pass, not by the broker redelivering it.
            "max_attempts": 1,
        },
    },
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DISCSUB_LOG_LEVEL", "INFO")},
}
