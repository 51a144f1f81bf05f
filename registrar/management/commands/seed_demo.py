"""Build a small, believable company through the real services."""

import datetime
import random
import secrets
import sys

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from feed.models import FeedEvent, Reaction
from feed.services import reaction_toggle, thanks_send
from portal.messaging.eventlog import event_log_backdated
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
# Names that belong together: per locale, given names (with a grammatical
# gender where family names agree with it) and family names.
NAMES: dict[str, dict[str, list[str | tuple[str, str]]]] = {
    "ru": {
        "f": ["Anna", "Olga", "Maria", "Elena", "Nina", "Irina", "Daria"],
        "m": ["Ivan", "Petr", "Sergei", "Dmitri", "Alexei", "Mikhail"],
        # (male, female) forms
        "family": [("Petrov", "Petrova"), ("Ivanov", "Ivanova"),
                   ("Smirnov", "Smirnova"), ("Volkov", "Volkova"),
                   ("Kuznetsov", "Kuznetsova"), ("Sokolov", "Sokolova")],
    },
    "se": {
        "f": ["Sofia", "Elin", "Maja", "Astrid"],
        "m": ["Jonas", "Erik", "Lars", "Oskar"],
        "family": ["Lindqvist", "Berg", "Johansson", "Nyström", "Ekström"],
    },
    "jp": {
        "f": ["Aiko", "Yuki", "Haruka", "Mei"],
        "m": ["Kenji", "Takumi", "Hiroshi", "Ren"],
        "family": ["Tanaka", "Suzuki", "Sato", "Watanabe", "Kobayashi"],
    },
    "it": {
        "f": ["Marta", "Giulia", "Chiara", "Francesca"],
        "m": ["Marco", "Luca", "Matteo", "Giorgio"],
        "family": ["Rossi", "Bianchi", "Romano", "Esposito", "Ricci"],
    },
    "in": {
        "f": ["Priya", "Ananya", "Kavya", "Neha"],
        "m": ["Rahul", "Arjun", "Vikram", "Rohan"],
        "family": ["Mehta", "Sharma", "Iyer", "Nair", "Reddy"],
    },
    "es": {
        "f": ["Lucía", "Carmen", "Elena", "Paula"],
        "m": ["Javier", "Pablo", "Diego", "Andrés"],
        "family": ["García", "Martínez", "López", "Fernández", "Ruiz"],
    },
    "ng": {
        "f": ["Chiamaka", "Ngozi", "Adaeze", "Folake"],
        "m": ["Chinedu", "Emeka", "Tunde", "Obinna"],
        "family": ["Okafor", "Adeyemi", "Eze", "Balogun", "Nwosu"],
    },
}  # fmt: skip
# Career ladders per department, from where people start to where a
# promotion can take them; promotions only go up.
LADDERS = {
    "Platform": [["Backend Engineer", "Senior Backend Engineer", "Staff Engineer",
                  "Principal Engineer"],
                 ["Site Reliability Engineer", "Senior SRE", "SRE Lead"],
                 ["Data Engineer", "Senior Data Engineer", "Data Platform Lead"]],
    "Product": [["Frontend Engineer", "Senior Frontend Engineer",
                 "Staff Frontend Engineer"],
                ["Product Designer", "Senior Product Designer", "Design Lead"],
                ["Product Manager", "Senior Product Manager", "Head of Product"]],
    "Finance": [["Accountant", "Senior Accountant", "Finance Manager"],
                ["Financial Analyst", "Senior Financial Analyst", "Controller"]],
    "People": [["Recruiter", "Senior Recruiter", "Talent Lead"],
               ["People Partner", "Senior People Partner", "Head of People"]],
    "Sales": [["Account Executive", "Senior Account Executive", "Sales Director"],
              ["Partner Manager", "Senior Partner Manager", "Head of Partnerships"]],
}  # fmt: skip
THANKS = [
    "for the quick review on Friday",
    "for covering my on-call shift",
    "for the great onboarding session",
    "for untangling the quarterly report",
    "for the coffee and the good advice",
    "for shipping the fix before the demo",
    "for walking me through the payroll run",
    "for the thorough design critique",
    "for staying late to close the deal",
    "for pairing with me on the flaky test",
]
# People with logins of their own (no password anyone knows) who react to
# the feed beside the demo users, so reactions come from several people.
COLLEAGUES_WHO_REACT = 6
# How far back the demo company's history goes.
HISTORY_DAYS = 42


def person_name(rng: random.Random) -> str:
    """A given and family name that belong to one locale (and agree)."""
    locale = NAMES[rng.choice(sorted(NAMES))]
    gender = rng.choice(["f", "m"])
    given = rng.choice(locale[gender])
    family = rng.choice(locale["family"])
    if isinstance(family, tuple):
        family = family[1] if gender == "f" else family[0]
    return f"{given} {family}"


