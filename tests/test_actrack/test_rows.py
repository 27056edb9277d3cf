"""Objects read by hand-written queries (actrack.rows) are the ORM's, field for field."""

from __future__ import annotations

import datetime as dt
import weakref
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models
from django.test.utils import CaptureQueriesContext, isolate_apps
from django.utils import timezone

from actrack import rows
from actrack.rendering import load_objects
from actrack.rows import plain
from tests.conftest import make_journey, make_station, make_ticket, make_user
from tests.demo.models import Journey, Station

pytestmark = pytest.mark.django_db


def field_values(obj: Any) -> dict[str, Any]:
    return {field.attname: getattr(obj, field.attname) for field in obj._meta.concrete_fields}


def wanted_of(*objs: Any) -> dict[int, set[str]]:
    wanted: dict[int, set[str]] = {}
    for obj in objs:
        wanted.setdefault(ContentType.objects.get_for_model(obj).pk, set()).add(str(obj.pk))
    return wanted


def test_plain_models_load_as_the_orm_loads_them_one_query_per_model() -> None:
    user = make_user("reader")
    user.last_login = timezone.now() - dt.timedelta(days=2)
    user.is_staff = True
    user.save()
    stations = [make_station("north"), make_station("south")]
    ticket = make_ticket("T-42")
    expected = [type(o)._base_manager.get(pk=o.pk) for o in (user, *stations, ticket)]
    wanted = wanted_of(user, *stations, ticket)

    with CaptureQueriesContext(connection) as queries:
        found = load_objects(wanted, "default")

    assert len(queries) == 3  # users, stations, tickets
    for obj in expected:
        loaded = found[(ContentType.objects.get_for_model(obj).pk, str(obj.pk))]
        assert type(loaded) is type(obj)
        assert field_values(loaded) == field_values(obj)
        assert loaded._state.db == "default"
        assert loaded._state.adding is False
    # Converters applied as the ORM applies them: aware datetimes, booleans.
    loaded_user = found[(ContentType.objects.get_for_model(user).pk, str(user.pk))]
    assert loaded_user.last_login == user.last_login
    assert loaded_user.last_login.tzinfo is not None
    assert loaded_user.is_staff is True


def test_uuid_keys_load_on_the_hand_written_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without its select_related list, Journey (UUID-keyed) is plain.
    monkeypatch.setattr(Journey, "actrack_select_related", None)
    journey = make_journey()
    assert plain(Journey)
    ct = ContentType.objects.get_for_model(Journey).pk

    found = load_objects({ct: {str(journey.pk)}}, "default")

    assert field_values(found[(ct, str(journey.pk))]) == field_values(journey)


def test_select_related_models_keep_the_orm_path_and_load_relations_in_the_same_query() -> None:
    journey = make_journey()
    assert not plain(Journey)
    ct = ContentType.objects.get_for_model(Journey).pk

    with CaptureQueriesContext(connection) as queries:
        found = load_objects({ct: {str(journey.pk)}}, "default")
        text = str(found[(ct, str(journey.pk))])

    assert len(queries) == 1
    assert text == str(journey)


def test_keys_that_are_not_keys_of_the_model_are_skipped() -> None:
    station = make_station("east")
    ct = ContentType.objects.get_for_model(Station).pk

    found = load_objects(
        {ct: {str(station.pk), "not-a-number", str(station.pk + 1000)}}, "default"
    )

    assert list(found) == [(ct, str(station.pk))]


def test_more_keys_than_one_statement_takes_are_all_loaded() -> None:
    count = 1_200  # over SQLite's old limit of 999 parameters
    Station.objects.bulk_create([Station(name=f"s{n}") for n in range(count)])
    keys = {str(pk) for pk in Station.objects.values_list("pk", flat=True)}
    ct = ContentType.objects.get_for_model(Station).pk

    found = load_objects({ct: keys}, "default")

    assert {key for _ct, key in found} == keys
    assert all(str(obj.pk) == key for (_ct, key), obj in found.items())


