"""dumpdata / loaddata round-trip every actrack model."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command

import actrack
from actrack.models import (
    Action,
    ActionRelated,
    ActionTarget,
    DeletedItem,
    ReadAction,
    ReadMark,
    Tracker,
)
from actrack.readstate import mark_all_read
from tests.conftest import make_journey, make_station, make_train, make_user
from tests.demo.models import Station

pytestmark = pytest.mark.django_db

MODELS = [Action, ActionTarget, ActionRelated, Tracker, DeletedItem, ReadMark, ReadAction]


def _snapshot(milliseconds: bool = False) -> dict[str, list[dict[str, object]]]:
    def row_of(values: dict[str, object]) -> dict[str, object]:
        if milliseconds:  # what Django's JSON encoder keeps of a datetime
            values = {
                key: value.replace(microsecond=value.microsecond // 1000 * 1000)
                if isinstance(value, dt.datetime)
                else value
                for key, value in values.items()
            }
        return values

    return {
        model.__name__: sorted(
            (row_of(row) for row in model.objects.values()), key=lambda row: str(row)
        )
        for model in MODELS
    }


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_dumpdata_loaddata_round_trip(tmp_path: object, fmt: str) -> None:
    user, train, journey = make_user(), make_train(), make_journey()
    gone = make_station("Closed halt")
    actrack.log(train, "departed", targets=[gone, journey], related=journey, minutes=[1, 2])
    actrack.log(None, "closed", targets=gone, level="WARNING", grouping_delay=-1)
    actrack.track(user, [train, Station], verbs=["departed"], actor_only=False)
    actrack.track(user, gone)
    gone.delete()
    first = actrack.log(train, "departed", grouping_delay=-1, again=True)
    assert first is not None
    first.mark_read_for(user, force=True)
    mark_all_read(user)
    before = _snapshot(milliseconds=fmt == "json")
    assert all(before.values()), "every model has rows to round-trip"

    out = io.StringIO()
    call_command("dumpdata", "actrack", format=fmt, indent=1, stdout=out)
    dump = tmp_path / f"actrack.{fmt}"  # type: ignore[operator]
    dump.write_text(out.getvalue())
    for model in MODELS:
        assert f"actrack.{model.__name__.lower()}" in out.getvalue()
    for model in reversed(MODELS):
        model.objects.all().delete()
    assert not any(_snapshot().values())

    call_command("loaddata", str(dump), verbosity=0)
    after = _snapshot(milliseconds=fmt == "json")
    for name, rows in before.items():
        assert after[name] == rows, name
    action = Action.objects.filter(verb="departed").earliest("pk")
    assert action.data == {"minutes": [1, 2]}
    assert list(action.related.all()) == [journey]
    assert DeletedItem.objects.get() in set(action.targets.all())
