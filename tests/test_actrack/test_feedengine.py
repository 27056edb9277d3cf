"""The fan-out feed engine: same pages as the plain plan, constant cost, index-driven plans."""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.utils import timezone

import actrack
from actrack import fanout, feedengine, memo
from actrack.models import Action
from tests.conftest import all_page_ids, make_line, make_station, make_train, make_user
from tests.demo.models import Line, Station

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> dict[str, Any]:
    rng = random.Random(7)
    trains = [make_train() for _ in range(6)]
    stations = [make_station() for _ in range(6)]
    lines = [make_line() for _ in range(3)]
    now = timezone.now()
    verbs = ["departed", "arrived", "delayed", "closed"]
    with actrack.batch():
        for number in range(300):
            actor = rng.choice([*trains, *stations, None])
            actrack.log(
                actor,
                rng.choice(verbs),
                targets=rng.sample(stations, rng.randint(0, 2)),
                related=rng.sample([*trains, *lines], rng.randint(0, 2)),
                level=rng.choice([10, 30, 30, 40]),
                # Many equal timestamps: ties must be broken by id across pages.
                timestamp=now - dt.timedelta(minutes=rng.randint(0, 60)),
                grouping_delay=-1,
                n=number,
            )
    user = make_user()
    actrack.track(user, trains[:2], actor_only=False)
    actrack.track(user, trains[2], verbs=["delayed"])
    actrack.track(user, Station, verbs=["closed", "arrived"])
    actrack.track(user, Line, actor_only=False)
    actrack.track(user, stations[0], actor_only=False, verbs=["departed"])
    return {"user": user, "trains": trains, "stations": stations}


def test_fanout_pages_equal_the_plain_feed(world: dict[str, Any]) -> None:
    user = world["user"]
    expected = [a.pk for a in user.actions.feed()]
    assert len(expected) > 60
    assert all_page_ids(user.actions.feed, 7) == expected
    assert all_page_ids(user.actions.feed, 20) == expected


def test_filters_added_after_feed_apply_inside_every_branch(world: dict[str, Any]) -> None:
    user = world["user"]

    def filtered() -> Any:
        return user.actions.feed().filter(verb="arrived").exclude(level=40)

    expected = [a.pk for a in filtered()]
    assert expected
    assert all_page_ids(filtered, 3) == expected
    unread = [a.pk for a in user.actions.feed(unread=True)]
    assert all_page_ids(lambda: user.actions.feed(unread=True), 5) == unread


