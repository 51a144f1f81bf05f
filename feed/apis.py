"""The feed's REST API: read the feed, react to events, thank colleagues.

Reads use ``feed.selectors`` (the same keyset pages as the web feed, reaction
counts by annotation); writes call ``feed.services``. Thanks travel to the feed
through the outbox like every other event, so the answer to ``POST /thanks/``
comes before the feed shows it.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from portal.api import (
    IsStaffMember,
    StrictCharField,
    StrictPrimaryKeyRelatedField,
    field_error,
)
from registrar.models import Employee
from registrar.selectors import employee_active_list, employee_for_user

from .models import FeedEvent, Reaction
from .selectors import (
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    AmbiguousEventId,
    FeedEventNotFound,
    InvalidCursor,
    feed_department_filter,
    feed_event_get,
    feed_page,
)
from .services import FeedError, reaction_set, thanks_send

# --- Feed ---------------------------------------------------------------------


class ReactionCountsSerializer(serializers.Serializer):
    like = serializers.IntegerField(source="like_count")
    fire = serializers.IntegerField(source="fire_count")


class ReactedSerializer(serializers.Serializer):
    like = serializers.BooleanField(source="liked")
    fire = serializers.BooleanField(source="fired")


class FeedItemSerializer(serializers.ModelSerializer):
    id = serializers.CharField(
        source="event_id", help_text="The CloudEvent id (unique per source)."
    )
    # A field named like Serializer.data (the API's name for the event data).
    data = serializers.DictField(  # type: ignore[assignment]
        help_text="The CloudEvent data, per event type."
    )
    reactions = ReactionCountsSerializer(
        source="*", help_text="How many people reacted, per kind."
    )
    reacted = ReactedSerializer(
        source="*", help_text="Whether the requesting user reacted, per kind."
    )

    class Meta:
        model = FeedEvent
        fields = [
            "id",
            "source",
            "type",
            "time",
            "data",
            "text",
            "department",
            "department_id",
            "reactions",
            "reacted",
        ]


class FeedPageSerializer(serializers.Serializer):
    next = serializers.URLField(
        allow_null=True, help_text="The URL of the next, older page; null at the end."
    )
    next_cursor = serializers.CharField(
        allow_null=True, help_text="The `cursor` of the next page; null at the end."
    )
    results = FeedItemSerializer(many=True)


class FeedQuerySerializer(serializers.Serializer):
    cursor = serializers.CharField(required=False, max_length=500)
    type = serializers.CharField(required=False, max_length=100)
    department = serializers.CharField(required=False, max_length=120)
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_PAGE_SIZE, default=PAGE_SIZE
    )


class FeedView(APIView):
    """The company feed, newest first by when things happened."""

    permission_classes = [IsStaffMember]

    @extend_schema(
        summary="Read the feed",
        operation_id="feed_list",
        description=(
            "Newest first by the event `time`, then by arrival. Keyset (cursor) "
            "pagination: follow `next` (or pass `next_cursor` as `cursor`) for "
            "older events; pages stay stable while new events arrive."
        ),
        parameters=[
            OpenApiParameter("cursor", str, description="From `next_cursor`."),
            OpenApiParameter(
                "type", str, description="Only this event type, e.g. thanks.sent."
            ),
            OpenApiParameter(
                "department",
                str,
                description=(
                    "Department id (follows renames), or a department's current name."
                ),
            ),
            OpenApiParameter(
                "limit",
                int,
                description=f"Events per page, 1–{MAX_PAGE_SIZE} ({PAGE_SIZE}).",
            ),
        ],
        responses={200: FeedPageSerializer},
    )
    def get(self, request):
        query = FeedQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        try:
            events, next_cursor = feed_page(
                user=request.user,
                before=params.get("cursor"),
                event_type=params.get("type"),
                department_id=feed_department_filter(params.get("department")),
                limit=params["limit"],
            )
        except InvalidCursor as error:
            raise serializers.ValidationError({"cursor": [str(error)]}) from None
        next_url = None
        if next_cursor:
            next_url = replace_query_param(
                request.build_absolute_uri(), "cursor", next_cursor
            )
        page = {"next": next_url, "next_cursor": next_cursor, "results": events}
        return Response(FeedPageSerializer(page).data)


# --- Reactions ------------------------------------------------------------------


class KindCountsSerializer(serializers.Serializer):
    like = serializers.IntegerField()
    fire = serializers.IntegerField()


class ReactionStateSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The CloudEvent id.")
    # Fields named like Field.source (the API's name for the event source).
    source = serializers.CharField()  # type: ignore[assignment]
    kind = serializers.ChoiceField(choices=Reaction.Kind.choices)
    reacted = serializers.BooleanField(
        help_text="Whether the requesting user now has this reaction."
    )
    reactions = KindCountsSerializer(help_text="How many people reacted, per kind.")


class ReactionQuerySerializer(serializers.Serializer):
    source = serializers.CharField(  # type: ignore[assignment]
        required=False, max_length=200
    )


_REACTION_PARAMETERS = [
    OpenApiParameter(
        "event_id",
        OpenApiTypes.STR,
        OpenApiParameter.PATH,
        description="The CloudEvent id of the feed event.",
    ),
    OpenApiParameter(
        "kind",
        OpenApiTypes.STR,
        OpenApiParameter.PATH,
        enum=Reaction.Kind.values,
        description="The reaction.",
    ),
    OpenApiParameter(
        "source",
        str,
        description="The event's source, needed only when two sources used its id.",
    ),
]
_REACTION_RESPONSES = {
    200: ReactionStateSerializer,
    400: OpenApiResponse(description="Unknown kind, or an ambiguous event id."),
    404: OpenApiResponse(description="No such event on the feed."),
}


class ReactionView(APIView):
    """One person's reaction of one kind to one event: add it, take it back.

    Both are idempotent: adding an existing reaction or removing a missing one
    changes nothing and answers with the current state.
    """

    permission_classes = [IsStaffMember]

    def _feed_event(self, request, event_id: str) -> FeedEvent:
        query = ReactionQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            return feed_event_get(
                event_id=event_id, source=query.validated_data.get("source")
            )
        except FeedEventNotFound:
            raise NotFound("No such event on the feed.") from None
        except AmbiguousEventId:
            raise serializers.ValidationError(
                {"source": ["Several sources used this event id: give the source."]}
            ) from None

    def _set(self, request, event_id: str, kind: str, *, active: bool) -> Response:
        feed_event = self._feed_event(request, event_id)
        try:
            counts = reaction_set(
                feed_event=feed_event, user=request.user, kind=kind, active=active
            )
        except FeedError as error:
            raise field_error(error.message, error.field) from None
        state = {
            "id": feed_event.event_id,
            "source": feed_event.source,
            "kind": kind,
            "reacted": active,
            "reactions": counts,
        }
        return Response(ReactionStateSerializer(state).data)

    @extend_schema(
        summary="React to a feed event",
        parameters=_REACTION_PARAMETERS,
        request=None,
        responses=_REACTION_RESPONSES,
    )
    def post(self, request, event_id: str, kind: str):
        return self._set(request, event_id, kind, active=True)

    @extend_schema(
        summary="Take a reaction back",
        parameters=_REACTION_PARAMETERS,
        request=None,
        responses=_REACTION_RESPONSES,
    )
    def delete(self, request, event_id: str, kind: str):
        return self._set(request, event_id, kind, active=False)


# --- Thanks ---------------------------------------------------------------------


class EmployeeNameSerializer(serializers.ModelSerializer):
    class Meta:
        model = Employee
        fields = ["id", "full_name"]


class ThanksSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    from_employee = EmployeeNameSerializer()
    to_employee = EmployeeNameSerializer()
    message = serializers.CharField()
    created_at = serializers.DateTimeField()


class ThanksCreateSerializer(serializers.Serializer):
    to_employee = StrictPrimaryKeyRelatedField(
        queryset=employee_active_list(),
        help_text="The id of the colleague to thank.",
    )
    message = StrictCharField(max_length=500)


class ThanksView(APIView):
    """Thank a colleague; the feed shows it once the workers have applied it."""

    permission_classes = [IsStaffMember]

    @extend_schema(
        summary="Thank a colleague",
        description=(
            "The sender is the employee linked to the requesting user. Emits "
            "`thanks.sent` through the outbox; it reaches the feed shortly after."
        ),
        request=ThanksCreateSerializer,
        responses={201: ThanksSerializer},
    )
    def post(self, request):
        serializer = ThanksCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        sender = employee_for_user(user=request.user)
        if sender is None:
            raise serializers.ValidationError(
                {"non_field_errors": ["Your login is not linked to an employee."]}
            )
        try:
            thanks = thanks_send(
                from_employee=sender,
                to_employee=serializer.validated_data["to_employee"],
                message=serializer.validated_data["message"],
            )
        except FeedError as error:
            raise field_error(error.message, error.field) from None
        return Response(ThanksSerializer(thanks).data, status=status.HTTP_201_CREATED)
