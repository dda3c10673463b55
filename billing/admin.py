from .admin_tariffs import *  # noqa: F403
