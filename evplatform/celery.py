"""The Celery app: tenant-aware (tenant-schemas-celery), so a task queued inside an
operator's schema runs inside it. Periodic jobs fan out over active operators."""

import os

from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evplatform.settings")

app = CeleryApp("evplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# billing holds two domains, each a package with its own tasks module.
app.autodiscover_tasks(["billing.tariffs", "billing.payments"])
