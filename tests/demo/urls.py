from django.contrib import admin
from django.urls import include, path

from tests.demo.views import HomeView

urlpatterns = [
    path("", HomeView.as_view(), name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("activity/", include("actrack_dashboard.urls")),
    path("admin/", admin.site.urls),
]
