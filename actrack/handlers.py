"""Action handlers: per-verb behaviour (rendering, combination, grouping).

Subclass :class:`ActionHandler` with a ``verb`` attribute; the subclass is
registered for that verb when the class is created. Actions whose verb has no
handler use ``ACTRACK["DEFAULT_HANDLER"]``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar

from django.template.loader import render_to_string
from django.utils import translation
from django.utils.functional import Promise
from django.utils.html import conditional_escape, format_html
from django.utils.module_loading import import_string
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince
from django.utils.translation import gettext, ngettext

from actrack.conf import app_settings

if TYPE_CHECKING:
    from actrack.models import Action

_registry: dict[str, type[ActionHandler]] = {}


class _QueueView:
    """``handler_class.queue``: the current queue, as a list of action kwargs."""

    def __get__(self, instance: Any, owner: Any) -> list[dict[str, Any]]:
        from actrack.queue import current_queue

        queue = current_queue()
        return [entry.kwargs() for entry in queue.live_entries()] if queue else []


def verb_key(verb: Any) -> str:
    """A verb as stored: a lazy translation becomes its untranslated message id."""
    if isinstance(verb, Promise):
        with translation.override(None):
            return str(verb)
    return str(verb)


def method_suffix(verb: str) -> str:
    """``"started tracking"`` -> ``"started_tracking"`` (for ``combine_with_<verb>``)."""
    return re.sub(r"\W", "_", verb)


class ActionHandler:
    """Default behaviour of an action; subclass with ``verb = "..."`` to customise one verb."""

    #: The verb this handler is registered for (``None``: not registered).
    verb: ClassVar[str | None] = None
    #: Level of actions of this verb when ``log()`` is given none.
    level: ClassVar[int | None] = None
    #: Render with this template (context from :meth:`get_context`) instead of text.
    template_name: ClassVar[str | None] = None
    #: The actions logged but not written yet, as keyword-argument dicts.
    queue = _QueueView()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        verb = cls.__dict__.get("verb")
        if verb is not None:
            _registry[verb_key(verb)] = cls
            clear_caches()

    def __init__(self, action: Action) -> None:
        self.action = action
        self.verb_key = action.verb

    # -- objects of the action (loaded in bulk by actrack.rendering) --------------------

    @property
    def actor(self) -> Any:
        from actrack.rendering import hydrated

        return hydrated(self.action).actor

    @property
    def targets(self) -> list[Any]:
        from actrack.rendering import hydrated

        return hydrated(self.action).targets

    @property
    def related(self) -> list[Any]:
        from actrack.rendering import hydrated

        return hydrated(self.action).related

    # -- rendering ----------------------------------------------------------------------

    def render(self, context: dict[str, Any]) -> str:
        """HTML-safe text of the action: ``"<text>, <time info>"`` or the template."""
        if self.template_name:
            return mark_safe(render_to_string(self.template_name, context))
        return format_html(
            gettext("{text}, {timeinfo}"), text=context["text"], timeinfo=context["timeinfo"]
        )

    def get_verb_display(self) -> str:
        """The verb, translated (verbs are stored untranslated)."""
        return gettext(self.action.verb)

    def get_text(self) -> SafeString:
        """``"<actor> <verb>[ <targets>][ in relation to <related>]"``, escaped."""
        actor, targets, related = self.actor, self.targets, self.related
        verb = self.get_verb_display()
        if self.action.actor_ct_id is None:
            if not targets:
                text = format_html("{}", verb)
            else:
                text = format_html(
                    ngettext("{targets} was {verb}", "{targets} were {verb}", len(targets)),
                    targets=describe_list(targets),
                    verb=verb,
                )
        elif targets:
            text = format_html(
                gettext("{actor} {verb} {targets}"),
                actor=describe(actor),
                verb=verb,
                targets=describe_list(targets),
            )
        else:
            text = format_html(gettext("{actor} {verb}"), actor=describe(actor), verb=verb)
        if related:
            text = format_html(
                gettext("{text} in relation to {related}"),
                text=text,
                related=describe_list(related),
            )
        return text

    def get_timeinfo(self) -> str:
        """``"3\xa0minutes ago"``."""
        return gettext("%(time)s ago") % {"time": timesince(self.action.timestamp)}

    def get_context(self, **context: Any) -> dict[str, Any]:
        """The rendering context: the action, its objects, texts, plus ``context``."""
        action = self.action
        base = {
            "action": action,
            "handler": self,
            "actor": self.actor,
            "targets": self.targets,
            "related": self.related,
            "verb": self.get_verb_display(),
            "level": action.level,
            "level_name": app_settings.level_name(action.level),
            "data": action.data,
            "timestamp": action.timestamp,
            "timeinfo": self.get_timeinfo(),
            "text": self.get_text(),
        }
        base.update(context)
        return base

    # -- combination and grouping -------------------------------------------------------

    @classmethod
    def combine(
        cls, own_kwargs: dict[str, Any], other_kwargs: dict[str, Any], *, other_verb: str
    ) -> bool:
        """True to absorb the ``own`` action into ``other`` (see :mod:`actrack.combination`).

        Dispatches to ``combine_with_<other verb>`` when the handler defines it.
        """
        method = getattr(cls, f"combine_with_{method_suffix(other_verb)}", None)
        return bool(method(own_kwargs, other_kwargs)) if method else False

    @classmethod
    def group(cls, newer_kwargs: dict[str, Any], older_kwargs: dict[str, Any]) -> bool:
        """True when ``newer`` should be grouped into ``older`` (see :mod:`actrack.grouping`)."""
        from actrack.grouping import default_group

        return default_group(newer_kwargs, older_kwargs)


def describe(obj: Any) -> SafeString:
    """An object's name, escaped; ``"(deleted)"`` for a vanished object."""
    if obj is None:
        return format_html("{}", gettext("(deleted)"))
    return conditional_escape(str(obj))


