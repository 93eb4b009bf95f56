from django.contrib.auth import views as auth_views
from django.urls import path

from . import db_views, stats_views, views

urlpatterns = [
    path('', views.plain, name='plain'),
    path('accounts/login/', auth_views.LoginView.as_view()),
    path('db/', views.database_connections),
    path('users/', views.user_count),
    path('boom/', views.plain_boom),
    path('slow/', views.slow),
    path('process/', views.process),
    path('ws/process/', views.process_socket),
    path('sse/process/', views.process_events),
    path('block/', views.blocks),
    path('offloaded/', views.offloaded),
    path('ws/transaction/', views.in_transaction),
    path('ws/echo/', views.echo),
    path('ws/drops-first/', views.drops_first_message),
    path('ws/small/', views.small_echo),
    path('ws/whoami/', views.whoami),
    path('ws/boom/', views.boom),
    path('ws/returns/', views.returns),
    path('ws/subprotocol/', views.subprotocol),
    path('ws/senders/', views.two_senders),
    path('ws/db/', views.uses_database),
    path('ws/send-after-close/', views.send_after_close),
    path('ws/room/<str:name>/', views.room),
    path('publish/<str:name>/', views.publish_to_group),
    path('sse/ticks/', views.ticks),
    path('sse/group/<str:name>/', views.group_events),
    path('db/driver/', db_views.driver),
    path('db/sleep/', db_views.sleep),
    path('ws/permissions/', db_views.count_permissions),
    path('stats/', stats_views.stats),
]
