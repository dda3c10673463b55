from tenants.models import Operator

from ._status import StatusCommand


class Command(StatusCommand):
    help = "Resume a suspended operator."
    status = Operator.Status.ACTIVE
