"""The "Activity" link of change pages: ActivityLinkMixin, the automatic template for
connected models, and the dashboard mixin for custom admin sites."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.test import Client

import actrack
from tests.conftest import make_note, make_station, make_train
from tests.test_admin.conftest import ids, log

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.test_admin.urls")]

ACTRACK_TEMPLATES = Path(actrack.__file__).parent / "templates"
LINK = 'class="actrack-activity-link"'


@pytest.fixture
def actrack_templates_first(settings: Any) -> None:
    """As if "actrack" came before "django.contrib.admin" in INSTALLED_APPS."""
    engine = dict(settings.TEMPLATES[0])
    engine["DIRS"] = [ACTRACK_TEMPLATES, *engine["DIRS"]]
    settings.TEMPLATES = [engine]


def activity_query(obj: Any) -> str:
    ct = ContentType.objects.get_for_model(obj)
    return f"object_ct={ct.pk}&amp;object_key={obj.pk}"


def test_mixin_adds_the_link_to_the_change_page(staff_client: Client) -> None:
    station = make_station("Ashbury")
    html = staff_client.get(f"/custom-admin/demo/station/{station.pk}/change/").content.decode()
    assert html.count(LINK) == 1
    assert f'href="/custom-admin/actrack/action/?{activity_query(station)}"' in html
    # The admin's own object tools are still there.
    assert "historylink" in html


def test_the_link_opens_the_objects_actions(staff_client: Client) -> None:
    station, other = make_station("Ashbury"), make_station("Redcliffe")
    train = make_train("Seagull")
    expected = [
        log(None, "closed", targets=station),
        log(train, "departed", related=station),
        log(station, "renamed"),
    ]
    log(train, "departed", targets=other)
    ct = ContentType.objects.get_for_model(station).pk
    response = staff_client.get(
        "/custom-admin/actrack/action/", {"object_ct": ct, "object_key": station.pk}
    )
    assert ids(response) == [a.pk for a in reversed(expected)]
    assert "Ashbury" in response.content.decode()


def test_mixin_works_for_models_not_connected(staff_client: Client) -> None:
    note = make_note("hello")
    html = staff_client.get(f"/custom-admin/demo/note/{note.pk}/change/").content.decode()
    assert html.count(LINK) == 1


def test_no_link_on_add_pages_nor_for_users_who_cannot_view_actions(
    staff_client: Client, db: Any
) -> None:
    from django.contrib.auth.models import Permission

    from tests.conftest import make_user

    assert LINK not in staff_client.get("/custom-admin/demo/station/add/").content.decode()
    editor = make_user("editor", is_staff=True)
    editor.user_permissions.set(Permission.objects.filter(codename="change_station"))
    client = Client()
    client.force_login(editor)
    station = make_station()
    response = client.get(f"/custom-admin/demo/station/{station.pk}/change/")
    assert response.status_code == 200
    assert LINK not in response.content.decode()


def test_deleted_item_pages_have_the_link(history: Any, staff_client: Client) -> None:
    html = staff_client.get(
        f"/admin/actrack/deleteditem/{history.retired.pk}/change/"
    ).content.decode()
    assert html.count(LINK) == 1


def test_connected_models_get_the_link_when_the_template_override_is_found(
    staff: Any, staff_client: Client, actrack_templates_first: None
) -> None:
    train = make_train("Seagull")
    html = staff_client.get(f"/custom-admin/demo/train/{train.pk}/change/").content.decode()
    assert html.count(LINK) == 1
    assert f'href="/custom-admin/actrack/action/?{activity_query(train)}"' in html
    # With the mixin too, still one link.
    station = make_station()
    html = staff_client.get(f"/custom-admin/demo/station/{station.pk}/change/").content.decode()
    assert html.count(LINK) == 1
    # An admin can say no.
    html = staff_client.get(f"/quiet-admin/demo/train/{train.pk}/change/").content.decode()
    assert LINK not in html
    # The demo connects its user model: Django's own UserAdmin gets the link too.
    user_page = staff_client.get(f"/custom-admin/auth/user/{staff.pk}/change/")
    assert user_page.content.decode().count(LINK) == 1
    # Groups are not connected: their plain admin gets none.
    group = Group.objects.create(name="crew")
    group_page = staff_client.get(f"/custom-admin/auth/group/{group.pk}/change/")
    assert group_page.status_code == 200
    assert LINK not in group_page.content.decode()


def test_without_the_override_plain_admins_get_no_link(staff_client: Client) -> None:
    """Django finds django.contrib.admin's template first in the demo's app order."""
    train = make_train()
    html = staff_client.get(f"/custom-admin/demo/train/{train.pk}/change/").content.decode()
    assert LINK not in html


# -- custom admin sites -------------------------------------------------------------------


def test_custom_site_with_the_mixin_mounts_and_lists_the_dashboard(staff_client: Client) -> None:
    index = staff_client.get("/custom-admin/").content.decode()
    assert 'href="/custom-admin/activity/"' in index
    page = staff_client.get("/custom-admin/activity/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Railway back office" in html
    # Links stay on this site.
    assert 'href="/custom-admin/"' in html


def test_app_index_lists_the_dashboard_too(staff_client: Client) -> None:
    html = staff_client.get("/custom-admin/actrack/").content.decode()
    assert 'href="/custom-admin/activity/"' in html
    assert (
        'href="/custom-admin/activity/"'
        not in staff_client.get("/custom-admin/demo/").content.decode()
    )


def test_a_site_without_the_mixin_has_no_dashboard(staff_client: Client) -> None:
    assert staff_client.get("/quiet-admin/activity/").status_code == 404
    assert "/activity/" not in staff_client.get("/quiet-admin/").content.decode()
    changelist = staff_client.get("/quiet-admin/actrack/action/").content.decode()
    assert "/activity/" not in changelist
    custom = staff_client.get("/custom-admin/actrack/action/").content.decode()
    assert '<a href="/custom-admin/activity/">Activity dashboard</a>' in custom


def test_install_is_idempotent() -> None:
    from django.contrib import admin

    from actrack_dashboard.admin import install

    before = admin.site.get_urls
    install(admin.site)
    assert admin.site.get_urls is before
    names = [getattr(p, "name", None) for p in admin.site.get_urls()]
    assert names.count("actrack_activity") == 1
