"""actrack.track() / untrack(): one tracker per (user, object or model), set-based."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, transaction

import actrack
from actrack.models import Action, Tracker
from tests.conftest import make_station, make_train, make_user
from tests.demo.models import Station, Train

pytestmark = pytest.mark.django_db


def test_track_creates_one_tracker_with_defaults() -> None:
    user, train = make_user(), make_train()
    tracker = actrack.track(user, train)
    assert isinstance(tracker, Tracker)
    saved = Tracker.objects.get()
    assert saved.user == user
    assert saved.tracked == train
    assert saved.verbs == []
    assert saved.actor_only is True


def test_track_again_updates_instead_of_duplicating() -> None:
    user, train = make_user(), make_train()
    actrack.track(user, train, verbs=["departed"], actor_only=False)
    first = Tracker.objects.get()
    actrack.track(user, train, verbs=["arrived", "departed"])
    tracker = Tracker.objects.get()
    assert tracker.pk == first.pk
    assert tracker.verbs == ["arrived", "departed"]
    assert tracker.actor_only is False  # kept: actor_only not passed
    assert tracker.created == first.created
    actrack.track(user, train)  # verbs always applied: absent means all verbs
    assert Tracker.objects.get().verbs == []


def test_single_string_verb_is_one_verb() -> None:
    user, train = make_user(), make_train()
    actrack.track(user, train, verbs="departed")
    assert Tracker.objects.get().verbs == ["departed"]


def test_model_class_tracked_twice_gives_one_tracker() -> None:
    user = make_user()
    actrack.track(user, Station)
    actrack.track(user, Station, verbs=["closed"])
    tracker = Tracker.objects.get()
    assert tracker.tracked is Station
    assert tracker.verbs == ["closed"]


def test_database_enforces_one_tracker_per_model_class() -> None:
    user = make_user()
    ct = ContentType.objects.get_for_model(Station)
    Tracker.objects.create(user=user, tracked_ct=ct, tracked_key="")
    with pytest.raises(IntegrityError), transaction.atomic():
        Tracker.objects.create(user=user, tracked_ct=ct, tracked_key="")
    station = make_station()
    Tracker.objects.create(user=user, tracked_ct=ct, tracked_key=str(station.pk))
    with pytest.raises(IntegrityError), transaction.atomic():
        Tracker.objects.create(user=user, tracked_ct=ct, tracked_key=str(station.pk))


def test_track_many_objects_is_set_based(count_queries: Any) -> None:
    user = make_user()
    stations = [make_station() for _ in range(25)]
    ContentType.objects.get_for_model(Station)
    ContentType.objects.get_for_model(Train)
    with count_queries() as log:
        trackers = actrack.track(user, [*stations, Train], verbs=["closed"], actor_only=False)
    assert len(log) <= 2
    assert isinstance(trackers, list) and len(trackers) == 26
    assert Tracker.objects.filter(user=user).count() == 26
    with count_queries() as log:
        actrack.untrack(user, stations)
    assert len(log) <= 2
    assert list(Tracker.objects.filter(user=user)) == [Tracker.objects.get(tracked_key="")]


def test_track_with_log_records_started_tracking_for_new_objects_only() -> None:
    user, train = make_user(), make_train()
    actrack.track(user, train)
    actrack.track(user, [train, Station], log=True)
    action = Action.objects.get()
    assert action.verb == "started tracking"
    assert action.actor == user
    assert list(action.targets.all()) == [ContentType.objects.get_for_model(Station)]


def test_untrack_without_verbs_deletes_the_trackers() -> None:
    user, train = make_user(), make_train()
    actrack.track(user, [train, Station])
    assert actrack.untrack(user, Station) == 1
    assert [t.tracked for t in Tracker.objects.all()] == [train]


def test_untrack_some_verbs_keeps_the_others() -> None:
    user, train = make_user(), make_train()
    actrack.track(user, train, verbs=["arrived", "departed", "delayed"])
    actrack.untrack(user, train, verbs=["delayed"])
    assert Tracker.objects.get().verbs == ["arrived", "departed"]
    actrack.untrack(user, train, verbs=["arrived", "departed"])
    assert not Tracker.objects.exists()  # no verb left


def test_untrack_verbs_of_an_all_verbs_tracker_deletes_it() -> None:
    user = make_user()
    actrack.track(user, Station)
    actrack.untrack(user, Station, verbs=["closed"])
    assert not Tracker.objects.exists()


def test_untrack_with_log_records_stopped_tracking() -> None:
    user, train = make_user(), make_train()
    actrack.track(user, train, verbs=["a", "b"])
    actrack.untrack(user, train, verbs=["a"], log=True)
    action = Action.objects.get()
    assert action.verb == "stopped tracking"
    assert list(action.targets.all()) == [train]
    assert action.data == {"verbs": ["a"]}


def test_untrack_leaves_other_users_alone() -> None:
    alice, bob, train = make_user(), make_user(), make_train()
    actrack.track(alice, train)
    actrack.track(bob, train)
    actrack.untrack(alice, train)
    assert [t.user for t in Tracker.objects.all()] == [bob]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda u, t: actrack.track("alice", t), TypeError),
        (lambda u, t: actrack.track(t, t), TypeError),
        (lambda u, t: actrack.track(u, None), ValueError),
        (lambda u, t: actrack.track(u, []), ValueError),
        (lambda u, t: actrack.track(u, "train"), TypeError),
        (lambda u, t: actrack.track(u, Train(name="draft")), ValueError),
        (lambda u, t: actrack.track(u, t, verbs=[""]), ValueError),
        (lambda u, t: actrack.track(u, t, verbs=42), TypeError),
        (lambda u, t: actrack.track(u, t, actor_only="yes"), TypeError),
        (lambda u, t: actrack.track(u, t, using="nowhere"), ValueError),
        (lambda u, t: actrack.untrack(u, None), ValueError),
        (lambda u, t: actrack.untrack("bob", t), TypeError),
    ],
)
def test_bad_tracking_input_is_rejected_and_changes_nothing(call: Any, error: type) -> None:
    user, train = make_user(), make_train()
    actrack.track(user, train, verbs=["kept"])
    with pytest.raises(error):
        call(user, train)
    assert list(Tracker.objects.values_list("verbs", flat=True)) == [["kept"]]
    assert not Action.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_tracking_of_the_same_object_makes_one_tracker() -> None:
    import threading

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL; SQLite serialises whole transactions")
    user, train = make_user(), make_train()
    workers = 8
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def follow(number: int) -> None:
        try:
            barrier.wait(timeout=10)
            with transaction.atomic():
                actrack.track(user, [train, Station], verbs=[f"v{number}"], actor_only=False)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=follow, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    trackers = list(Tracker.objects.filter(user=user))
    assert len(trackers) == 2  # one for the train, one for the model
    assert {t.tracked for t in trackers} == {train, Station}
    # The last writer wins, whole: each tracker has exactly one writer's verbs.
    assert all(len(t.verbs) == 1 and t.verbs[0].startswith("v") for t in trackers)


@pytest.mark.django_db(transaction=True)
def test_untrack_is_one_statement_when_nothing_listens(count_queries: Any) -> None:
    """Outside any transaction: the DELETE alone, without BEGIN and COMMIT around it."""
    user, train = make_user(), make_train()
    actrack.track(user, [train, Station])
    ContentType.objects.get_for_models(Train, Station)
    with count_queries() as log:
        assert actrack.untrack(user, train) == 1
    captured = [query["sql"].split()[0] for query in log.context.captured_queries]
    assert captured == ["DELETE"]
    assert [t.tracked for t in Tracker.objects.all()] == [Station]


@pytest.mark.django_db(transaction=True)
def test_track_is_one_statement_outside_a_transaction(count_queries: Any) -> None:
    """The upsert alone, without BEGIN and COMMIT around it (bulk_create adds them)."""
    user, train = make_user(), make_train()
    ContentType.objects.get_for_models(Train, Station)
    with count_queries() as log:
        tracker = actrack.track(user, train, actor_only=False)
    captured = [query["sql"].split()[0] for query in log.context.captured_queries]
    assert captured == ["INSERT"]
    assert isinstance(tracker, Tracker) and tracker.pk == Tracker.objects.get().pk
    assert (tracker._state.adding, tracker._state.db) == (False, "default")
    with count_queries() as log:
        again = actrack.track(user, [train, Station], verbs=["closed"], actor_only=True)
    assert [query["sql"].split()[0] for query in log.context.captured_queries] == ["INSERT"]
    assert isinstance(again, list) and again[0].pk == tracker.pk  # updated, same row
    saved = {t.pk: t for t in Tracker.objects.all()}
    assert sorted(saved) == sorted(t.pk for t in again)
    assert all(saved[t.pk].tracked_key == t.tracked_key for t in again)
    assert saved[tracker.pk].verbs == ["closed"] and saved[tracker.pk].actor_only is True


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("size", [1, 20, 100])
def test_track_without_actor_only_is_one_statement_that_keeps_what_was_there(
    size: int, count_queries: Any
) -> None:
    """``actor_only`` not given: trackers already there keep theirs and their
    creation, read back by the upsert itself (no read first); new ones get
    ``actor_only=True``. The returned trackers hold the stored values."""
    user = make_user()
    stations = [make_station() for _ in range(size)]
    ContentType.objects.get_for_models(Train, Station)
    old = stations[: max(size // 2, 1)]
    actrack.track(user, old, verbs=["closed"], actor_only=False)
    before = {t.tracked_key: t for t in Tracker.objects.filter(user=user)}
    with count_queries() as log:
        returned = actrack.track(user, [*stations, Station])
    assert [query["sql"].split()[0] for query in log.context.captured_queries] == ["INSERT"]
    assert isinstance(returned, list) and len(returned) == size + 1
    saved = {t.tracked_key: t for t in Tracker.objects.filter(user=user)}
    for tracker in returned:
        stored = saved[tracker.tracked_key]
        assert (tracker.pk, tracker.actor_only, tracker.created, tracker.verbs) == (
            stored.pk,
            stored.actor_only,
            stored.created,
            [],
        )
        if tracker.tracked_key in before:
            assert tracker.actor_only is False
            assert tracker.created == before[tracker.tracked_key].created
        else:
            assert tracker.actor_only is True
            assert tracker.created == tracker.last_updated
        assert (tracker._state.adding, tracker._state.db) == (False, "default")


def test_track_more_rows_than_one_statement_takes() -> None:
    """On SQLite (999 parameters, 7 per tracker) 300 trackers take three statements,
    in one transaction; every returned tracker has its own row's key."""
    user = make_user()
    stations = [make_station() for _ in range(300)]
    trackers = actrack.track(user, stations, verbs=["closed"])
    assert isinstance(trackers, list) and len(trackers) == 300
    saved = dict(Tracker.objects.filter(user=user).values_list("tracked_key", "pk"))
    assert len(saved) == 300
    assert all(saved[t.tracked_key] == t.pk for t in trackers)
    again = actrack.track(user, stations[::-1], verbs=[])
    assert sorted(t.pk for t in again) == sorted(saved.values())
    verbs = list(Tracker.objects.filter(user=user).values_list("verbs", flat=True))
    assert verbs == [[]] * 300


