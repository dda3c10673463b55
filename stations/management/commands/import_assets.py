"""``manage.py import_assets FILE --tenant SLUG [--kind stations|piles|connectors] [--dry-run]``

Imports a spreadsheet (XLSX or CSV, the admin's import columns) into one operator, with a
progress bar and a summary of created / updated / skipped / errors. All or nothing: when
any row is invalid nothing is saved and the bad rows are listed (exit status 1). Piles go
through the registry rule like in the admin.
"""

from __future__ import annotations

from pathlib import Path

import tablib
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_tenants.utils import tenant_context
from tqdm import tqdm

from stations.resources import RESOURCES, resource_for_headers
from tenants.selectors import operator_get_by_slug

CHUNK = 100


class _Rollback(Exception):
    pass


def load_dataset(path: Path) -> tablib.Dataset:
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        with path.open("rb") as fh:
            return tablib.Dataset().load(fh, format="xlsx")
    if suffix == ".csv":
        return tablib.Dataset().load(path.read_text(encoding="utf-8-sig"), format="csv")
    raise CommandError(f"{path}: only .xlsx and .csv files are supported")


class Command(BaseCommand):
    help = "Import stations, piles or connectors from an XLSX or CSV file into one operator."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--tenant", required=True, help="operator slug")
        parser.add_argument("--kind", choices=sorted(RESOURCES), help="default: from the header row")
        parser.add_argument("--dry-run", action="store_true", help="validate only, save nothing")

    def handle(self, *args, file: Path, tenant: str, kind: str | None, dry_run: bool, **options):
        operator = operator_get_by_slug(tenant)
        if operator is None:
            raise CommandError(f"no operator {tenant!r}")
        if not file.exists():
            raise CommandError(f"{file}: no such file")
        dataset = load_dataset(file)
        try:
            kind = kind or resource_for_headers(dataset.headers or [])
        except ValueError as exc:
            raise CommandError(f"{file}: {exc}") from exc
        totals = {"new": 0, "update": 0, "skip": 0, "delete": 0}
        errors: list[str] = []
        with tenant_context(operator):
            resource = RESOURCES[kind]()
            try:
                with transaction.atomic():
                    with tqdm(total=len(dataset), unit="row", desc=kind, disable=options["verbosity"] == 0, file=self.stderr) as bar:
                        for start in range(0, len(dataset), CHUNK):
                            chunk = tablib.Dataset(*dataset[start : start + CHUNK], headers=dataset.headers)
                            result = resource.import_data(chunk, dry_run=False, use_transactions=False)
                            for n, row in enumerate(result.rows, start=start + 2):  # +header, 1-based
                                if row.import_type in totals:
                                    totals[row.import_type] += 1
                                for err in row.errors:
                                    errors.append(f"row {n}: {err.error}")
                                if row.validation_error is not None:
                                    errors.append(f"row {n}: {'; '.join(_messages(row.validation_error))}")
                            errors.extend(f"file: {e.error}" for e in result.base_errors)
                            bar.update(len(chunk))
                    if errors or dry_run:
                        raise _Rollback
            except _Rollback:
                pass
        saved = not errors and not dry_run
        for line in errors[:200]:
            self.stderr.write(line)
        if len(errors) > 200:
            self.stderr.write(f"... and {len(errors) - 200} more")
        self.stdout.write(
            f"{kind}: {len(dataset)} rows, created {totals['new']}, updated {totals['update']}, "
            f"skipped {totals['skip']}, errors {len(errors)}; "
            + ("saved" if saved else "nothing saved" + (" (dry run)" if dry_run and not errors else ""))
        )
        if errors:
            raise CommandError(f"{len(errors)} rows with errors; nothing was saved")


def _messages(exc) -> list[str]:
    if hasattr(exc, "message_dict"):
        return [f"{field}: {', '.join(msgs)}" for field, msgs in exc.message_dict.items()]
    return list(exc.messages)
