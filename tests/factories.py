import factory

from registrar.models import Department, Employee, Team


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department

    name = factory.Sequence(lambda n: f"Department {n}")


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")
    department = factory.SubFactory(DepartmentFactory)


class EmployeeFactory(factory.django.DjangoModelFactory):
    """An employee stored directly, without events: for arranging a test."""

    class Meta:
        model = Employee

    full_name = factory.Faker("name")
    email = factory.Sequence(lambda n: f"person{n}@example.com")
    position = "Engineer"
    department = factory.SubFactory(DepartmentFactory)
    team = None
