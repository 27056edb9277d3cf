"""Times the admin pages on a big PostgreSQL dataset (not a test; pytest skips it).

Build a dataset once, then time the pages with Django's test client::

    createdb -h 127.0.0.1 -U postgres actrack_admin_bench
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/actrack_admin_bench DJANGO_DEBUG=0
    python -m tests.test_admin.bench build --actions 1000000
    python -m tests.test_admin.bench time

``build`` migrates, then writes users, stations, trains and lines, ``--actions``
actions over the last year (60% by users, 30% by trains, 5% by stations, 5%
without actor; 20 verbs, skewed; levels mostly INFO, 6% WARNING, 2% ERROR),
1-3 targets and 0-2 related objects each, trackers, and deleted items standing
in for 0.5% of the actors; all with set-based ``INSERT ... SELECT`` from a
seeded ``random()``, then ``ANALYZE``. ``time`` prints, per page, the median,
min and max of ``--runs`` requests after one warm-up, and the query count.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.demo.settings")

VERBS = [
    "boarded", "departed", "arrived", "booked", "was delayed", "commented", "checked in",
    "cancelled", "reported a fault", "closed", "opened", "renamed", "retired", "rated",
    "published timetable", "synced timetable", "checked signals", "cleaned", "refuelled",
    "inspected",
]  # fmt: skip


def build(actions: int, users: int = 2000, stations: int = 3000, trains: int = 800) -> None:
    import django
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import connection

    from actrack.keys import content_type_for
    from actrack.models import Action, DeletedItem
    from tests.demo.models import Line, Station, Train

    if connection.vendor != "postgresql":
        sys.exit("The benchmark dataset is built with PostgreSQL SQL: set DATABASE_URL.")
    call_command("migrate", verbosity=0)
    if Action.objects.exists():
        sys.exit("The database already has actions: use a fresh one.")
    user_model = get_user_model()
    started = time.perf_counter()
    password = make_password("admin")
    user_model.objects.create_superuser("admin", "admin@example.com", "admin")
    user_model.objects.bulk_create(
        user_model(username=f"user{n}", password=password) for n in range(users)
    )
    Line.objects.bulk_create(Line(name=f"Line {n}") for n in range(200))
    Station.objects.bulk_create(Station(name=f"Station {n}") for n in range(stations))
    Train.objects.bulk_create(Train(name=f"Train {n}") for n in range(trains))
    cts = {
        name: content_type_for(model).pk
        for name, model in {
            "user": user_model,
            "station": Station,
            "train": Train,
            "line": Line,
            "deleted": DeletedItem,
        }.items()
    }
    first = {
        "user": user_model.objects.order_by("pk").values_list("pk", flat=True)[1],
        "station": Station.objects.order_by("pk").values_list("pk", flat=True)[0],
        "train": Train.objects.order_by("pk").values_list("pk", flat=True)[0],
        "line": Line.objects.order_by("pk").values_list("pk", flat=True)[0],
    }
    sizes = {"user": users, "station": stations, "train": trains, "line": 200}

    def key(kind: str, rand: str) -> str:
        return f"({first[kind]} + floor({rand} * {sizes[kind]}))::bigint::text"

    verbs = "ARRAY[" + ", ".join(f"'{verb}'" for verb in VERBS) + "]"
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(
            f"""
            INSERT INTO actrack_action (actor_ct_id, actor_key, verb, level, data, timestamp)
            SELECT
              CASE WHEN r1 < 0.6 THEN {cts["user"]} WHEN r1 < 0.9 THEN {cts["train"]}
                   WHEN r1 < 0.95 THEN {cts["station"]} END,
              CASE WHEN r1 < 0.6 THEN {key("user", "r2")} WHEN r1 < 0.9 THEN {key("train", "r2")}
                   WHEN r1 < 0.95 THEN {key("station", "r2")} END,
              ({verbs})[1 + floor(power(r3, 2) * {len(VERBS)})::int],
              CASE WHEN r4 < 0.02 THEN 50 WHEN r4 < 0.08 THEN 40 WHEN r4 < 0.18 THEN 10
                   WHEN r4 < 0.22 THEN 20 ELSE 30 END,
              jsonb_build_object('n', g, 'note', 'sample ' || (g % 1000)),
              now() - r5 * interval '365 days'
            FROM (
              SELECT g, random() r1, random() r2, random() r3, random() r4, random() r5
              FROM generate_series(1, {int(actions)}) g
            ) s
            ORDER BY 6
            """
        )
        for table, count, kinds in (
            ("actrack_action_targets", "1 + a.id % 3", ("station", "train")),
            ("actrack_action_related", "a.id % 3", ("line", "station")),
        ):
            cursor.execute(
                f"""
                INSERT INTO {table} (action_id, obj_ct_id, obj_key, timestamp)
                SELECT a.id,
                  CASE WHEN t.r1 < 0.5 THEN {cts[kinds[0]]} ELSE {cts[kinds[1]]} END,
                  CASE WHEN t.r1 < 0.5 THEN {key(kinds[0], "t.r2")}
                       ELSE {key(kinds[1], "t.r2")} END,
                  a.timestamp
                FROM actrack_action a
                CROSS JOIN LATERAL (
                  SELECT random() + 0 * a.id AS r1, random() AS r2
                  FROM generate_series(1, {count})
                ) t
                ON CONFLICT DO NOTHING
                """
            )
        # Deleted trains: 300 deleted items standing in for 0.5% of the actors.
        cursor.execute(
            f"""
            INSERT INTO actrack_deleteditem (ctype_id, object_key, description, serialization,
                                             deleted_at)
            SELECT {cts["train"]}, (100000 + g)::text, 'Train ' || g || ' (retired)',
                   jsonb_build_object('pk', 100000 + g), now() - g * interval '1 day'
            FROM generate_series(1, 300) g
            """
        )
        cursor.execute(
            f"""
            UPDATE actrack_action SET actor_ct_id = {cts["deleted"]},
              actor_key = ((SELECT min(id) FROM actrack_deleteditem) + id % 300)::text
            WHERE id % 200 = 0
            """
        )
        cursor.execute(
            f"""
            INSERT INTO actrack_tracker (user_id, tracked_ct_id, tracked_key, verbs, actor_only,
                                         created, last_updated)
            SELECT {first["user"]} + (g % {users}), {cts["station"]},
                   {key("station", "random()")}, '[]'::jsonb, g % 2 = 0, now(), now()
            FROM generate_series(1, {users * 10}) g
            ON CONFLICT DO NOTHING
            """
        )
        cursor.execute("ANALYZE")
    print(
        f"Built {Action.objects.count()} actions, "
        f"{Action.targets.through.objects.count()} targets, "
        f"{Action.related.through.objects.count()} related in "
        f"{time.perf_counter() - started:.0f} s (Django {django.get_version()})."
    )


def pages() -> list[tuple[str, str, dict[str, str]]]:
    from django.contrib.contenttypes.models import ContentType

    from actrack.models import DeletedItem
    from tests.demo.models import Station, Train

    train = ContentType.objects.get_for_model(Train).pk
    station = ContentType.objects.get_for_model(Station).pk
    deleted = ContentType.objects.get_for_model(DeletedItem).pk
    busy_station = str(Station.objects.order_by("pk").values_list("pk", flat=True)[0])
    item = DeletedItem.objects.order_by("pk").values_list("pk", flat=True)[0]
    year = str(time.gmtime().tm_year)
    actions = "/admin/actrack/action/"
    htmx = {"HX-Request": "true"}
    paging = {**htmx, "HX-Target": "actrack-staff-timeline"}
    return [
        ("changelist", actions, {}),
        ("changelist page 5", f"{actions}?p=5", {}),
        ("changelist level=ERROR", f"{actions}?level=50", {}),
        ("changelist verb=retired", f"{actions}?verb=retired", {}),
        ("changelist actor type=train", f"{actions}?actor_type={train}", {}),
        ("changelist target type=station", f"{actions}?target_type={station}", {}),
        ("changelist involves deleted", f"{actions}?deleted=1", {}),
        ("changelist actor deleted item", f"{actions}?actor_type={deleted}", {}),
        ("changelist one station", f"{actions}?object_ct={station}&object_key={busy_station}", {}),
        ("changelist this year", f"{actions}?timestamp__year={year}", {}),
        ("changelist search", f"{actions}?q=sample+7", {}),
        ("action detail", f"{actions}1/change/", {}),
        ("trackers", "/admin/actrack/tracker/", {}),
        ("deleted items", "/admin/actrack/deleteditem/", {}),
        ("deleted item detail", f"/admin/actrack/deleteditem/{item}/change/", {}),
        ("dashboard", "/admin/activity/", {}),
        ("dashboard level=ERROR", "/admin/activity/?level=50", {}),
        ("dashboard verb=booked (htmx)", "/admin/activity/?verb=booked", htmx),
        ("dashboard paging (htmx)", "/admin/activity/", paging),
    ]  # fmt: skip


def time_pages(runs: int) -> None:
    import django
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from actrack.models import Action

    client = Client()
    client.force_login(get_user_model().objects.get(username="admin"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0].split(",")[0]  # type: ignore[index]
    print(
        f"{Action.objects.order_by().count()} actions; {version}; Django {django.get_version()};"
        f" DEBUG={settings.DEBUG}; {runs} runs after a warm-up; ms"
    )
    print(f"{'page':40} {'median':>7} {'min':>7} {'max':>7} {'queries':>8}")
    for name, url, headers in pages():
        response = client.get(url, headers=headers)
        assert response.status_code == 200, (url, response.status_code)
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            client.get(url, headers=headers)
            timings.append((time.perf_counter() - started) * 1000)
        with CaptureQueriesContext(connection) as queries:
            client.get(url, headers=headers)
        print(
            f"{name:40} {statistics.median(timings):7.1f} {min(timings):7.1f}"
            f" {max(timings):7.1f} {len(queries):8d}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build")
    build_parser.add_argument("--actions", type=int, default=200_000)
    time_parser = commands.add_parser("time")
    time_parser.add_argument("--runs", type=int, default=7)
    args: Any = parser.parse_args(argv)

    import django

    django.setup()
    if args.command == "build":
        build(args.actions)
    else:
        time_pages(args.runs)


if __name__ == "__main__":
    main()
