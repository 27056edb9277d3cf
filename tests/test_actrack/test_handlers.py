"""The handler registry, handler instances and their rendering context (SPEC 3.8).

Handler subclasses register globally by verb: every verb here is unique to this
module ("test-handlers-...") so that nothing leaks into other tests.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from django.test import override_settings
from django.utils import translation
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy

import actrack
from actrack import ActionHandler, handlers
from actrack.handlers import get_handler_class
from actrack.models import Action
from tests.conftest import make_station, make_user

FALLBACK_PATH = "tests.test_actrack.test_handlers.FallbackHandler"


class FallbackHandler(ActionHandler):
    """A default handler for the DEFAULT_HANDLER override (no verb: not registered)."""

    level = 42

    def render(self, context: dict[str, Any]) -> str:
        return f"fallback: {context['verb']}"


class RecordingHandler(ActionHandler):
    """Renders the keys of its context, so tests can see what ``render`` receives."""

    verb = "test-handlers-recording"
    seen: dict[str, Any] = {}

    def render(self, context: dict[str, Any]) -> str:
        type(self).seen = context
        return "recorded"


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Handlers registered by a test are forgotten after it."""
    monkeypatch.setattr(handlers, "_registry", dict(handlers._registry))


# -- registry -------------------------------------------------------------------------------


def test_subclass_with_a_verb_registers_for_that_verb() -> None:
    class Registered(ActionHandler):
        verb = "test-handlers-registers"

    assert get_handler_class("test-handlers-registers") is Registered


def test_unknown_verb_uses_the_default_handler() -> None:
    assert get_handler_class("test-handlers-nobody-handles-this") is ActionHandler


def test_subclass_without_verb_is_not_registered_and_does_not_replace_its_parent() -> None:
    class Parent(ActionHandler):
        verb = "test-handlers-parent"

    class Child(Parent):
        def get_text(self) -> SafeString:
            return SafeString("child")

    assert get_handler_class("test-handlers-parent") is Parent
    assert Child.verb == "test-handlers-parent"


def test_subclass_redeclaring_a_verb_takes_it_over() -> None:
    class First(ActionHandler):
        verb = "test-handlers-redeclared"

    class Second(First):
        verb = "test-handlers-redeclared"

    assert get_handler_class("test-handlers-redeclared") is Second


def test_lazy_verb_registers_under_its_message_id() -> None:
    # Stored verbs are message ids: a handler declared while another language is
    # active must still be found for them.
    with translation.override("fr"):

        class LazyVerb(ActionHandler):
            verb = gettext_lazy("Change")  # translated by Django's French catalog

    assert get_handler_class("Change") is LazyVerb


def test_default_handler_override_takes_effect_at_run_time() -> None:
    class Registered(ActionHandler):
        verb = "test-handlers-still-registered"

    with override_settings(ACTRACK={"DEFAULT_HANDLER": FALLBACK_PATH}):
        assert get_handler_class("test-handlers-unknown") is FallbackHandler
        assert get_handler_class("test-handlers-still-registered") is Registered

    assert get_handler_class("test-handlers-unknown") is ActionHandler


@pytest.mark.django_db
def test_default_handler_override_renders_and_levels_unknown_verbs() -> None:
    user = make_user("user0")

    with override_settings(ACTRACK={"DEFAULT_HANDLER": FALLBACK_PATH}):
        action = actrack.log(user, "test-handlers-unknown-verb")
        assert action.render() == "fallback: test-handlers-unknown-verb"
        assert action.level == 42

    fresh = Action.objects.get(pk=action.pk)
    assert fresh.render().startswith("user0 test-handlers-unknown-verb, ")


# -- handler instances ----------------------------------------------------------------------


@pytest.mark.django_db
def test_action_handler_is_an_instance_bound_to_the_action() -> None:
    class Bound(ActionHandler):
        verb = "test-handlers-bound"

    action = actrack.log(make_user(), "test-handlers-bound")
    fresh = Action.objects.get(pk=action.pk)

    assert isinstance(action.handler, Bound)
    assert action.handler.action is action
    assert isinstance(fresh.handler, Bound)
    assert fresh.handler.action is fresh


@pytest.mark.django_db
def test_action_of_an_unknown_verb_gets_a_default_handler_instance() -> None:
    action = actrack.log(make_user(), "test-handlers-unhandled")

    assert type(action.handler) is ActionHandler
    assert action.handler.action is action


