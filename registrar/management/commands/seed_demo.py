"""Build a small, believable company through the real registrar services."""

import random
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from registrar.models import Department, Employee
from registrar.services import (
    department_create,
    employee_change_position,
    employee_register,
    team_create,
)

COMPANY = {
    "Platform": ["Core", "Infrastructure"],
    "Product": ["Web", "Mobile"],
    "Finance": ["Payroll"],
    "People": ["Recruiting"],
}
FIRST = ["Anna", "Ivan", "Olga", "Petr", "Maria", "Sergei", "Elena", "Dmitri", "Nina"]
LAST = ["Petrova", "Ivanov", "Smirnova", "Sidorov", "Kuznetsova", "Popov", "Volkova"]
POSITIONS = ["Engineer", "Senior Engineer", "Designer", "Analyst", "Product Manager"]


class Command(BaseCommand):
    help = (
        "Create demo users and a demo company (through the registrar services, "
        "so every change is an event on the feed). Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--employees", type=int, default=12)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, employees: int, seed: int, **options):
        password = self._demo_password()
        user_model = get_user_model()
        admin = user_model.objects.filter(username="admin").first()
        if admin is None:
            user_model.objects.create_superuser("admin", "admin@example.com", password)
        if Employee.objects.exists():
            self.stdout.write("Demo company exists; nothing added.")
        else:
            self._company(employees, random.Random(seed))
        login = f"Log in as admin / {password} (saved in {self._path()})"
        self.stdout.write(self.style.SUCCESS(login))

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

    def _company(self, count: int, rng: random.Random) -> None:
        teams = []
        for name, team_names in COMPANY.items():
            department = Department.objects.filter(name=name).first()
            department = department or department_create(name=name)
            teams += [team_create(name=t, department=department) for t in team_names]
        people = []
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
        for person in rng.sample(people, k=min(3, len(people))):
            employee_change_position(employee=person, position="Team Lead")
        self.stdout.write(f"Registered {len(people)} employees in {len(teams)} teams.")
