"""The user's group names, kept in the session at login, as ws4redis keeps them.

A websocket's ``subscribe-group`` and a publisher's ``groups=[SELF]`` read them from the
session, as ws4redis did, so pages logged in under ws4redis keep their groups after the
switch, and both servers can run side by side.
"""
from django.contrib.auth.signals import user_logged_in

#: The session key ws4redis stores the group names under.
MEMBEROF = 'ws4redis:memberof'


def store_groups_in_session(sender, user, request, **kwargs):
    """``user_logged_in`` receiver (connected by the app's ``ready``)."""
    if hasattr(user, 'groups') and request is not None and hasattr(request, 'session'):
        request.session[MEMBEROF] = [group.name for group in user.groups.all()]


def connect():
    user_logged_in.connect(store_groups_in_session, dispatch_uid=__name__)