def describe_list(objs: list[Any]) -> SafeString:
    """ "a", "a and b", "a, b and c", "a, b and N others" (escaped)."""
    names = [describe(obj) for obj in objs]
    if len(names) == 1:
        return names[0]
    if len(names) <= 3:
        return format_html(
            gettext("{first} and {last}"),
            first=mark_safe(", ".join(names[:-1])),
            last=names[-1],
        )
    others = len(names) - 2
    return format_html(
        ngettext(
            "{first}, {second} and {count} other", "{first}, {second} and {count} others", others
        ),
        first=names[0],
        second=names[1],
        count=others,
    )


_partners: dict[Any, frozenset[str]] = {}
_combinable: dict[str, bool] = {}
_default_handler: dict[str, type[ActionHandler]] = {}  # by DEFAULT_HANDLER path


def combine_partners(handler: type[ActionHandler]) -> frozenset[str]:
    """Suffixes of the ``combine_with_<verb>`` methods a handler class defines."""
    found = _partners.get(handler)
    if found is None:
        prefix = "combine_with_"
        names = dir(handler)
        found = _partners[handler] = frozenset(
            name[len(prefix) :] for name in names if name.startswith(prefix)
        )
    return found


def clear_caches() -> None:
    """Forget what was derived from the registry and settings (either changed)."""
    _combinable.clear()
    _partners.clear()
    _default_handler.clear()


def may_combine(verb: str) -> bool:
    """Whether any handler could combine an action of ``verb`` with another one.

    Lets the queue skip the combination scan for the (usual) verbs no handler
    combines, so logging many actions in one batch stays linear. Cached per
    verb until a handler is registered or the settings change.
    """
    found = _combinable.get(verb)
    if found is None:
        found = bool(combine_partners(get_handler_class(verb)))
        if not found:
            suffix = method_suffix(verb)
            handlers = {*_registry.values(), get_handler_class("")}
            found = any(suffix in combine_partners(handler) for handler in handlers)
        _combinable[verb] = found
    return found


def get_handler_class(verb: str) -> type[ActionHandler]:
    handler = _registry.get(verb)
    if handler is not None:
        return handler
    # Every log() of an unregistered verb asks: import the default once per setting value.
    path = app_settings.DEFAULT_HANDLER
    default = _default_handler.get(path)
    if default is None:
        default = _default_handler[path] = import_string(path)
    return default
