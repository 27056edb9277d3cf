"""URLs of the admin tests: the default admin site plus the sites of ``sites.py``."""

from django.contrib import admin
from django.urls import path

from tests.test_admin.sites import quiet_site, site

urlpatterns = [
    path("admin/", admin.site.urls),
    path("custom-admin/", site.urls),
    path("quiet-admin/", quiet_site.urls),
]
