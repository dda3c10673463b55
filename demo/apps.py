from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Development tooling: the demo operator and the driver journey. Not a domain."""

    name = "demo"
    verbose_name = "Demo"
