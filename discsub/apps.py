from django.apps import AppConfig


class DiscsubConfig(AppConfig):
    name = "discsub"

    def ready(self) -> None:
        # Signal receivers: a sign-in notes whether an authenticator is enrolled.
        from discsub.staff import access  # noqa: F401
