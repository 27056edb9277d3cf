"""Default rendering of actions, handler overrides and bulk rendering (SPEC 3.8)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone, translation
from django.utils.safestring import SafeString
from django.utils.translation import gettext, gettext_lazy

import actrack
from actrack import ActionHandler
from actrack.models import Action
from tests.conftest import make_line, make_note, make_station, make_train, make_user
from tests.demo.models import Note, Station, Train

pytestmark = pytest.mark.django_db

NOW = "0\xa0minutes ago"


class OverriddenRenderHandler(ActionHandler):
    verb = "test-rendering-overridden"

    def render(self, context: dict[str, Any]) -> str:
        return f"I did that ({context['verb']}, {len(context['targets'])} targets)"


class TemplateHandler(ActionHandler):
    verb = "test-rendering-template"
    template_name = "demo/test_action.html"


def text_of(action: Action) -> str:
    """The rendered action without its ", <time info>" suffix."""
    rendered = action.render()
    assert rendered.endswith(f", {NOW}")
    return rendered.removesuffix(f", {NOW}")


# -- default text -----------------------------------------------------------------------


def test_actor_verb_targets_and_related_render_as_in_the_spec() -> None:
    user = make_user("user0")
    task = make_station("task")
    project = make_station("project")

    action = actrack.log(user, "created", targets=task, related=project)

    assert action.render() == "user0 created task in relation to project, 0\xa0minutes ago"


def test_actor_and_verb_alone() -> None:
    action = actrack.log(make_user("lunch-eater"), "had lunch")

    assert text_of(action) == "lunch-eater had lunch"


def test_actor_verb_and_related_without_targets() -> None:
    action = actrack.log(make_user("user0"), "commented", related=make_station("project"))

    assert text_of(action) == "user0 commented in relation to project"


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, "a"),
        (2, "a and b"),
        (3, "a, b and c"),
        (4, "a, b and 2 others"),
        (5, "a, b and 3 others"),
    ],
)
def test_target_lists_read_naturally(count: int, expected: str) -> None:
    targets = [make_station(name) for name in "abcde"[:count]]

    action = actrack.log(make_user("user0"), "created", targets=targets)

    assert text_of(action) == f"user0 created {expected}"


def test_related_lists_read_naturally() -> None:
    related = [make_station(name) for name in "abc"]

    action = actrack.log(make_user("user0"), "moved", related=related)

    assert text_of(action) == "user0 moved in relation to a, b and c"


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, "a was created"),
        (2, "a and b were created"),
        (3, "a, b and c were created"),
        (5, "a, b and 3 others were created"),
    ],
)
def test_without_actor_targets_were_verbed(count: int, expected: str) -> None:
    targets = [make_station(name) for name in "abcde"[:count]]

    action = actrack.log(None, "created", targets=targets)

    assert text_of(action) == expected


def test_without_actor_with_related() -> None:
    action = actrack.log(None, "closed", targets=make_station("a"), related=[make_line("l1")])

    assert text_of(action) == "a was closed in relation to l1"


def test_targets_of_several_models_keep_logging_order() -> None:
    train = make_train("Orient Express")
    station = make_station("Paris")
    note = make_note("memo")

    action = actrack.log(make_user("user0"), "linked", targets=[train, station, note])

    assert text_of(action) == "user0 linked Orient Express, Paris and memo"


# -- time info ----------------------------------------------------------------------------


def test_render_is_text_comma_timeinfo_for_an_older_action() -> None:
    timestamp = timezone.now() - dt.timedelta(hours=2, seconds=5)

    action = actrack.log(make_user("user0"), "left", timestamp=timestamp)

    assert action.render() == "user0 left, 2\xa0hours ago"
    assert action.handler.get_timeinfo() == "2\xa0hours ago"


def test_get_text_and_get_timeinfo_compose_render() -> None:
    action = actrack.log(make_user("user0"), "created", targets=make_station("task"))

    assert action.handler.get_text() == "user0 created task"
    assert action.handler.get_timeinfo() == NOW
    assert action.render() == f"{action.handler.get_text()}, {action.handler.get_timeinfo()}"


def test_str_of_an_action_is_its_rendering() -> None:
    action = actrack.log(make_user("user0"), "created", targets=make_station("task"))

    assert str(action) == f"user0 created task, {NOW}"


# -- HTML safety ----------------------------------------------------------------------------


def test_render_returns_a_safe_string() -> None:
    action = actrack.log(make_user("user0"), "created", targets=make_station("task"))

    assert isinstance(action.render(), SafeString)
    assert isinstance(action.handler.get_text(), SafeString)


def test_object_names_are_escaped() -> None:
    user = make_user("user0")
    evil = make_station("<script>alert(1)</script>")
    related = make_station('"quoted" & <b>bold</b>')

    rendered = actrack.log(user, "created", targets=evil, related=related).render()

    assert "<script>" not in rendered
    assert "<b>" not in rendered
    assert rendered == (
        "user0 created &lt;script&gt;alert(1)&lt;/script&gt; in relation to "
        "&quot;quoted&quot; &amp; &lt;b&gt;bold&lt;/b&gt;, 0\xa0minutes ago"
    )


def test_actor_name_is_escaped() -> None:
    actor = make_station("<i>x</i>")

    rendered = actrack.log(actor, "arrived").render()

    assert rendered == "&lt;i&gt;x&lt;/i&gt; arrived, 0\xa0minutes ago"


def test_names_in_lists_and_without_actor_are_escaped() -> None:
    targets = [make_station(f"<s{i}>") for i in range(5)]

    rendered = actrack.log(None, "created", targets=targets).render()

    assert "<s" not in rendered
    assert rendered == f"&lt;s0&gt;, &lt;s1&gt; and 3 others were created, {NOW}"


def test_verb_is_escaped() -> None:
    rendered = actrack.log(make_user("user0"), "<script>hacked</script>").render()

    assert "<script>" not in rendered
    assert rendered == f"user0 &lt;script&gt;hacked&lt;/script&gt;, {NOW}"


def test_verb_is_escaped_without_actor_and_targets() -> None:
    rendered = actrack.log(None, "<b>rebooted</b>").render()

    assert "<b>" not in rendered
    assert "&lt;b&gt;rebooted&lt;/b&gt;" in rendered


# -- translation ------------------------------------------------------------------------------


def test_lazy_verb_is_stored_as_its_message_id() -> None:
    user = make_user("user0")

    with translation.override("fr"):
        action = actrack.log(user, gettext_lazy("created"), targets=make_station("task"))

    action.refresh_from_db()
    assert action.verb == "created"
    assert action.render() == f"user0 created task, {NOW}"


def test_verb_is_translated_when_rendered_not_when_stored() -> None:
    # "Change" has a French translation in Django's own catalogs.
    with translation.override("fr"):
        french = gettext("Change")
    assert french != "Change"
    user = make_user("user0")

    with translation.override("fr"):
        action = actrack.log(user, gettext_lazy("Change"))
        rendered_in_french = action.render()
    action.refresh_from_db()

    assert action.verb == "Change"
    assert rendered_in_french.startswith(f"user0 {french}, ")
    assert action.render() == f"user0 Change, {NOW}"


def test_rendering_under_another_language_does_not_crash() -> None:
    targets = [make_station(name) for name in "abcde"]

    with translation.override("fr"):
        rendered = actrack.log(None, gettext_lazy("created"), targets=targets).render()

    assert rendered.startswith("a, b")
    assert isinstance(rendered, SafeString)


# -- deleted objects --------------------------------------------------------------------------


def test_deleted_target_of_an_unconnected_model_renders_deleted() -> None:
    note = make_note("memo")
    action = actrack.log(make_user("user0"), "wrote", targets=note)
    note.delete()

    fresh = Action.objects.get(pk=action.pk)

    assert fresh.render() == f"user0 wrote (deleted), {NOW}"


def test_deleted_actor_and_related_of_an_unconnected_model_render_deleted() -> None:
    actor = make_note("author")
    related = make_note("context")
    action = actrack.log(actor, "wrote", targets=make_station("a"), related=related)
    Note.objects.filter(pk__in=[actor.pk, related.pk]).delete()

    fresh = Action.objects.get(pk=action.pk)

    assert fresh.render() == f"(deleted) wrote a in relation to (deleted), {NOW}"


def test_deleted_target_among_others_without_actor() -> None:
    note = make_note("memo")
    action = actrack.log(None, "archived", targets=[note, make_station("a")])
    note.delete()

    assert Action.objects.get(pk=action.pk).render() == f"(deleted) and a were archived, {NOW}"


def test_deleted_target_of_a_connected_model_renders_its_description() -> None:
    train = make_train("Flying Scotsman")
    action = actrack.log(make_user("user0"), "retired", targets=train)
    train.delete()

    fresh = Action.objects.get(pk=action.pk)

    assert fresh.render() == f"user0 retired Train Flying Scotsman (retired), {NOW}"


# -- handler overrides ----------------------------------------------------------------------


def test_handler_render_override_is_used() -> None:
    action = actrack.log(
        make_user("user0"), "test-rendering-overridden", targets=[make_station(), make_station()]
    )

    assert action.render() == "I did that (test-rendering-overridden, 2 targets)"


def test_handler_template_renders_with_get_context() -> None:
    action = actrack.log(
        make_user("user0"),
        "test-rendering-template",
        targets=[make_station("a"), make_station("b")],
        level="WARNING",
    )

    rendered = action.render()

    assert isinstance(rendered, SafeString)
    assert rendered.strip() == (
        '<span class="test-action">user0|test-rendering-template|a;b;|WARNING|-</span>'
    )


def test_handler_template_receives_extra_context_and_escapes() -> None:
    action = actrack.log(
        make_user("user0"), "test-rendering-template", targets=make_station("<script>")
    )

    rendered = action.render(context={"extra": "<b>more</b>"})

    assert "<script>" not in rendered
    assert "<b>" not in rendered
    assert rendered.strip() == (
        '<span class="test-action">user0|test-rendering-template|&lt;script&gt;;|INFO|'
        "&lt;b&gt;more&lt;/b&gt;</span>"
    )


# -- bulk rendering -----------------------------------------------------------------------------


def log_mixed_actions(count: int) -> list[Action]:
    """``count`` actions by a user, with targets of 3 models (Station, Train, Note)."""
    user = make_user()
    actions = []
    for i in range(count):
        action = actrack.log(
            user,
            "created",
            targets=[make_station(f"s{i}"), make_train(f"t{i}"), make_note(f"n{i}")],
            grouping_delay=-1,
        )
        assert action is not None
        actions.append(action)
    return actions


def warm_content_types() -> None:
    for model in (get_user_model(), Station, Train, Note):
        ContentType.objects.get_for_model(model)


@pytest.mark.parametrize("count", [1, 20, 60])
def test_bulk_render_query_count_does_not_grow(count: int, django_assert_num_queries: Any) -> None:
    log_mixed_actions(count)
    actions = list(Action.objects.filter(verb="created"))
    assert len(actions) == count
    warm_content_types()

    # One query for every link row, then one per content type (user, station, train, note).
    with django_assert_num_queries(1 + 4):
        rendered = Action.bulk_render(actions)

    assert len(rendered) == count


def test_bulk_render_matches_individual_rendering_in_order() -> None:
    log_mixed_actions(20)
    note = make_note("gone")
    actrack.log(None, "test-rendering-overridden", targets=note)
    actrack.log(None, "test-rendering-template", targets=make_station("tpl"))
    note.delete()
    actions = list(Action.objects.all())

    bulk = Action.bulk_render(actions)
    single = [Action.objects.get(pk=action.pk).render() for action in actions]

    assert bulk == single
    assert len(bulk) == 22
    assert bulk[0].strip().startswith('<span class="test-action">')
    assert bulk[1] == "I did that (test-rendering-overridden, 1 targets)"
    assert all(isinstance(text, SafeString) for text in bulk[2:])
    assert bulk[-1] == f"{actions[-1].handler.actor} created s0, t0 and n0, {NOW}"


def test_bulk_render_passes_context_to_every_action() -> None:
    first = actrack.log(None, "test-rendering-template", targets=make_station("a"))
    second = actrack.log(None, "test-rendering-template", targets=make_station("b"))

    rendered = Action.bulk_render([first, second], context={"extra": "X"})

    assert [text.strip() for text in rendered] == [
        '<span class="test-action">None|test-rendering-template|a;|INFO|X</span>',
        '<span class="test-action">None|test-rendering-template|b;|INFO|X</span>',
    ]


def test_bulk_render_of_nothing() -> None:
    assert Action.bulk_render([]) == []