def test_untrack_more_keys_than_one_statement_takes(
    count_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a limit of 999 parameters (SQLite's before 3.32, and Django's for SQLite
    before 6.0) untracking 600 objects takes two DELETEs, in one transaction; the
    user's other trackers and other users' trackers stay."""
    user, other = make_user(), make_user()
    stations = [make_station() for _ in range(600)]
    kept = make_train()
    actrack.track(user, [*stations, kept, Station])
    actrack.track(other, stations[:10])
    # As rows_per_statement() reads a limit of 999 (Django reports the library's own
    # limit for SQLite from 6.0, and none for PostgreSQL).
    monkeypatch.setattr(
        "actrack.inserts.rows_per_statement",
        lambda conn, per_row, default, spare=0: (998 - spare) // per_row,
    )
    with count_queries() as log:
        assert actrack.untrack(user, [*stations, Station]) == 601
    deletes = [q["sql"] for q in log.context.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 2
    assert [t.tracked for t in Tracker.objects.filter(user=user)] == [kept]
    assert Tracker.objects.filter(user=other).count() == 10


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("log", [False, True])
def test_untrack_verbs_is_set_based(log: bool, count_queries: Any) -> None:
    """Removing verbs: no read first. One statement on PostgreSQL, a DELETE and an
    UPDATE on SQLite (in a transaction), computing each tracker's verbs in the
    database; ``log`` adds the action only. Trackers left without a verb, and
    all-verb trackers, go; the others keep their other verbs and creation."""
    user, other = make_user(), make_user()
    both, only_x, untouched = make_train(), make_train(), make_train()
    actrack.track(user, both, verbs=["x", "y", "z"], actor_only=False)
    actrack.track(user, only_x, verbs=["x"])
    actrack.track(user, Station)  # every verb
    actrack.track(user, untouched, verbs=["x"])
    actrack.track(other, [both, only_x], verbs=["x"])
    created = Tracker.objects.get(user=user, tracked_key=str(both.pk)).created
    ContentType.objects.get_for_models(Train, Station, ContentType, type(user))  # cached
    with count_queries() as log_:
        changed = actrack.untrack(user, [both, only_x, Station], verbs=["x", "z"], log=log)
    statements = [
        q["sql"].split()[0]
        for q in log_.context.captured_queries
        if q["sql"] not in ("BEGIN", "COMMIT")
    ]
    expected = ["WITH"] if connection.vendor == "postgresql" else ["DELETE", "UPDATE"]
    assert statements[: len(expected)] == expected
    assert len(statements) == len(expected) + (1 if log else 0)
    assert changed == 3
    mine = {t.tracked_key: t for t in Tracker.objects.filter(user=user)}
    assert set(mine) == {str(both.pk), str(untouched.pk)}
    kept = mine[str(both.pk)]
    assert (kept.verbs, kept.actor_only, kept.created) == (["y"], False, created)
    assert kept.last_updated > created
    assert mine[str(untouched.pk)].verbs == ["x"]
    assert sorted(Tracker.objects.filter(user=other).values_list("verbs", flat=True)) == [
        ["x"],
        ["x"],
    ]
    if log:
        action = Action.objects.get(verb="stopped tracking")
        assert list(action.targets.all()) != []
        assert {str(t) for t in action.targets.all()} == {
            str(both),
            str(only_x),
            str(ContentType.objects.get_for_model(Station)),
        }
        assert action.data == {"verbs": ["x", "z"]}
    # The feed reads the verbs the statement left.
    actrack.log(both, "x", grouping_delay=-1)
    actrack.log(both, "y", grouping_delay=-1)
    assert [a.verb for a in user.actions.feed()] == ["y"]


def test_untrack_sends_delete_signals_to_receivers() -> None:
    from django.db.models.signals import post_delete, pre_delete

    user, train = make_user(), make_train()
    actrack.track(user, [train, Station])
    seen: list[tuple[str, Any]] = []

    def pre(sender: Any, instance: Any, **kwargs: Any) -> None:
        seen.append(("pre", instance.tracked))

    def post(sender: Any, instance: Any, **kwargs: Any) -> None:
        seen.append(("post", instance.tracked))

    pre_delete.connect(pre, sender=Tracker, dispatch_uid="test-untrack-pre")
    post_delete.connect(post, dispatch_uid="test-untrack-post")  # any sender
    try:
        assert actrack.untrack(user, train) == 1
    finally:
        pre_delete.disconnect(sender=Tracker, dispatch_uid="test-untrack-pre")
        post_delete.disconnect(dispatch_uid="test-untrack-post")
    assert seen == [("pre", train), ("post", train)]
    assert [t.tracked for t in Tracker.objects.all()] == [Station]