@isolate_apps("tests.demo")
def test_only_models_read_from_their_own_table_by_the_plain_manager_are_plain() -> None:
    class Base(models.Model):
        name = models.CharField(max_length=10)

        class Meta:
            app_label = "demo"

    class Child(Base):
        extra = models.CharField(max_length=10)

        class Meta:
            app_label = "demo"

    class Proxied(Base):
        class Meta:
            app_label = "demo"
            proxy = True

    class Filtered(models.Manager["Managed"]):
        def get_queryset(self) -> models.QuerySet[Managed]:
            return super().get_queryset().filter(name="kept")

    class Managed(models.Model):
        name = models.CharField(max_length=10)
        objects = Filtered()

        class Meta:
            app_label = "demo"
            base_manager_name = "objects"

    class Related(models.Model):
        base = models.ForeignKey(Base, on_delete=models.CASCADE)
        actrack_select_related = ("base",)

        class Meta:
            app_label = "demo"

    assert plain(Base)
    assert not plain(Child)
    assert not plain(Proxied)
    assert not plain(Managed)
    assert not plain(Related)
    assert plain(get_user_model())


def test_empty_data_is_not_parsed_and_each_action_gets_its_own_dict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A page reads ``Action.data`` through JSONField's converter, except the stored
    empty object: each such action gets a new ``{}`` without parsing it."""
    import actrack
    from actrack.models import Action

    user, station = make_user(), make_station()
    for n, data in enumerate([{}, {"seats": [1, 2]}, {}]):
        actrack.log(user, f"checked-{n}", targets=station, **data)
    parsed: list[Any] = []
    original = models.JSONField.from_db_value

    def counting(self: Any, value: Any, expression: Any, conn: Any) -> Any:
        parsed.append(value)
        return original(self, value, expression, conn)

    monkeypatch.setattr(models.JSONField, "from_db_value", counting)
    monkeypatch.setattr(rows, "_CONVERTERS", weakref.WeakKeyDictionary())  # found again
    actions = station.actions.all().page(size=10).actions
    assert [a.verb for a in actions] == ["checked-2", "checked-1", "checked-0"]
    assert [a.data for a in actions] == [{}, {"seats": [1, 2]}, {}]
    assert len(parsed) == 1 and "seats" in parsed[0]
    actions[0].data["note"] = "changed"
    assert actions[2].data == {}
    assert Action.objects.get(verb="checked-0").data == {}


def test_page_actions_skip_model_init_and_equal_the_orm_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nobody listens to ``Action``'s init signals: a page builds its actions without
    ``Model.__init__``, each the same as the ORM's, and savable."""
    import actrack
    from actrack.models import Action

    user, station = make_user(), make_station()
    for n in range(3):
        actrack.log(user, f"checked-{n}", targets=station, seats=n)
    calls: list[Any] = []
    original = models.Model.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(type(self))
        original(self, *args, **kwargs)

    monkeypatch.setattr(models.Model, "__init__", counting)
    actions = station.actions.all().page(size=10).actions
    assert Action not in calls
    monkeypatch.undo()
    expected = list(Action.objects.order_by("-timestamp", "-pk"))
    assert [field_values(a) for a in actions] == [field_values(a) for a in expected]
    assert all(a._state.db == "default" and a._state.adding is False for a in actions)
    assert all(a.actor == user for a in actions)
    actions[0].verb = "rechecked"
    actions[0].save()
    assert Action.objects.count() == 3
    assert Action.objects.get(pk=actions[0].pk).verb == "rechecked"


def test_init_signal_listeners_get_every_instance_of_a_page() -> None:
    import actrack
    from actrack.models import Action

    station = make_station()
    for n in range(3):
        actrack.log(None, f"checked-{n}", targets=station)
    seen: list[Any] = []

    def listener(sender: Any, instance: Any, **kwargs: Any) -> None:
        seen.append(instance)

    models.signals.post_init.connect(listener, sender=Action)
    try:
        actions = station.actions.all().page(size=10).actions
    finally:
        models.signals.post_init.disconnect(listener, sender=Action)
    assert len(actions) == 3
    assert all(any(a is s for s in seen) for a in actions)


