"""Check the machine for what `make run` or `make test` needs, one line each."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from vmdash.doctor import SYSTEM_URI, Mode, Status, format_line, run_checks


class Command(BaseCommand):
    help = (
        "Check libvirtd, virtlogd, /dev/kvm, libvirt's capabilities cache, the default "
        "network and the programs vmdash uses; print the command that fixes each problem."
    )
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--for",
            dest="mode",
            choices=[m.value for m in Mode],
            default=Mode.TEST.value,
            help="what problems are judged against: make run (only warns) or make test",
        )
        parser.add_argument("--uri", default=SYSTEM_URI, help="the libvirt URI to check")

    def handle(self, *args: Any, **options: Any) -> None:
        mode = Mode(options["mode"])
        findings = run_checks(options["uri"])
        self.stdout.write(_("vmdash doctor, for make %(mode)s:") % {"mode": mode})
        for finding in findings:
            line = format_line(finding, mode)
            if finding.breaks(mode):
                line = self.style.ERROR(line)
            elif finding.status is Status.PROBLEM:
                line = self.style.WARNING(line)
            self.stdout.write(line)
        broken = sum(f.breaks(mode) for f in findings)
        if broken:
            raise CommandError(
                _("%(n)d problem(s) above break make %(mode)s (FAIL)") % {"n": broken, "mode": mode}
            )
        warned = sum(f.status is Status.PROBLEM for f in findings)
        summary = _("all that make %(mode)s needs is there") % {"mode": mode}
        if warned:
            summary += _(" (%(n)d warning(s))") % {"n": warned}
        self.stdout.write(self.style.SUCCESS(summary))
