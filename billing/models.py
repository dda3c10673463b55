"""billing's models (tenant schema), one app label for three domains: tariffs in
``billing.tariffs.models``, payments in ``billing.payments.models``, invoices in
``billing.invoices.models``."""

from .invoices.models import *  # noqa: F403
from .payments.models import *  # noqa: F403
from .tariffs.models import *  # noqa: F403
