"""Permission classes of the API, one per role in ``portal.roles``."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from portal.roles import is_hr, is_staff_member


class IsStaffMember(BasePermission):
    """Staff, HR and admins: read the feed and the registrar, react, thank."""

    message = "Only staff members may use this."

    def has_permission(self, request, view) -> bool:
        return is_staff_member(request.user)


class IsHR(BasePermission):
    """HR (and superusers): the registrar's writes."""

    message = "Only HR may change the registrar."

    def has_permission(self, request, view) -> bool:
        return is_hr(request.user)


class ReadStaffWriteHR(BasePermission):
    """Staff members read; only HR writes."""

    message = "Only HR may change the registrar."

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            if not is_staff_member(request.user):
                self.message = IsStaffMember.message
                return False
            return True
        return is_hr(request.user)