@pytest.mark.django_db
def test_handler_can_add_methods_using_its_action() -> None:
    class Counting(ActionHandler):
        verb = "test-handlers-counting"

        def target_names(self) -> list[str]:
            return [str(target) for target in self.action.targets.all()]

    action = actrack.log(
        make_user(), "test-handlers-counting", targets=[make_station("a"), make_station("b")]
    )

    assert sorted(action.handler.target_names()) == ["a", "b"]


@pytest.mark.django_db
def test_handler_level_is_used_when_log_gets_no_level() -> None:
    class Warning_(ActionHandler):
        verb = "test-handlers-warning"
        level = 40

    default = actrack.log(make_user(), "test-handlers-warning")
    explicit = actrack.log(make_user(), "test-handlers-warning", level=10)

    assert default.level == 40
    assert explicit.level == 10


# -- get_context ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_get_context_contents() -> None:
    user = make_user("user0")
    task = make_station("task")
    project = make_station("project")
    action = actrack.log(
        user, "test-handlers-context", targets=task, related=project, level="WARNING", n=3
    )

    context = action.handler.get_context(extra="value")

    assert context["action"] is action
    assert context["handler"] is action.handler
    assert context["actor"] == user
    assert context["targets"] == [task]
    assert context["related"] == [project]
    assert context["verb"] == "test-handlers-context"
    assert context["level"] == 40
    assert context["level_name"] == "WARNING"
    assert context["data"] == {"n": 3}
    assert context["timestamp"] == action.timestamp
    assert context["timeinfo"] == "0\xa0minutes ago"
    assert context["text"] == "user0 test-handlers-context task in relation to project"
    assert isinstance(context["text"], SafeString)
    assert context["extra"] == "value"


@pytest.mark.django_db
def test_get_context_of_an_unnamed_level_gives_the_number() -> None:
    action = actrack.log(make_user(), "test-handlers-unnamed-level", level=35)

    assert action.handler.get_context()["level_name"] == "35"


@pytest.mark.django_db
def test_get_context_level_name_follows_overridden_levels() -> None:
    action = actrack.log(make_user(), "test-handlers-custom-level", level=35)

    with override_settings(ACTRACK={"LEVELS": {"INFO": 30, "NOTICE": 35}}):
        assert action.handler.get_context()["level_name"] == "NOTICE"


@pytest.mark.django_db
def test_get_context_without_actor_or_objects() -> None:
    action = actrack.log(None, "test-handlers-bare")

    context = action.handler.get_context()

    assert context["actor"] is None
    assert context["targets"] == []
    assert context["related"] == []
    assert context["text"] == "test-handlers-bare"


@pytest.mark.django_db
def test_render_passes_get_context_user_and_extra_context_to_handler_render() -> None:
    user = make_user("reader")
    action = actrack.log(make_user("user0"), "test-handlers-recording", targets=make_station("a"))

    assert action.render(user=user, context={"extra": 1}) == "recorded"

    seen = RecordingHandler.seen
    assert seen["user"] == user
    assert seen["extra"] == 1
    assert seen["action"] is action
    assert seen["text"] == "user0 test-handlers-recording a"
    assert seen["timeinfo"] == "0\xa0minutes ago"


@pytest.mark.django_db
def test_extra_context_overrides_defaults() -> None:
    action = actrack.log(make_user("user0"), "test-handlers-overridden-text")

    context = action.handler.get_context(text="custom")

    assert context["text"] == "custom"
    assert action.render(context={"text": "custom", "timeinfo": "now"}) == "custom, now"


@pytest.mark.django_db
def test_context_user_is_not_overridden_by_render_user() -> None:
    reader = make_user("reader")
    other = make_user("other")
    action = actrack.log(None, "test-handlers-recording")

    action.render(user=reader, context={"user": other})

    assert RecordingHandler.seen["user"] == other


# -- combination and grouping hooks ---------------------------------------------------------


@pytest.mark.parametrize("name", ["combine", "group"])
def test_combine_and_group_are_classmethods(name: str) -> None:
    assert isinstance(inspect.getattr_static(ActionHandler, name), classmethod)
    assert callable(getattr(ActionHandler, name))


@pytest.mark.parametrize(
    "name", ["render", "get_text", "get_timeinfo", "get_context", "get_verb_display"]
)
def test_rendering_methods_are_instance_methods(name: str) -> None:
    assert inspect.isfunction(inspect.getattr_static(ActionHandler, name))


def test_actrack_exposes_action_handler() -> None:
    assert actrack.ActionHandler is ActionHandler
