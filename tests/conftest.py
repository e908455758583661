import pytest
from django.contrib.auth.models import Permission

from exporter.media import Medium
from exporter.models import Subscription


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """Password hashing is slow on purpose; tests make many users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    """Every test gets its own data folder: originals, images, build area."""
    root = tmp_path / "data"
    settings.DATA_DIR = root
    settings.MEDIA_ROOT = root / "media"
    settings.IMAGES_DIR = root / "images"
    settings.BUILD_DIR = root / "build"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root / "media")},
        },
    }
    if settings.CACHES["default"]["BACKEND"].endswith("FileBasedCache"):
        settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": str(root / "cache")}}
    return root


def address(name: str, line1: str, city: str, country: str) -> dict:
    return {
        "address_name": name,
        "address_line1": line1,
        "address_city": city,
        "address_postal_code": "BS1 4DJ" if country == "GB" else "97201",
        "address_country": country,
    }


@pytest.fixture
def alice(django_user_model):
    """The subscriber most tests are about."""
    user = django_user_model.objects.create_user(
        "alice", "alice@example.com", "alice-password-1", first_name="Alice", last_name="Archer"
    )
    Subscription.objects.create(
        user=user, medium=Medium.CD, **address("Alice Archer", "12 Quay Street", "Bristol", "GB")
    )
    return user


@pytest.fixture
def bob(django_user_model):
    """A second subscriber, who must never see Alice's things."""
    user = django_user_model.objects.create_user(
        "bob", "bob@example.com", "bob-password-1", first_name="Bob", last_name="Baker"
    )
    Subscription.objects.create(user=user, medium=Medium.CD, **address("Bob Baker", "400 Elm Avenue", "Portland", "US"))
    return user


@pytest.fixture
def sam(django_user_model):
    """A fulfillment staff member."""
    user = django_user_model.objects.create_user("sam", "sam@example.com", "sam-password-1", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="exporter"))
    return user


@pytest.fixture
def small_filesystem(tmp_path):
    """A 2 MiB filesystem (tmpfs) and a function that grows it to 64 MiB.

    Needs root to mount; outside CI the test is skipped without it.
    """
    import subprocess

    from tests.tools import IN_CI

    mount = tmp_path / "small"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if mounted.returncode != 0:
        reason = f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield mount, lambda: subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
