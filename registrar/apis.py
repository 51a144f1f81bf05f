"""The registrar's REST API: staff members read, HR writes through the services.

Every write calls a function of ``registrar.services``, so it stores its event
in the outbox in the same transaction as the change, exactly like the web UI.
A ``RegistrarError`` becomes a 400 with the field it concerns.
"""

from typing import TYPE_CHECKING

from django.db import transaction
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from portal.api import (
    ReadStaffWriteHR,
    StrictCharField,
    StrictEmailField,
    StrictPrimaryKeyRelatedField,
    field_error,
)

from .models import Department, Employee, Onboarding, Team
from .selectors import employee_search, team_list
from .services import (
    RegistrarError,
    department_rename,
    employee_change_position,
    employee_move_to_team,
    employee_register,
)

if TYPE_CHECKING:
    _SerializerBase = serializers.Serializer
else:
    _SerializerBase = object


class RejectUnknownFieldsMixin(_SerializerBase):
    """Refuse keys the serializer does not take, instead of ignoring them: a
    client that sends ``full_name`` to an update must learn it changed nothing."""

    def validate(self, attrs):
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {name: ["This field cannot be set here."] for name in unknown}
            )
        return super().validate(attrs)


# --- Output -------------------------------------------------------------------


class DepartmentRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Department
        fields = ["id", "name"]


class TeamRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Team
        fields = ["id", "name"]


class DepartmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Department
        fields = ["id", "name", "created_at"]


class TeamSerializer(serializers.ModelSerializer):
    department = DepartmentRefSerializer(read_only=True)

    class Meta:
        model = Team
        fields = ["id", "name", "department", "created_at"]


class OnboardingSerializer(serializers.ModelSerializer):
    failures = serializers.DictField(
        child=serializers.CharField(),
        read_only=True,
        help_text="The failed steps (welcome_mail, account) and why.",
    )

    class Meta:
        model = Onboarding
        fields = [
            "status",
            "welcome_sent_at",
            "account_id",
            "account_provisioned_at",
            "failures",
            "retries",
            "ready_at",
        ]


class EmployeeSerializer(serializers.ModelSerializer):
    department = DepartmentRefSerializer(read_only=True)
    team = TeamRefSerializer(read_only=True, allow_null=True)
    onboarding = serializers.SerializerMethodField(
        help_text="Where the welcome mail and the directory account stand: "
        "pending, ready, or failed with why; null if not tracked."
    )

    class Meta:
        model = Employee
        fields = [
            "id",
            "full_name",
            "email",
            "position",
            "department",
            "team",
            "hired_on",
            "is_active",
            "onboarding",
        ]

    @extend_schema_field(OnboardingSerializer(allow_null=True))
    def get_onboarding(self, employee: Employee) -> dict | None:
        onboarding = getattr(employee, "onboarding", None)
        return OnboardingSerializer(onboarding).data if onboarding else None


# --- Input --------------------------------------------------------------------


class EmployeeRegisterSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    full_name = StrictCharField(max_length=200)
    email = StrictEmailField(max_length=254)
    position = StrictCharField(max_length=120)
    department = StrictPrimaryKeyRelatedField(
        queryset=Department.objects.all(), help_text="Department id."
    )
    team = StrictPrimaryKeyRelatedField(
        queryset=Team.objects.all(),
        required=False,
        allow_null=True,
        help_text="Team id, in the department; null or absent for none.",
    )
    hired_on = serializers.DateField(
        required=False, allow_null=True, help_text="Defaults to today."
    )


class EmployeeUpdateSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    position = StrictCharField(
        max_length=120,
        required=False,
        help_text="New position; emits employee.position_changed.",
    )
    team = StrictPrimaryKeyRelatedField(
        queryset=Team.objects.all(),
        required=False,
        allow_null=True,
        help_text=(
            "Team id to move to, null to leave any team; emits team.member_left/"
            "team.member_joined. A team of another department moves the "
            "employee to that department."
        ),
    )

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if not attrs:
            raise serializers.ValidationError(
                {"non_field_errors": ["Give a new position, a team, or both."]}
            )
        return attrs


class DepartmentRenameSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    name = StrictCharField(max_length=120)


class EmployeeFilterSerializer(serializers.Serializer):
    search = serializers.CharField(required=False, allow_blank=True, max_length=200)
    department = serializers.IntegerField(required=False, min_value=1)
    team = serializers.IntegerField(required=False, min_value=1)
    onboarding = serializers.ChoiceField(
        required=False, choices=Onboarding.Status.choices
    )


