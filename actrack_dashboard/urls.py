"""``path("activity/", include("actrack_dashboard.urls"))``: namespace ``actrack_dashboard``."""

from django.urls import path

from actrack_dashboard import views

app_name = "actrack_dashboard"

urlpatterns = [
    path("", views.feed, name="feed"),
    path(
        "objects/<int:content_type_id>/<str:object_id>/",
        views.object_actions,
        name="object_actions",
    ),
    path("actions/<int:action_id>/read/", views.mark_read, name="mark_read"),
    path("read-all/", views.mark_all_read, name="mark_all_read"),
    path("unread-count/", views.unread_count, name="unread_count"),
    path("following/", views.trackers, name="trackers"),
    path("following/track/", views.track, name="track"),
    path("following/untrack/", views.untrack, name="untrack"),
]
