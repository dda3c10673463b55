"""billing models (tenant schema): tariffs in ``tariffs.py``, payments in ``payments.py``."""

from .payments import *  # noqa: F403
from .tariffs import *  # noqa: F403