class TeamFilterSerializer(serializers.Serializer):
    department = serializers.IntegerField(required=False, min_value=1)


def query_params(serializer_class, request) -> dict:
    """The request's query parameters validated by ``serializer_class``: a bad
    value is a 400 naming the parameter, never a database error."""
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- Views --------------------------------------------------------------------


class EmployeePagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


@extend_schema_view(
    list=extend_schema(
        summary="List employees",
        parameters=[
            OpenApiParameter(
                "search", str, description="Part of the name, email or position."
            ),
            OpenApiParameter("department", int, description="Department id."),
            OpenApiParameter("team", int, description="Team id."),
            OpenApiParameter(
                "onboarding",
                str,
                enum=Onboarding.Status.values,
                description="Only employees whose onboarding has this status.",
            ),
        ],
    ),
    retrieve=extend_schema(summary="One employee"),
    create=extend_schema(
        summary="Register an employee (HR)",
        description="Emits `employee.registered` to the feed.",
        request=EmployeeRegisterSerializer,
        responses={201: EmployeeSerializer},
    ),
    partial_update=extend_schema(
        summary="Change position and/or move to a team (HR)",
        description=(
            "Both changes, when given, are made in one transaction; each emits "
            "its events to the feed. Other fields cannot be changed here."
        ),
        request=EmployeeUpdateSerializer,
        responses={200: EmployeeSerializer},
    ),
)
class EmployeeViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Employees: any staff member reads, HR registers and changes."""

    serializer_class = EmployeeSerializer
    permission_classes = [ReadStaffWriteHR]
    pagination_class = EmployeePagination
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        if self.action != "list":
            return employee_search()
        params = query_params(EmployeeFilterSerializer, self.request)
        return employee_search(
            query=params.get("search", ""),
            department_id=params.get("department"),
            team_id=params.get("team"),
            onboarding=params.get("onboarding"),
        )

    def create(self, request):
        serializer = EmployeeRegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            employee = employee_register(**serializer.validated_data)
        except RegistrarError as error:
            raise field_error(error.message, error.field) from None
        return Response(
            EmployeeSerializer(employee).data, status=status.HTTP_201_CREATED
        )

    def partial_update(self, request, pk=None):
        employee = self.get_object()
        serializer = EmployeeUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = serializer.validated_data
        try:
            with transaction.atomic():
                if "position" in changes:
                    employee = employee_change_position(
                        employee=employee, position=changes["position"]
                    )
                if "team" in changes:
                    employee = employee_move_to_team(
                        employee=employee, team=changes["team"]
                    )
        except RegistrarError as error:
            raise field_error(error.message, error.field) from None
        employee = self.get_queryset().get(pk=employee.pk)
        return Response(EmployeeSerializer(employee).data)


@extend_schema_view(
    list=extend_schema(summary="List departments"),
    retrieve=extend_schema(summary="One department"),
    partial_update=extend_schema(
        summary="Rename a department (HR)",
        description="Emits `department.renamed` to the feed.",
        request=DepartmentRenameSerializer,
        responses={200: DepartmentSerializer},
    ),
)
class DepartmentViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Departments: any staff member reads, HR renames."""

    queryset = Department.objects.order_by("name")
    serializer_class = DepartmentSerializer
    permission_classes = [ReadStaffWriteHR]
    http_method_names = ["get", "patch", "head", "options"]

    def partial_update(self, request, pk=None):
        department = self.get_object()
        serializer = DepartmentRenameSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            department = department_rename(
                department=department, name=serializer.validated_data["name"]
            )
        except RegistrarError as error:
            raise field_error(error.message, error.field) from None
        return Response(DepartmentSerializer(department).data)


@extend_schema_view(
    list=extend_schema(
        summary="List teams",
        parameters=[OpenApiParameter("department", int, description="Department id.")],
    ),
    retrieve=extend_schema(summary="One team"),
)
class TeamViewSet(viewsets.ReadOnlyModelViewSet):
    """Teams, read by any staff member."""

    serializer_class = TeamSerializer
    permission_classes = [ReadStaffWriteHR]

    def get_queryset(self):
        if self.action == "list":
            params = query_params(TeamFilterSerializer, self.request)
            return team_list(department_id=params.get("department"))
        return team_list()
