from .admin_payments import *  # noqa: F401,F403
from .admin_tariffs import *  # noqa: F401,F403
