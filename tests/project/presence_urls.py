"""Presence: views of the tests of extensions.presence."""
from django.urls import path

from . import presence_views

urlpatterns = [
    path('whoami/', presence_views.whoami),
    path('ws/<str:name>/', presence_views.room),
    path('ws/<str:name>/watch/', presence_views.watch),
    path('<str:name>/', presence_views.members),
]
