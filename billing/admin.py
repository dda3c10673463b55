from .admin_payments import *  # noqa: F401,F403
