"""Delete audit entries older than VMDASH_AUDIT_DAYS (0: keep them all), and say so in the trail.

The trail is append-only in the app: AuditEntry refuses .delete() and
QuerySet.delete(). Retention is the one way out, and it goes by age only,
through one SQL DELETE here, so no view or admin action can pick rows.
Run it daily (cron or a systemd timer); see docs/people.md.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.utils import timezone

from vmdash.audit import Actor, Outcome, record
from vmdash.models import AuditEntry


def prune(days: int) -> int:
    """Delete the entries written more than `days` days ago; how many went."""
    cutoff = timezone.now() - timedelta(days=days)
    table = connection.ops.quote_name(AuditEntry._meta.db_table)
    column = connection.ops.quote_name(AuditEntry._meta.get_field("at").column)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE {column} < %s",  # names: the model; value: a parameter
            [connection.ops.adapt_datetimefield_value(cutoff)],
        )
        count = max(int(cursor.rowcount), 0)
        record(
            Actor.system("prune"), "audit-prune", None, Outcome.OK,
            f"{count} entries older than {days} days deleted (VMDASH_AUDIT_DAYS)",
            object_type="audit",
        )  # fmt: skip
    return count


class Command(BaseCommand):
    help = "Delete audit entries older than VMDASH_AUDIT_DAYS days (0 keeps them all)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days", type=int, default=None, help="this many days instead of VMDASH_AUDIT_DAYS"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"] if options["days"] is not None else settings.VMDASH_AUDIT_DAYS
        if days < 0:
            raise CommandError(f"Keep entries for 0 days or more, not {days}.")
        if days == 0:
            self.stdout.write("VMDASH_AUDIT_DAYS is 0: the audit trail is kept for ever.")
            return
        count = prune(days)
        self.stdout.write(f"Deleted {count} audit entries older than {days} days.")