@isolate_apps("tests.demo")
def test_models_whose_init_or_attributes_do_more_are_built_by_the_orm() -> None:
    from actrack.rows import _plain_attributes

    class Simple(models.Model):
        name = models.CharField(max_length=10)
        owner = models.ForeignKey("auth.User", on_delete=models.CASCADE)

        class Meta:
            app_label = "demo"

    class WithFile(models.Model):
        upload = models.FileField()

        class Meta:
            app_label = "demo"

    class WithInit(models.Model):
        name = models.CharField(max_length=10)

        class Meta:
            app_label = "demo"

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.extra = True

    class WithFromDb(models.Model):
        name = models.CharField(max_length=10)

        class Meta:
            app_label = "demo"

        @classmethod
        def from_db(cls, db: Any, field_names: Any, values: Any) -> Any:
            return super().from_db(db, field_names, values)

    assert _plain_attributes(Simple)
    assert not _plain_attributes(WithFile)
    assert not _plain_attributes(WithInit)
    assert not _plain_attributes(WithFromDb)


def test_converters_are_found_once_per_model_and_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import actrack
    from actrack.models import Action

    station = make_station()
    logged = actrack.log(None, "checked", targets=station)
    assert logged is not None
    stored = Action.objects.get().timestamp
    monkeypatch.setattr(rows, "_CONVERTERS", weakref.WeakKeyDictionary())
    asked: list[Any] = []
    original = type(connection.ops).get_db_converters

    def counting(self: Any, expression: Any) -> Any:
        asked.append(expression.target)
        return original(self, expression)

    monkeypatch.setattr(type(connection.ops), "get_db_converters", counting)
    first = station.actions.all().page(size=10).actions
    second = station.actions.all().page(size=10).actions
    assert [a.pk for a in first] == [a.pk for a in second]
    assert asked == list(Action._meta.concrete_fields)
    assert first[0].timestamp == second[0].timestamp == stored


postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="a loader of PostgreSQL's timestamptz text"
)


@postgres_only
@pytest.mark.parametrize(
    "text",
    [
        "2026-11-28 10:24:35.959553+00",
        "2026-11-28 10:24:35.5+00",
        "2026-11-28 10:24:35+00",
        "2026-03-29 01:30:00-03:30",
        "1883-11-18 12:00:00+00:53:28",
        "0001-01-01 00:00:00+00",
    ],
)
def test_hand_read_timestamps_load_as_djangos_loader_loads_them(text: str) -> None:
    """ISO text, as PostgreSQL sends it, gives the value and zone Django's loader
    gives (the session's zone is the connection's), naive without one."""
    django_loader = connection.connection.adapters.get_loader(rows._TIMESTAMPTZ_OID, 0)
    for zone, django_loaded in [
        (connection.timezone, django_loader(rows._TIMESTAMPTZ_OID, connection.connection)),
        (None, None),
    ]:
        loader = rows._iso_loader(zone)
        assert loader is not None
        value = loader(rows._TIMESTAMPTZ_OID, connection.connection).load(text.encode())
        if zone is None:
            assert value == dt.datetime.fromisoformat(text).replace(tzinfo=None)
            assert value.tzinfo is None
        else:
            expected = django_loaded.load(text.encode())
            assert value == expected
            assert value.tzinfo is expected.tzinfo
            assert value.utcoffset() == dt.timedelta(0)


@postgres_only
@pytest.mark.parametrize("text", ["infinity", "-infinity", "2000-01-01 00:00:00+00 BC"])
def test_timestamps_iso_cannot_parse_go_to_djangos_loader(text: str) -> None:
    """What ``fromisoformat`` refuses is Django's loader's to parse or refuse."""
    django_loader = connection.connection.adapters.get_loader(rows._TIMESTAMPTZ_OID, 0)
    loader = rows._iso_loader(connection.timezone)
    assert loader is not None
    ours = loader(rows._TIMESTAMPTZ_OID, connection.connection)
    theirs = django_loader(rows._TIMESTAMPTZ_OID, connection.connection)
    try:
        expected: Any = theirs.load(text.encode())
    except Exception as error:  # the same refusal, whatever it is
        with pytest.raises(type(error)):
            ours.load(text.encode())
    else:
        assert ours.load(text.encode()) == expected


