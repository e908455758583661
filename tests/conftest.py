import pytest
from django.contrib.auth.models import Permission

from exporter.media import Medium
from exporter.models import Subscription


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
    return root


@pytest.fixture
def alice(django_user_model):
    """The subscriber most tests are about."""
    user = django_user_model.objects.create_user("alice", "alice@example.com", "alice-password-1")
    Subscription.objects.create(user=user, medium=Medium.CD)
    return user


@pytest.fixture
def bob(django_user_model):
    """A second subscriber, who must never see Alice's things."""
    user = django_user_model.objects.create_user("bob", "bob@example.com", "bob-password-1")
    Subscription.objects.create(user=user, medium=Medium.CD)
    return user


@pytest.fixture
def sam(django_user_model):
    """A fulfillment staff member."""
    user = django_user_model.objects.create_user("sam", "sam@example.com", "sam-password-1", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="exporter"))
    return user
