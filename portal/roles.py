"""The portal's roles, as Django groups created by a registrar migration.

- HR: registrar actions (register, change, move employees; rename departments).
- Staff: read the feed, react, thank colleagues.
- Admins: ``is_staff``/superuser users: the Django admin and Flower.
"""

HR_GROUP = "HR"
STAFF_GROUP = "Staff"


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
