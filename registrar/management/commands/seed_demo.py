"""Build a small, believable company through the real services."""

import random
import secrets
import sys

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from feed.models import FeedEvent, Reaction
from feed.services import reaction_toggle, thanks_send
from portal.roles import HR_GROUP, STAFF_GROUP
from registrar.models import Department, Employee, Team
from registrar.services import (
    department_create,
    employee_change_position,
    employee_link_user,
    employee_move_to_team,
    employee_register,
    team_create,
)

COMPANY = {
    "Platform": ["Core", "Infrastructure", "Data"],
    "Product": ["Web", "Mobile", "Design"],
    "Finance": ["Payroll", "Controlling"],
    "People": ["Recruiting", "People Ops"],
    "Sales": ["Enterprise", "Partnerships"],
}
FIRST = [
    "Anna", "Ivan", "Olga", "Petr", "Maria", "Sergei", "Elena", "Dmitri", "Nina",
    "Lena", "Tomas", "Aiko", "Jonas", "Sofia", "Rahul", "Marta", "Karim", "Julia",
]  # fmt: skip
LAST = [
    "Petrova", "Ivanov", "Smirnova", "Sidorov", "Kuznetsova", "Popov", "Volkova",
    "Novak", "Tanaka", "Berg", "Rossi", "Mehta", "Garcia", "Haddad", "Lindqvist",
]  # fmt: skip
POSITIONS = [
    "Backend Engineer", "Frontend Engineer", "Designer", "Data Analyst",
    "Product Manager", "Accountant", "Recruiter", "Account Executive", "SRE",
]  # fmt: skip
THANKS = [
    "for the quick review on Friday",
    "for covering my on-call shift",
    "for the great onboarding session",
    "for untangling the quarterly report",
    "for the coffee and the good advice",
    "for shipping the fix before the demo",
]
# Demo logins: username -> (role group, employee name, position, department).
DEMO_USERS = {
    "hr": (HR_GROUP, "Helena Rask", "HR Partner", "People"),
    "staff": (STAFF_GROUP, "Sam Okafor", "Backend Engineer", "Platform"),
}


class Progress:
    """A one-line text progress bar on stdout."""

    def __init__(self, out, label: str, total: int, width: int = 30) -> None:
        self.out, self.label, self.total, self.width = out, label, max(total, 1), width
        self.done = 0
        self.tty = getattr(out, "isatty", lambda: False)() or sys.stdout.isatty()

    def step(self, n: int = 1) -> None:
        self.done += n
        if self.tty or self.done >= self.total:
            filled = self.width * self.done // self.total
            bar = "#" * filled + "-" * (self.width - filled)
            end = "\n" if self.done >= self.total else "\r"
            self.out.write(
                f"{self.label:<12} [{bar}] {self.done}/{self.total}", ending=end
            )
            self.out.flush()


class Command(BaseCommand):
    help = (
        "Create demo users (admin, hr, staff) and a demo company through the "
        "real services, so every change is an event on the feed. Safe to run "
        "again: it adds the company only once, and reactions once the feed has "
        "events."
    )

    def add_arguments(self, parser):
        parser.add_argument("--employees", type=int, default=24)
        parser.add_argument(
            "--events",
            type=int,
            default=30,
            help="Changes after the registrations: promotions, moves, thanks.",
        )
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, employees: int, events: int, seed: int, **options):
        rng = random.Random(seed)
        password = self._demo_password()
        if Employee.objects.exists():
            self.stdout.write("Demo company exists; no people added.")
        else:
            self._company(employees, events, rng)
        self._users(password)
        self._reactions(rng)
        self.stdout.write(
            self.style.SUCCESS(
                "Demo logins (password for all three: "
                f"{password}, saved in {self._path()}):\n"
                "  admin  superuser: Django admin, everything\n"
                "  hr     HR: registrar pages, feed\n"
                "  staff  Staff: feed, reactions, thanks"
            )
        )

    def _path(self):
        return settings.VAR_DIR / "demo-credentials.txt"

    def _demo_password(self) -> str:
        path = self._path()
        if path.exists():
            return path.read_text().strip()
        password = secrets.token_urlsafe(12)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(password + "\n")
        path.chmod(0o600)
        return password

    def _users(self, password: str) -> None:
        users = get_user_model().objects
        if not users.filter(username="admin").exists():
            users.create_superuser("admin", "admin@example.com", password)
        for username, (group, name, position, department) in DEMO_USERS.items():
            user = users.filter(username=username).first()
            if user is None:
                user = users.create_user(username, f"{username}@example.com", password)
            user.groups.add(Group.objects.get(name=group))
            employee = Employee.objects.filter(email=f"{username}@example.com").first()
            if employee is None:
                department_obj = Department.objects.filter(name=department).first()
                department_obj = department_obj or department_create(name=department)
                employee = employee_register(
                    full_name=name,
                    email=f"{username}@example.com",
                    position=position,
                    department=department_obj,
                    team=department_obj.teams.first(),
                )
            if employee.user_id is None:
                employee_link_user(employee=employee, user=user)

    @transaction.atomic
    def _company(self, count: int, changes: int, rng: random.Random) -> None:
        teams: list[Team] = []
        for name, team_names in COMPANY.items():
            department = Department.objects.filter(name=name).first()
            department = department or department_create(name=name)
            teams += [team_create(name=t, department=department) for t in team_names]
        people = []
        bar = Progress(self.stdout, "people", count)
        for i in range(count):
            team = rng.choice(teams)
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            people.append(
                employee_register(
                    full_name=name,
                    email=f"{name.lower().replace(' ', '.')}.{i}@example.com",
                    position=rng.choice(POSITIONS),
                    department=team.department,
                    team=team,
                )
            )
            bar.step()
        bar = Progress(self.stdout, "changes", changes)
        for _ in range(changes):
            person = rng.choice(people)
            roll = rng.random()
            if roll < 0.25:
                employee_change_position(
                    employee=person,
                    position=rng.choice(["Team Lead", "Staff Engineer"]),
                )
            elif roll < 0.45:
                employee_move_to_team(employee=person, team=rng.choice(teams))
            elif len(people) > 1:
                other = rng.choice([p for p in people if p.pk != person.pk])
                thanks_send(
                    from_employee=person,
                    to_employee=other,
                    message=rng.choice(THANKS),
                )
            bar.step()

    def _reactions(self, rng: random.Random) -> None:
        """React to feed events with the demo users, once. The feed fills
        asynchronously, so on a first run there may be nothing to react to."""
        if Reaction.objects.exists():
            return
        events = list(FeedEvent.objects.order_by("-time")[:40])
        if not events:
            self.stdout.write("Feed still empty: reactions are added on the next run.")
            return
        users = list(get_user_model().objects.filter(username__in=["hr", "staff"]))
        bar = Progress(self.stdout, "reactions", len(events))
        for event in events:
            for user in users:
                for kind in Reaction.Kind.values:
                    if rng.random() < 0.35:
                        reaction_toggle(feed_event=event, user=user, kind=kind)
            bar.step()
