"""billing's models (tenant schema), one app label for two domains: tariffs in
``billing.tariffs.models``, payments in ``billing.payments.models``."""

from .payments.models import *  # noqa: F403
from .tariffs.models import *  # noqa: F403