def test_fanout_plan_is_used_and_falls_back_for_many_trackers(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    user = world["user"]
    feed = user.actions.feed()
    assert feedengine.page_ids_sql(feed, None, 21) is not None
    expected = [a.pk for a in feed]
    monkeypatch.setattr(feedengine, "MAX_FANOUT_TRACKERS", 2)
    assert feedengine.page_ids_sql(user.actions.feed(), None, 21) is None
    assert all_page_ids(user.actions.feed, 20) == expected


def test_tracked_by_and_temp_trackers_page_through_the_engine(world: dict[str, Any]) -> None:
    from actrack.models import TempTracker

    tracker = TempTracker(world["user"], world["stations"][1], actor_only=False)
    expected = [a.pk for a in Action.objects.tracked_by(tracker).newest_first()]
    assert expected
    # One tracker, three scans: read directly, without the heads-and-bound passes,
    # and with the tracker's values in the scans (no tracker relation to join).
    sql = feedengine.page_ids_sql(Action.objects.tracked_by(tracker), None, 5)
    assert sql is not None and "_heads" not in sql[0] and "_t0" not in sql[0]
    assert all_page_ids(lambda: Action.objects.tracked_by(tracker), 4) == expected


def test_link_scans_read_the_action_table_only_to_check_it(world: dict[str, Any]) -> None:
    """An object's stream checks nothing on the action: its link scans read the link
    rows alone. A filter on the action (here a verb) brings the action back: joined
    on SQLite, read by a subquery per link row on PostgreSQL (cheaper to plan)."""
    station = world["stations"][1]
    action = connection.ops.quote_name("actrack_action")
    join = f"JOIN {action} ON"
    check = f"FROM {action} WHERE {action}.id = _l.action_id)"
    plain = feedengine.page_ids_sql(station.actions.all(), None, 21)
    filtered = feedengine.page_ids_sql(station.actions.all().with_verbs("closed"), None, 21)
    assert plain is not None and filtered is not None
    assert join not in plain[0] and check not in plain[0]
    assert plain[0].count("_l.obj_key = %s") == 2  # targets and related
    if connection.vendor == "postgresql":
        assert filtered[0].count(check) == 2 and join not in filtered[0]
    else:
        assert filtered[0].count(join) == 2 and check not in filtered[0]
    for queryset in (station.actions.all, lambda: station.actions.all().with_verbs("closed")):
        expected = [a.pk for a in queryset().newest_first()]
        assert expected
        assert all_page_ids(queryset, 2) == expected


@pytest.mark.parametrize("tracked", [1, 20, 100])
def test_a_feed_page_is_two_queries_whatever_the_trackers_then_one_on_postgresql(
    tracked: int, count_queries: Any
) -> None:
    user = make_user()
    trains = [make_train() for _ in range(tracked)]
    with actrack.batch():
        for number, train in enumerate(trains * 2):
            actrack.log(train, "departed", grouping_delay=-1, n=number)
    actrack.track(user, trains, actor_only=False)
    # Content types come from Django's cache; warm it for the user model, whatever
    # ran before this test.
    ContentType.objects.get_for_model(type(user))
    cursor = None
    for number in range(2):
        with count_queries() as log:
            page = user.actions.feed().page(cursor=cursor, size=10)
        # The user's trackers, then the page; on PostgreSQL the process keeps the
        # rows, and the next page's statement checks them (actrack.trackercache).
        kept = number > 0 and connection.vendor == "postgresql"
        assert len(log) == (1 if kept else 2), log.statements
        assert len(page.actions) == min(10, 2 * tracked)
        cursor = page.next_cursor
        if cursor is None:
            break


def test_large_pages_and_counts_with_a_few_busy_trackers_among_quiet_ones() -> None:
    """Fewer distinct heads than rows asked for: PostgreSQL takes several rows per
    head (so that a bound exists); pages and unread counts stay exact."""
    from actrack.readstate import unread_count

    busy = [make_train() for _ in range(3)]
    quiet = [make_train() for _ in range(27)]
    user = make_user()
    actrack.track(user, [*busy, *quiet], actor_only=False)
    now = timezone.now() + dt.timedelta(minutes=1)  # after the trackers: all unread
    with actrack.batch():
        for number in range(180):
            actrack.log(
                busy[number % 3],
                "departed",
                timestamp=now + dt.timedelta(seconds=number),
                grouping_delay=-1,
            )
        for number, train in enumerate(quiet):
            actrack.log(
                train, "departed", timestamp=now + dt.timedelta(seconds=number), grouping_delay=-1
            )
    expected = [a.pk for a in user.actions.feed()]
    assert len(expected) == 207
    for size in (50, 100):
        sql = feedengine.page_ids_sql(user.actions.feed(), None, size + 1)
        assert sql is not None
        assert ("row_number()" in sql[0]) is (connection.vendor == "postgresql")
        assert all_page_ids(user.actions.feed, size) == expected
    unread = len(list(user.actions.feed(unread=True)))
    assert unread == 207
    for cap in (50, 100, 150, 300):
        assert unread_count(user, cap=cap) == min(cap, unread)


def _explain(queryset: Any, cursor: str | None = None) -> dict[str, Any]:
    from django.db.models.expressions import RawSQL

    from actrack.paging import decode_cursor

    position = decode_cursor(cursor) if cursor else None
    sql = feedengine.page_ids_sql(queryset, position, 21)
    assert sql is not None
    final = Action.objects.filter(pk__in=RawSQL(*sql)).newest_first()[:21]
    query, params = final.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {query}", params)
        raw = cursor.fetchone()[0]  # psycopg decodes json columns itself
        plan: dict[str, Any] = (json.loads(raw) if isinstance(raw, str) else raw)[0]
    return plan


def _summary(plan: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (n["Node Type"], n.get("Index Name"), n.get("Actual Loops"), n.get("Shared Hit Blocks"))
        for n in _nodes(plan)
    ]


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found.extend(_nodes(child))
    return found


@pytest.mark.django_db(transaction=True)
def test_postgresql_plan_uses_the_feed_indexes_with_bounded_buffers() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("EXPLAIN (ANALYZE, BUFFERS) is PostgreSQL's")
    busy = [make_train() for _ in range(20)]
    stations = [make_station() for _ in range(20)]
    with actrack.batch():
        for number in range(20_000):
            actrack.log(
                busy[number % 20],
                "departed",
                targets=stations[number % 20],
                related=stations[(number + 7) % 20],
                grouping_delay=-1,
            )
    with connection.cursor() as cursor:
        # As autovacuum would: statistics, and no dead rows left by earlier tests.
        cursor.execute("VACUUM ANALYZE")
    quiet_user, dense_user = make_user(), make_user()
    quiet = [make_train() for _ in range(50)]  # followed, never acting
    actrack.track(quiet_user, quiet, actor_only=False)
    actrack.track(dense_user, busy[:5], actor_only=False)

    quiet_plan = _explain(quiet_user.actions.feed())["Plan"]
    dense_plan = _explain(dense_user.actions.feed())["Plan"]
    for plan in (quiet_plan, dense_plan):
        seq = [n.get("Relation Name") for n in _nodes(plan) if n["Node Type"] == "Seq Scan"]
        # The busy tables are only ever reached through indexes.
        assert not {"actrack_action", "actrack_action_targets"} & set(seq), seq
        indexes = {node.get("Index Name") for node in _nodes(plan)}
        assert {"actrack_action_actor", "actrack_target_feed"} <= indexes
    # A few buffers per tracker and role (a scan, and the rows the walk may read
    # instead), and per row of the page (21 ids, then the 21 actions by primary
    # key), however busy the tables are.
    per_scan = 4 + 5 * fanout.WALK_ROWS_PER_SCAN
    for plan, trackers in ((quiet_plan, 50), (dense_plan, 5)):
        buffers = plan["Shared Hit Blocks"] + plan.get("Shared Read Blocks", 0)
        bound = trackers * 3 * per_scan + 21 * 2 * 3 + 20
        assert buffers <= bound, (buffers, repr(_summary(plan)))
    assert dense_plan["Actual Rows"] == 21
    # Page 50 by cursor costs about what page 1 does.
    cursor = None
    for _ in range(49):
        cursor = dense_user.actions.feed().page(cursor=cursor, size=20).next_cursor
    assert cursor is not None
    deep_plan = _explain(dense_user.actions.feed(), cursor)["Plan"]
    assert deep_plan["Actual Rows"] == 21

    def buffers(plan: dict[str, Any]) -> int:
        return int(plan["Shared Hit Blocks"] + plan.get("Shared Read Blocks", 0))

    deep, first = buffers(deep_plan), buffers(dense_plan)
    assert deep <= 1.5 * first, (deep, first)


def test_many_trackers_and_ties_page_like_the_plain_feed() -> None:
    """Hundreds of trackers over few busy objects: heads tie, the bound must not cut."""
    rng = random.Random(11)
    trains = [make_train() for _ in range(40)]
    stations = [make_station() for _ in range(40)]
    now = timezone.now()
    with actrack.batch():
        for number in range(400):
            actrack.log(
                rng.choice(trains),
                rng.choice(["departed", "arrived"]),
                targets=rng.sample(stations, rng.randint(1, 3)),
                related=rng.sample(trains, rng.randint(0, 2)),
                timestamp=now - dt.timedelta(seconds=rng.randint(0, 30)),  # many equal
                grouping_delay=-1,
                n=number,
            )
    user = make_user()
    quiet = [make_line() for _ in range(200)]  # followed, never mentioned
    actrack.track(user, [*trains[:25], *stations[:30], *quiet], actor_only=False)
    actrack.track(user, trains[30:], verbs=["arrived"])
    expected = [a.pk for a in user.actions.feed()]
    assert len(expected) > 200
    for size in (1, 6, 20):
        assert all_page_ids(user.actions.feed, size) == expected


def test_filters_needing_joins_fall_back_to_the_plain_plan(world: dict[str, Any]) -> None:
    user, station = world["user"], world["stations"][0]

    def joined() -> Any:
        return user.actions.feed().filter(actiontarget__obj_key=str(station.pk))

    assert feedengine.page_ids_sql(joined(), None, 21) is None
    expected = [a.pk for a in joined()]
    assert expected
    assert all_page_ids(joined, 4) == expected


def test_too_many_parameters_fall_back_to_the_plain_plan(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    user = world["user"]
    expected = [a.pk for a in user.actions.feed()]
    monkeypatch.setattr(feedengine, "_max_params", lambda connection: 3)
    assert feedengine.page_ids_sql(user.actions.feed(), None, 21) is None
    assert all_page_ids(user.actions.feed, 20) == expected


def _busy_and_old_world() -> tuple[Any, Any]:
    """Two users with 40 trackers: one follows what acts now, one what acted long ago."""
    now = timezone.now()
    recent = [make_train() for _ in range(40)]
    old = [make_train() for _ in range(40)]
    others = [make_station() for _ in range(50)]
    with actrack.batch():
        for number in range(300):  # long ago: the old trains, among others
            actrack.log(
                old[number % 40] if number % 3 == 0 else others[number % 50],
                "departed",
                targets=others[(number + 1) % 50],
                timestamp=now - dt.timedelta(days=30, minutes=number),
                grouping_delay=-1,
            )
        for number in range(300):  # lately: the recent trains, among others
            actrack.log(
                recent[number % 40] if number % 2 == 0 else others[number % 50],
                "arrived",
                targets=others[(number + 3) % 50],
                timestamp=now - dt.timedelta(minutes=number),
                grouping_delay=-1,
            )
    busy_user, old_user = make_user(), make_user()
    actrack.track(busy_user, recent, actor_only=False)
    actrack.track(old_user, old, actor_only=False)
    return busy_user, old_user


def test_walk_and_fan_out_page_like_the_plain_feed() -> None:
    busy_user, old_user = _busy_and_old_world()
    for user in (busy_user, old_user):
        sql = feedengine.page_ids_sql(user.actions.feed(), None, 21)
        assert sql is not None and "_w AS" in sql[0]  # 120 scans: a walk is tried
        expected = [a.pk for a in user.actions.feed()]
        assert len(expected) >= 100
        for size in (5, 20):
            assert all_page_ids(user.actions.feed, size) == expected
    few = make_user()
    actrack.track(few, Station, actor_only=False)
    sql = feedengine.page_ids_sql(few.actions.feed(), None, 21)
    assert sql is not None and "_w AS" not in sql[0]  # 3 scans: nothing to save


def test_a_whole_model_feed_lists_actions_naming_several_of_its_objects() -> None:
    """A model's link rows hold an action once per object of that model it names:
    each page still holds as many actions as asked, like the plain feed. (Taking a
    scan's first rows gave two actions for a page of three.)"""
    someone = make_user()
    alone, with_others = make_user(), make_user()
    actrack.track(alone, Station, actor_only=False)  # three scans: inlined
    trains = [make_train(), make_train()]
    actrack.track(with_others, [Station, *trains], actor_only=False)  # heads and bound
    now = timezone.now()
    for number in range(6):
        actrack.log(
            someone,
            "inspected",
            targets=[make_station(), make_station()],
            related=[make_station(), trains[number % 2]] if number % 3 else None,
            timestamp=now + dt.timedelta(minutes=number + 1),
        )
    for user in (alone, with_others):
        expected = [action.pk for action in user.actions.feed()]
        assert len(expected) == 6
        for size in (1, 2, 3, 4):
            assert [a.pk for a in user.actions.feed().page(size=size).actions] == (expected[:size])
            assert all_page_ids(user.actions.feed, size) == expected
        unread = [action.pk for action in user.actions.feed(unread=True)]
        assert all_page_ids(lambda user=user: user.actions.feed(unread=True), 3) == unread


def test_walk_matches_every_kind_of_tracker_like_the_plain_feed() -> None:
    """The walk's sets (read in SQL from the tracker rows) for every kind of
    tracker: objects and models, with and without verbs, actor-only or not."""
    now = timezone.now()
    trains = [make_train() for _ in range(50)]
    stations = [make_station() for _ in range(10)]
    user = make_user()
    actrack.track(user, trains[:10])  # actor-only
    actrack.track(user, trains[10:20], actor_only=False, verbs=["departed"])
    actrack.track(user, trains[20:30], actor_only=False)
    actrack.track(user, trains[30:45], actor_only=False, verbs=["arrived", "departed"])
    actrack.track(user, stations[:5], verbs=["closed", "opened"])  # actor-only, verbs
    actrack.track(user, Station, actor_only=False, verbs=["renamed"])
    actrack.track(user, Line)  # actor-only, any verb
    verbs = ["departed", "arrived", "closed", "opened", "renamed"]
    lines = [make_line() for _ in range(3)]
    rng = random.Random(7)
    with actrack.batch():
        for number in range(400):
            everything = [*trains, *stations, *lines]
            actor = rng.choice(everything)
            targets = rng.sample(everything, rng.randint(0, 2))
            related = rng.sample(everything, rng.randint(0, 1))
            actrack.log(
                actor,
                rng.choice(verbs),
                targets=targets or None,
                related=related or None,
                timestamp=now - dt.timedelta(seconds=number),
                grouping_delay=-1,
            )
    expected = [a.pk for a in user.actions.feed()]
    assert 100 < len(expected) < 400  # some actions match, others do not
    for size in (7, 20):
        assert all_page_ids(user.actions.feed, size) == expected
    sql, params = feedengine.page_ids_sql(user.actions.feed(), None, 21) or ("", [])
    assert "_w AS" in sql
    # The walk alone found the page: its own rows are the page.
    select = " SELECT _u.id FROM (SELECT DISTINCT"
    assert select in sql
    with connection.cursor() as cursor:
        counted = sql.replace(select, " SELECT (SELECT COUNT(*) FROM _w)," + select[7:])
        cursor.execute(counted, params)
        rows = cursor.fetchall()
    assert [row[0] for row in rows] == [21] * 21
    assert [row[1] for row in rows] == expected[:21]


def test_sqlite_walk_reads_the_timeline_index_in_order_and_stops_early() -> None:
    """The walk must not sort its rows (that reads every walked row); it takes the
    timeline index from the newest, bounded below by the walk's horizon."""
    if connection.vendor != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN of SQLite")
    busy_user, _old_user = _busy_and_old_world()
    sql = feedengine.page_ids_sql(busy_user.actions.feed(), None, 21)
    assert sql is not None
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql[0]}", sql[1])
        plan = [(row[0], row[1], row[3]) for row in cursor.fetchall()]
    walk = next(node for node, _parent, detail in plan if detail == "MATERIALIZE _w")
    steps = [detail for _node, parent, detail in plan if parent == walk]
    assert any(
        step.startswith("SEARCH") and "actrack_action_timeline (timestamp>?)" in step
        for step in steps
    ), steps
    assert not any("TEMP B-TREE" in step for step in steps), steps
    # Its horizon, the newest rows it may read, comes from the index alone: no
    # action row is read for it, nothing sorted.
    horizon = next(node for node, _parent, detail in plan if detail == "MATERIALIZE _wh")
    steps = [detail for _node, parent, detail in plan if parent == horizon]
    assert steps == ["SCAN actrack_action USING COVERING INDEX actrack_action_timeline"], steps


@pytest.mark.django_db(transaction=True)
def test_postgresql_walks_for_busy_objects_and_fans_out_for_quiet_ones() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("EXPLAIN (ANALYZE, BUFFERS) is PostgreSQL's")
    busy_user, old_user = _busy_and_old_world()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")

    def heads_run(user: Any) -> bool:
        nodes = _nodes(_explain(user.actions.feed())["Plan"])
        scans = [n for n in nodes if n.get("Index Name") == "actrack_target_feed"]
        return any(n.get("Actual Loops", 0) > 0 for n in scans)

    assert not heads_run(busy_user)  # the newest rows held the page
    assert heads_run(old_user)  # the walk came back short: per-tracker scans
    # The walk checks each action's links against the trackers hashed once, not
    # rebuilt for every walked action.
    nodes = _nodes(_explain(busy_user.actions.feed())["Plan"])
    walked = [n for n in nodes if n.get("Index Name") == "actrack_target_unique"]
    assert walked and max(n["Actual Loops"] for n in walked) > 1
    rebuilt = [
        (n["Node Type"], n.get("CTE Name"), n["Actual Loops"])
        for n in nodes
        if n.get("Actual Loops", 0) > 1
        and (
            n.get("CTE Name", "").startswith("_wt") or n["Node Type"] in ("Hash", "HashAggregate")
        )
    ]
    assert not rebuilt, rebuilt


def _rare_verb_world() -> Any:
    """A user following 40 trains for two rare verbs, among many actions of a common one."""
    now = timezone.now()
    trains = [make_train() for _ in range(40)]
    stations = [make_station() for _ in range(10)]
    with actrack.batch():
        for number in range(400):
            rare = number % 8 == 0
            actrack.log(
                trains[number % 40],
                ("delayed" if number % 16 == 0 else "cancelled") if rare else "departed",
                targets=stations[number % 10],
                timestamp=now - dt.timedelta(minutes=number),
                grouping_delay=-1,
            )
    user = make_user()
    actrack.track(user, trains, actor_only=False, verbs=["delayed", "cancelled"])
    return user


def test_walk_keeps_to_the_verbs_when_every_tracker_names_some() -> None:
    user = _rare_verb_world()
    sql = feedengine.page_ids_sql(user.actions.feed(), None, 21)
    assert sql is not None and "_w AS" in sql[0]
    walk_verb = f"{connection.ops.quote_name('actrack_action')}.verb = %s"
    assert walk_verb in sql[0]  # each verb's own index range
    assert "delayed" in sql[1] and "cancelled" in sql[1]
    expected = [a.pk for a in user.actions.feed()]
    assert len(expected) == 50
    assert {a.verb for a in user.actions.feed()} == {"delayed", "cancelled"}
    for size in (3, 20):
        assert all_page_ids(user.actions.feed, size) == expected
    # One tracker without verbs: any action may match, the walk reads every verb.
    actrack.track(user, make_station())
    sql = feedengine.page_ids_sql(user.actions.feed(), None, 21)
    assert sql is not None and "_w AS" in sql[0] and walk_verb not in sql[0]


@pytest.mark.django_db(transaction=True)
def test_postgresql_rare_verbs_fill_the_page_from_the_walk() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("EXPLAIN (ANALYZE, BUFFERS) is PostgreSQL's")
    user = _rare_verb_world()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    nodes = _nodes(_explain(user.actions.feed())["Plan"])
    scans = [n for n in nodes if n.get("Index Name") == "actrack_target_feed"]
    assert scans and all(n.get("Actual Loops", 0) == 0 for n in scans)
    walked = [n for n in nodes if n.get("Index Name") == "actrack_action_verb"]
    assert len(walked) == 2


def test_whole_model_and_few_trackers_page_directly() -> None:
    trains = [make_train() for _ in range(3)]
    with actrack.batch():
        for number in range(90):
            actrack.log(trains[number % 3], "departed", targets=make_station(), grouping_delay=-1)
    user = make_user()
    actrack.track(user, Station, actor_only=False)
    actrack.track(user, trains[0])  # actor only: 3 + 1 scans
    sql = feedengine.page_ids_sql(user.actions.feed(), None, 21)
    assert sql is not None and "_heads" not in sql[0] and "_t0" not in sql[0]
    expected = [a.pk for a in user.actions.feed()]
    assert len(expected) == 90
    assert all_page_ids(user.actions.feed, 7) == expected


def test_an_object_page_lists_an_action_once_whatever_the_roles_of_the_object() -> None:
    """The actor, target and related scans of an object's page find an action once
    each: the page lists it once. On PostgreSQL the scans are members of a ``UNION``
    (no ``DISTINCT`` layer around them); SQLite keeps ``DISTINCT`` over subqueries."""
    train, other = make_train(), make_train()
    with actrack.batch():
        for number in range(30):
            actrack.log(
                train if number % 2 else other,
                "coupled",
                targets=[train, other] if number % 3 else other,
                related=train if number % 5 else None,
                grouping_delay=-1,
                n=number,
            )
    sql = feedengine.page_ids_sql(train.actions.all(), None, 21)
    assert sql is not None
    postgres = connection.vendor == "postgresql"
    assert ("DISTINCT" not in sql[0] and sql[0].count(" UNION (") == 2) is postgres
    expected = [a.pk for a in Action.objects.for_object(train).order_by("-timestamp", "-pk")]
    assert len(expected) == len(set(expected)) == 29  # all but one (n=0: other, other)
    assert all_page_ids(train.actions.all, 4) == expected


@pytest.mark.parametrize("walk", [True, False])
def test_keys_with_quotes_backslashes_and_braces_page_like_the_plain_feed(
    walk: bool, monkeypatch: Any
) -> None:
    """Tracker rows travel as array literals on PostgreSQL (as parameters on SQLite):
    any key must come back as it was."""
    from actrack.querysets import TrackerRow

    if not walk:
        monkeypatch.setattr(fanout, "WALK_MIN_SCANS", 10**9)
    ct = ContentType.objects.get_for_model(Station).pk
    odd = ['"', "\\", '\\"', ",", "{}", "{", "NULL", "null", " spaced ", "a'b", "é ∂", "x" * 200]
    keys = [f"{text}{number}" for number in range(4) for text in odd]  # 48 trackers
    now = timezone.now()
    for number, key in enumerate(keys * 2):
        Action.objects.create(
            actor_ct_id=ct,
            actor_key=key,
            verb="closed",
            level=20,
            timestamp=now - dt.timedelta(seconds=number),
        )
    Action.objects.create(actor_ct_id=ct, actor_key="NULL", verb="closed", level=20, timestamp=now)
    trackers = [TrackerRow(ct, key, [], False, None) for key in keys]
    sql = feedengine.page_ids_sql(Action.objects.tracked_by(trackers), None, 21)
    assert sql is not None and ("_w AS" in sql[0]) == walk
    expected = [a.pk for a in Action.objects.tracked_by(trackers).newest_first()]
    assert len(expected) == len(keys) * 2
    for size in (5, 20):
        assert all_page_ids(lambda: Action.objects.tracked_by(trackers), size) == expected


# -- PostgreSQL: the walk alone first (feedengine.fetch_page) ---------------------------------

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the walk alone saves PostgreSQL's planning"
)