@postgres_only
def test_pages_objects_and_trackers_read_their_timestamps_through_the_iso_loader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A page's actions, the objects loaded for it and a user's tracker rows with
    their creation: every timestamp through the loader, equal to the ORM's."""
    import actrack
    from actrack.models import Action, Tracker
    from actrack.querysets import tracker_rows

    loader = rows._iso_loader(connection.timezone)
    assert loader is not None
    loaded: list[Any] = []
    original = loader.load

    def counting(self: Any, data: Any) -> Any:
        loaded.append(original(self, data))
        return loaded[-1]

    user, station = make_user(), make_station()
    user.last_login = timezone.now()
    user.save()
    actrack.track(user, station)
    for n in range(3):
        actrack.log(user, f"checked-{n}", targets=station)
    monkeypatch.setattr(loader, "load", counting)

    actions = station.actions.all().page(size=10).actions
    assert loaded == [a.timestamp for a in Action.objects.order_by("-timestamp", "-pk")]
    loaded.clear()
    found = load_objects(wanted_of(user), "default")
    stored = get_user_model()._base_manager.get(pk=user.pk)
    fields = stored._meta.concrete_fields
    dates = [f.attname for f in fields if isinstance(f, models.DateTimeField)]
    assert "last_login" in dates
    assert loaded == [getattr(stored, name) for name in dates]
    assert field_values(found[(ContentType.objects.get_for_model(user).pk, str(user.pk))]) == (
        field_values(stored)
    )
    loaded.clear()
    trackers = tracker_rows(user, "default", created=True)
    assert loaded == [Tracker.objects.get(user=user).created] == [t.created for t in trackers]
    assert len(actions) == 3


sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's cursor class")


@sqlite_only
@pytest.mark.parametrize(
    "query",
    [
        "SELECT %s",
        "%s, %s,%s",
        "SELECT 1",
        "SELECT * FROM t WHERE a = %s AND b IN (%s, %s) LIMIT %s",
        "SELECT 'percent %%' || %s",  # %%: Django's conversion
        "SELECT %%s, %s",
        "SELECT '%%%s'",
        "",
    ],
)
def test_sqlite_placeholders_convert_as_djangos_conversion_converts_them(query: str) -> None:
    from django.db.backends.sqlite3.base import SQLiteCursorWrapper

    fast = rows._qmark_cursor()
    assert fast is not None and fast.__base__ is SQLiteCursorWrapper
    with rows.reading_cursor(connection) as cursor:
        inner = cursor.cursor
        assert type(inner) is fast
        assert inner.convert_query(query) == SQLiteCursorWrapper.convert_query(inner, query)
        named = "SELECT %(a)s, %(b)s"
        assert inner.convert_query(named, param_names=["a", "b"]) == "SELECT :a, :b"


@pytest.mark.parametrize("vendor_cursor", ["sqlite", "postgresql"])
def test_feed_statements_run_through_the_fast_placeholders_and_djangos_wrappers(
    monkeypatch: pytest.MonkeyPatch, vendor_cursor: str
) -> None:
    """On SQLite a page's statement and the unread count convert their placeholders
    with the plain replacement; Django's execute wrappers and query log still see
    every statement, with its parameters. Other databases' cursors stay as they are."""
    import actrack
    from actrack.readstate import unread_count

    if connection.vendor != vendor_cursor:
        pytest.skip(f"a {vendor_cursor} cursor")
    user, station = make_user(), make_station()
    actrack.track(user, station, actor_only=False)
    for n in range(3):
        actrack.log(make_user(), f"checked-{n}", targets=station)
    converted: list[str] = []
    fast = rows._qmark_cursor()
    if fast is not None:
        original = fast.convert_query

        def spying(self: Any, query: str, *, param_names: Any = None) -> str:
            converted.append(query)
            return original(self, query, param_names=param_names)

        monkeypatch.setattr(fast, "convert_query", spying)
    wrapped: list[str] = []

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        wrapped.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper), CaptureQueriesContext(connection) as logged:
        page = user.actions.feed().page(size=2)
        count = unread_count(user, cap=10)
    assert len(page.actions) == 2 and page.next_cursor is not None
    assert count == len(list(user.actions.feed(unread=True)))
    assert [q["sql"] for q in logged.captured_queries] and len(wrapped) == len(logged)
    ours = [sql for sql in wrapped if sql in converted]
    if vendor_cursor == "sqlite":
        # The page's statement and the count's, each given the values it was run with.
        assert len(ours) >= 2
        assert all("%s" not in q["sql"] for q in logged.captured_queries)
    else:
        assert not converted
        assert type(connection.cursor().cursor).__name__ != "QmarkCursor"
