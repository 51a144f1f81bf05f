import sys

from django.core.management.base import BaseCommand

from portal.messaging.doctor import OK, PROBLEM, WARNING, doctor_run

MARK = {OK: "ok     ", WARNING: "WARNING", PROBLEM: "PROBLEM"}


class Command(BaseCommand):
    help = (
        "Check the live database and broker against what the portal needs "
        "(queues, dead-letter exchange, timeouts, the relay, stuck events) and "
        "explain each problem. Exits 1 if there is one."
    )

    def handle(self, *args, **options):
        findings = doctor_run()
        for finding in findings:
            self.stdout.write(
                f"{MARK[finding.level]} {finding.check}: {finding.message}"
            )
            if finding.explanation and finding.level != OK:
                self.stdout.write(f"        {finding.explanation}")
        problems = sum(f.level == PROBLEM for f in findings)
        warnings = sum(f.level == WARNING for f in findings)
        self.stdout.write(f"\n{problems} problem(s), {warnings} warning(s).")
        if problems:
            sys.exit(1)
