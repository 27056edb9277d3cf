"""``{% load actrack_dashboard %}``: the pieces sites embed in their own pages."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.template import Context, Template, TemplateSyntaxError
from django.test import RequestFactory

from actrack import readstate
from tests.conftest import make_note
from tests.test_dashboard.conftest import Scene, log
from tests.test_dashboard.test_feed import action_ids, unread_ids

pytestmark = pytest.mark.django_db


def render(source: str, user: Any, **context: Any) -> str:
    request = RequestFactory().get("/somewhere/")
    request.user = user
    template = Template("{% load actrack_dashboard %}" + source)
    return template.render(Context({"request": request, "user": user, **context}))


def test_feed_partial_for_the_signed_in_user(scene: Scene) -> None:
    html = render("{% actrack_feed limit=2 %}", scene.alice)
    assert html.startswith('<section id="actrack-embedded-feed"')
    assert action_ids(html) == [scene.alice_actions[2].pk, scene.alice_actions[1].pk]
    assert unread_ids(html) == action_ids(html)
    assert "See all your activity" in html
    assert readstate.unread_count(scene.alice) == 3  # embedding marks nothing read


def test_feed_partial_for_another_user_with_filters(scene: Scene) -> None:
    html = render(
        '{% actrack_feed user=other verb="departed" level="INFO" model="demo.train" %}',
        scene.bob,
        other=scene.alice,
    )
    assert action_ids(html) == [scene.alice_actions[0].pk]
    assert "/activity/?verb=departed&amp;level=INFO&amp;model=demo.train" in html
    html = render(
        "{% actrack_feed user=other unread=True dom_id='x' %}", scene.bob, other=scene.alice
    )
    assert html.startswith('<section id="x"')
    assert len(action_ids(html)) == 3


def test_feed_partial_levels_by_number(scene: Scene) -> None:
    html = render("{% actrack_feed level=40 %}", scene.alice)
    assert action_ids(html) == [scene.alice_actions[1].pk]


def test_feed_partial_is_empty_for_anonymous(scene: Scene) -> None:
    assert render("{% actrack_feed %}", AnonymousUser()) == ""


@pytest.mark.parametrize(
    "source",
    [
        "{% actrack_feed limit=0 %}",
        "{% actrack_feed limit='5' %}",
        "{% actrack_feed level='LOUD' %}",
        "{% actrack_feed model='demo.note' %}",
    ],
)
def test_feed_partial_refuses_bad_arguments(scene: Scene, source: str) -> None:
    with pytest.raises(TemplateSyntaxError):
        render(source, scene.alice)


def test_unread_badge(scene: Scene) -> None:
    html = render("{% actrack_unread_badge %}", scene.alice)
    assert html.startswith('<a id="actrack-unread-badge"')
    assert '<span class="actrack-badge-count">3</span>' in html
    assert render("{% actrack_unread_badge %}", AnonymousUser()) == ""


def test_follow_button_for_an_instance(scene: Scene) -> None:
    ct = ContentType.objects.get_for_model(scene.train)
    html = render("{% actrack_follow_button train %}", scene.alice, train=scene.train)
    assert html.startswith(f'<div id="actrack-follow-{ct.pk}-{scene.train.pk}"')
    assert "is-following" in html
    assert 'name="next" value="/somewhere/"' in html
    html = render("{% actrack_follow_button train %}", scene.bob, train=scene.train)
    assert "is-following" not in html
    assert "actrack-button-follow" in html


def test_follow_button_for_a_model(scene: Scene) -> None:
    html = render('{% actrack_follow_button "demo.station" next="/back/" %}', scene.alice)
    assert "-all" in html.split('"')[1]
    assert "Follow all stations" in html
    assert 'name="next" value="/back/"' in html


def test_follow_button_is_empty_when_not_allowed(scene: Scene) -> None:
    assert render("{% actrack_follow_button note %}", scene.alice, note=make_note()) == ""
    assert render("{% actrack_follow_button t %}", AnonymousUser(), t=scene.train) == ""
    assert render("{% actrack_follow_button nothing %}", scene.alice) == ""


def test_follow_button_refuses_unknown_models_and_unsaved_instances(scene: Scene) -> None:
    with pytest.raises(TemplateSyntaxError):
        render('{% actrack_follow_button "demo.nope" %}', scene.alice)
    from tests.demo.models import Train

    with pytest.raises(TemplateSyntaxError):
        # What a model class in the context becomes: templates call callables.
        render("{% actrack_follow_button model %}", scene.alice, model=Train)


def test_object_url(scene: Scene) -> None:
    ct = ContentType.objects.get_for_model(scene.station)
    html = render("{% actrack_object_url station %}", scene.alice, station=scene.station)
    assert html == f"/activity/objects/{ct.pk}/{scene.station.pk}/"
    assert render("{% actrack_object_url nothing %}", scene.alice) == ""


def test_feed_partial_with_nothing_new(scene: Scene) -> None:
    log(scene.alice, "waved")
    html = render("{% actrack_feed user=bob verb='waved' %}", scene.alice, bob=scene.bob)
    assert "Nothing new in your feed." in html
