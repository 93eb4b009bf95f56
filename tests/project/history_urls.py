"""History and recovery: views of the tests of extensions.pubsub history."""
from django.urls import path

from . import history_views

urlpatterns = [
    path('ws/<str:name>/', history_views.room),
    path('sse/<str:name>/', history_views.events),
    path('publish/<str:name>/', history_views.publish_to_room),
    path('recover-at-once/<str:name>/', history_views.recover_at_once),
]
