"""The portal's roles, as Django groups created by a registrar migration.

- HR: registrar actions (register, change, move employees; rename departments).
- Staff: read the feed, react, thank colleagues.
- Admins: ``is_staff``/superuser users: the Django admin and Flower.
"""

HR_GROUP = "HR"
STAFF_GROUP = "Staff"

_STAFF_PERMISSIONS = [
    "registrar.view_employee",
    "registrar.view_department",
    "registrar.view_team",
    "feed.view_feedevent",
    "feed.add_reaction",
    "feed.delete_reaction",
    "feed.add_thanks",
]
ROLE_PERMISSIONS = {
    HR_GROUP: [
        *(
            f"registrar.{a}_{m}"
            for m in ("employee", "department", "team")
            for a in ("add", "change")
        ),
        *_STAFF_PERMISSIONS,
    ],
    STAFF_GROUP: _STAFF_PERMISSIONS,
}


def ensure_roles(**kwargs) -> None:
    """Create the role groups with their permissions if they are missing.

    The registrar migration creates them; this runs after every migrate (and
    every test-database flush, which empties the groups table) to keep them.
    """
    from django.apps import apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    for app_config in apps.get_app_configs():
        create_permissions(
            app_config, verbosity=0, using=kwargs.get("using", "default")
        )
    for name, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        if group.permissions.exists():
            continue
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(
                Permission.objects.get(
                    content_type__app_label=app_label, codename=codename
                )
            )


def _active(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def _in_group(user, *names: str) -> bool:
    # Cache the user's group names on the instance: pages ask more than once.
    cached = getattr(user, "_portal_group_names", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        user._portal_group_names = cached
    return any(name in cached for name in names)


def is_hr(user) -> bool:
    """HR group member or superuser."""
    if not _active(user):
        return False
    return user.is_superuser or _in_group(user, HR_GROUP)


def is_staff_member(user) -> bool:
    """Anyone who may read the feed, react and thank: Staff, HR or an admin."""
    if not _active(user):
        return False
    return user.is_staff or user.is_superuser or _in_group(user, STAFF_GROUP, HR_GROUP)


def role_required(check):
    """A view decorator: anonymous users go to the login page, logged-in users
    failing ``check`` get 403 (PermissionDenied)."""
    from functools import wraps

    from django.contrib.auth.views import redirect_to_login
    from django.core.exceptions import PermissionDenied

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not check(request.user):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


hr_required = role_required(is_hr)
staff_member_required = role_required(is_staff_member)