def working_moment(rng: random.Random, day: datetime.date) -> datetime.datetime:
    """A time on a working day between 8:30 and 18:00 UTC (weekends move to
    the Monday after)."""
    while day.weekday() >= 5:
        day += datetime.timedelta(days=1)
    minutes = rng.randint(8 * 60 + 30, 18 * 60)
    return datetime.datetime.combine(
        day, datetime.time(minutes // 60, minutes % 60), tzinfo=datetime.UTC
    )


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
        parser.add_argument("--employees", type=int, default=40)
        parser.add_argument(
            "--events",
            type=int,
            default=60,
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
        self._reactions(seed)
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
                # Here from the start of the demo's history, like the others.
                start = timezone.now().date() - datetime.timedelta(days=HISTORY_DAYS)
                moment = working_moment(random.Random(username), start)
                with event_log_backdated(moment):
                    employee = employee_register(
                        full_name=name,
                        email=f"{username}@example.com",
                        position=position,
                        department=department_obj,
                        team=department_obj.teams.first(),
                        hired_on=moment.date(),
                    )
            if employee.user_id is None:
                employee_link_user(employee=employee, user=user)

    @transaction.atomic
    def _company(self, count: int, changes: int, rng: random.Random) -> None:
        """The company's last weeks, replayed through the services at the
        times they happened: hires first (each on their first day), then
        promotions up their ladder, team moves and thanks, in time order."""
        teams: dict[str, list[Team]] = {}
        for name, team_names in COMPANY.items():
            department = Department.objects.filter(name=name).first()
            department = department or department_create(name=name)
            teams[name] = [
                team_create(name=t, department=department) for t in team_names
            ]
        now = timezone.now()
        start = now.date() - datetime.timedelta(days=HISTORY_DAYS)
        # Hires over the first two thirds, a few at a time (a start date).
        hires = sorted(
            working_moment(
                rng,
                start + datetime.timedelta(days=rng.randint(0, HISTORY_DAYS * 2 // 3)),
            )
            for _ in range(count)
        )
        people: list[tuple[Employee, list[str], int]] = []  # (who, ladder, rung)
        used_names: set[str] = set()
        bar = Progress(self.stdout, "people", count)
        for i, moment in enumerate(hires):
            department_name = rng.choice(sorted(COMPANY))
            team = rng.choice(teams[department_name])
            ladder = rng.choice(LADDERS[department_name])
            name = person_name(rng)
            while name in used_names and len(used_names) < 500:
                name = person_name(rng)
            used_names.add(name)
            email = name.lower().replace(" ", ".")
            with event_log_backdated(moment):
                employee = employee_register(
                    full_name=name,
                    email=f"{email}.{i}@example.com",
                    position=ladder[0],
                    department=team.department,
                    team=team,
                    hired_on=moment.date(),
                )
            people.append((employee, ladder, 0))
            bar.step()
        bar = Progress(self.stdout, "changes", changes)
        # Changes on working days from the first hire to now, each to
        # someone already hired then.
        days = max((now.date() - start).days, 1)
        moments = sorted(
            min(
                working_moment(
                    rng, start + datetime.timedelta(days=rng.randint(1, days))
                ),
                now - datetime.timedelta(minutes=rng.randint(5, 240)),
            )
            for _ in range(changes)
        )
        for moment in moments:
            hired = [i for i, when in enumerate(hires) if when < moment]
            if not hired:
                bar.step()
                continue
            index = rng.choice(hired)
            employee, ladder, rung = people[index]
            roll = rng.random()
            with event_log_backdated(moment):
                if roll < 0.3 and rung + 1 < len(ladder):
                    rung += 1
                    employee = employee_change_position(
                        employee=employee, position=ladder[rung]
                    )
                elif roll < 0.45:
                    department_name = employee.department.name
                    choices = [
                        t for t in teams[department_name] if t.pk != employee.team_id
                    ]
                    employee = employee_move_to_team(
                        employee=employee, team=rng.choice(choices)
                    )
                elif len(hired) > 1:
                    other = rng.choice(
                        [people[i][0] for i in hired if people[i][0].pk != employee.pk]
                    )
                    thanks_send(
                        from_employee=employee,
                        to_employee=other,
                        message=rng.choice(THANKS),
                    )
            people[index] = (employee, ladder, rung)
            bar.step()
        self._colleagues(people=[p for p, _, _ in people], rng=rng)

    def _colleagues(self, *, people: list[Employee], rng: random.Random) -> None:
        """Logins for a few colleagues (no usable password), to react."""
        users = get_user_model().objects
        staff = Group.objects.get(name=STAFF_GROUP)
        for employee in rng.sample(people, min(COLLEAGUES_WHO_REACT, len(people))):
            username = employee.email.split("@")[0]
            user = users.create_user(username, employee.email)
            user.set_unusable_password()
            user.save(update_fields=["password"])
            user.groups.add(staff)
            employee_link_user(employee=employee, user=user)

    def _reactions(self, seed: int) -> None:
        """React to the newest feed events with the demo's people, each event
        once: an event someone already reacted to is left alone, and each
        event's reactions are drawn from its own seed, so running again only
        fills in events the feed applied since (it fills asynchronously, so
        the first run may find few or none)."""
        reacted = Reaction.objects.values("feed_event")
        events = list(FeedEvent.objects.exclude(pk__in=reacted).order_by("-time")[:60])
        if not FeedEvent.objects.exists():
            self.stdout.write("Feed still empty: reactions are added on the next run.")
            return
        users = list(
            get_user_model()
            .objects.filter(employee__isnull=False, is_superuser=False)
            .order_by("pk")
        )
        bar = Progress(self.stdout, "reactions", len(events))
        for event in events:
            rng = random.Random(f"{seed}:{event.source}:{event.event_id}")
            # Thanks and promotions draw more reactions than team moves.
            likely = {"thanks.sent": 0.45, "employee.position_changed": 0.4}.get(
                event.type, 0.2
            )
            for user in users:
                for kind in Reaction.Kind.values:
                    if rng.random() < (likely if kind == "like" else likely / 2):
                        reaction_toggle(feed_event=event, user=user, kind=kind)
            bar.step()