@postgresql_only
def test_a_walk_that_settles_the_page_runs_alone(count_queries: Any) -> None:
    busy_user, _old_user = _busy_and_old_world()
    expected = [a.pk for a in busy_user.actions.feed()]
    feed = busy_user.actions.feed()
    with count_queries() as log:
        first = feed.page()
        second = feed.page(cursor=first.next_cursor)
    assert len(log) == 2  # one statement a page
    for sql in log.statements:
        assert "_w AS" in sql and "_heads" not in sql
    assert [a.pk for a in [*first.actions, *second.actions]] == expected[:40]
    assert not feedengine._WHOLE_STATEMENT_FEEDS


@postgresql_only
def test_a_walk_that_does_not_settle_the_page_leaves_it_to_the_whole_statement(
    count_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old user's followed trains acted before the 300 newest actions: the walk
    (120 rows) finds none of them."""
    _busy_user, old_user = _busy_and_old_world()
    expected = [a.pk for a in old_user.actions.feed()]
    assert len(expected) >= 100
    feed = old_user.actions.feed()
    with count_queries() as log:
        first = feed.page()
    assert len(log) == 2  # the walk alone, then the fan-out
    assert "_heads" not in log.statements[0] and "_heads" in log.statements[1]
    assert "_w AS" in log.statements[0] and "_w AS" not in log.statements[1]  # walked once
    assert [a.pk for a in first.actions] == expected[:20]
    with count_queries() as log:
        again = feed.page()
    assert len(log) == 1  # remembered: first pages go to the fan-out at once
    assert "_heads" in log.statements[0] and "_w AS" not in log.statements[0]
    assert [a.pk for a in again.actions] == expected[:20]
    with count_queries() as log:
        second = feed.page(cursor=first.next_cursor)
    # A cursor page still walks first: below the cursor the old trains' actions are
    # one in three, and the walk settles the page.
    assert len(log) == 1
    assert "_w AS" in log.statements[0] and "_heads" not in log.statements[0]
    assert [a.pk for a in second.actions] == expected[20:40]
    clock = memo.time.monotonic() + feedengine.WALK_RETRY_SECONDS + 1
    monkeypatch.setattr(memo.time, "monotonic", lambda: clock)
    with count_queries() as log:
        assert [a.pk for a in feed.page().actions] == expected[:20]
    assert len(log) == 2  # tried again after a while


@postgresql_only
def test_a_cursor_page_the_walk_does_not_settle_leaves_first_pages_to_their_walk(
    count_queries: Any,
) -> None:
    """30 actions of the followed trains on top, then 300 of other objects, then 100
    old ones of the trains: page 1's walk (120 rows) settles it, page 2's finds 10."""
    trains = [make_train() for _ in range(40)]  # 120 scans: a walk of 120 rows
    others = [make_station() for _ in range(50)]
    now = timezone.now()
    with actrack.batch():
        for number in range(430):
            followed = number < 30 or number >= 330
            actrack.log(
                trains[number % 40] if followed else others[number % 50],
                "departed",
                timestamp=now - dt.timedelta(minutes=number),
                grouping_delay=-1,
            )
    user = make_user()
    actrack.track(user, trains, actor_only=False)
    expected = [a.pk for a in user.actions.feed()]
    assert len(expected) == 130
    feed = user.actions.feed()
    with count_queries() as log:
        first = feed.page()
        second = feed.page(cursor=first.next_cursor)
    assert len(log) == 3  # page 1 by its walk; page 2's walk falls short, then the fan-out
    assert "_w AS" in log.statements[0] and "_heads" not in log.statements[0]
    assert "_w AS" in log.statements[1] and "_heads" in log.statements[2]
    with count_queries() as log:
        third = feed.page(cursor=second.next_cursor)
        again = feed.page()
    assert len(log) == 2
    assert "_heads" in log.statements[0] and "_w AS" not in log.statements[0]  # remembered
    assert "_w AS" in log.statements[1] and "_heads" not in log.statements[1]  # not for page 1
    pages = [first, second, third]
    assert [a.pk for page in pages for a in page.actions] == expected[:60]
    assert [a.pk for a in again.actions] == expected[:20]


@postgresql_only
def test_a_walk_that_reads_the_whole_timeline_settles_a_short_page(count_queries: Any) -> None:
    trains = [make_train() for _ in range(40)]  # 120 scans: a walk of 120 rows
    user = make_user()
    actrack.track(user, trains, actor_only=False)
    now = timezone.now()
    logged = [
        actrack.log(trains[n], "departed", timestamp=now + dt.timedelta(minutes=n + 1))
        for n in range(5)
    ]
    actrack.log(make_station(), "closed")  # followed by nobody
    feed = user.actions.feed()
    with count_queries() as log:
        page = feed.page()
    assert len(log) == 1
    assert "_w AS" in log.statements[0] and "_heads" not in log.statements[0]
    assert [a.pk for a in page.actions] == [a.pk for a in reversed(logged)]
    assert page.next_cursor is None


def test_only_user_feeds_on_postgresql_try_the_walk_alone(count_queries: Any) -> None:
    """Elsewhere, and for trackers given directly, a page is the whole statement."""
    busy_user, _old_user = _busy_and_old_world()
    trackers = list(busy_user.trackers.all())
    for queryset in (Action.objects.tracked_by(trackers).visible(), busy_user.actions.feed()):
        with count_queries() as log:
            page = queryset.page()
        assert len(page.actions) == 20
        alone = connection.vendor == "postgresql" and queryset.query.where.children[0].lhs.owner
        assert ("_heads" in log.statements[0]) is not alone
        assert "_w AS" in log.statements[0]  # the walk: alone, or first in the whole statement


@postgresql_only
def test_the_whole_statement_is_remembered_per_user_whatever_the_filters(
    count_queries: Any,
) -> None:
    """Filters may hold subqueries, which compare by identity: the hint is per user."""
    _busy_user, old_user = _busy_and_old_world()
    old_user.actions.feed().page()  # the walk falls short: remembered
    filtered = old_user.actions.feed().involving_model(Station)  # reads the trackers
    with count_queries() as log:
        page = filtered.page()
    assert len(log) == 1 and "_heads" in log.statements[0]
    expected = [a.pk for a in old_user.actions.feed().involving_model(Station)]
    assert [a.pk for a in page.actions] == expected[:20]
    assert len(feedengine._WHOLE_STATEMENT_FEEDS) == 1
