"""The demo admin shows actrack's Activity link on connected models."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

import actrack
from tests.conftest import make_note, make_train, make_user

pytestmark = pytest.mark.django_db


def test_connected_model_change_page_links_to_its_activity(client: Any) -> None:
    staff = make_user(is_staff=True, is_superuser=True)
    train = make_train("Mallard")
    actrack.log(train, "departed")
    client.force_login(staff)
    response = client.get(reverse("admin:demo_train_change", args=[train.pk]))
    assert response.status_code == 200
    link = response.context["actrack_activity_url"]
    assert link
    assert link.encode() in response.content.replace(b"&amp;", b"&")
    activity = client.get(link)
    assert activity.status_code == 200
    assert b"Mallard" in activity.content


def test_unconnected_model_has_no_activity_link(client: Any) -> None:
    client.force_login(make_user(is_staff=True, is_superuser=True))
    note = make_note()
    response = client.get(reverse("admin:demo_note_change", args=[note.pk]))
    assert response.status_code == 200
    assert "actrack_activity_url" not in response.context
