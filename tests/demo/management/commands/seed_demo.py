"""``python manage.py seed_demo``: fill the demo database with a small railway.

Users, stations, lines, trains and journeys, then a few weeks of history
logged through the public API (``actrack.log`` inside ``actrack.batch()``),
trackers (``actrack.track``) and two deletions: a retired train, whose actions
survive through a ``DeletedItem``, and a note (not connected to actrack), which
then renders as "(deleted)".

The data comes from ``random.Random(seed)``: the same options always give the
same objects and the same number of actions; timestamps are relative to now.
For local use only: the passwords are ``admin`` and ``demo``.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models, transaction
from django.utils import timezone

import actrack
from actrack.models import Action, DeletedItem, ReadMark, Tracker
from tests.demo.models import Journey, Line, Note, Station, Ticket, Train

# --- the cast -------------------------------------------------------------------------------

#: username -> (first name, last name, role). ``admin`` is the only Django staff user.
USERS: dict[str, tuple[str, str, str]] = {
    "admin": ("Ada", "Whitfield", "administrator"),
    "alice": ("Alice", "Martin", "passenger"),
    "bob": ("Bob", "Okafor", "passenger"),
    "carol": ("Carol", "Dubois", "conductor"),
    "david": ("David", "Kowalski", "dispatcher"),
    "emma": ("Emma", "Rossi", "passenger"),
    "farid": ("Farid", "Haddad", "station manager"),
    "grace": ("Grace", "Lindqvist", "passenger"),
    "hugo": ("Hugo", "Fernandez", "signal engineer"),
}
PASSENGERS = ["alice", "bob", "emma", "grace", "carol"]

#: station name -> city
STATIONS: dict[str, str] = {
    "Kingsford Central": "Kingsford",
    "Northgate": "Kingsford",
    "Ashbury": "Ashbury",
    "Redcliffe": "Redcliffe",
    "Porthaven Harbour": "Porthaven",
    "Millbrook Junction": "Millbrook",
    "Stonebridge Parkway": "Stonebridge",
    "Fairmoor": "Fairmoor",
    "Eastwick": "Eastwick",
    "Wexley": "Wexley",
    "Harlow Bridge": "Harlow",
    "Lindenfield": "Lindenfield",
}

#: line name -> its stations, in order
LINES: dict[str, list[str]] = {
    "Coastal Line": ["Kingsford Central", "Ashbury", "Redcliffe", "Porthaven Harbour"],
    "Valley Line": ["Kingsford Central", "Millbrook Junction", "Stonebridge Parkway", "Fairmoor"],
    "Eastern Line": ["Northgate", "Eastwick", "Wexley", "Harlow Bridge"],
    "Cross-Country Line": [
        "Porthaven Harbour",
        "Millbrook Junction",
        "Harlow Bridge",
        "Lindenfield",
    ],
}

#: train name -> line name
TRAINS: dict[str, str] = {
    "Seagull": "Coastal Line",
    "Harbour Flyer": "Coastal Line",
    "Old Faithful": "Coastal Line",
    "Valley Rambler": "Valley Line",
    "Moorland Sprinter": "Valley Line",
    "Millbrook Shuttle": "Valley Line",
    "Eastern Star": "Eastern Line",
    "Wexley Commuter": "Eastern Line",
    "Night Owl": "Cross-Country Line",
    "Cross-Country Voyager": "Cross-Country Line",
}
RETIRED_TRAIN = "Old Faithful"

DELAY_CAUSES = ["signal failure", "late crew", "leaves on the line", "points failure", "livestock"]
CANCEL_REASONS = ["staff shortage", "rolling stock fault", "engineering works", "storm damage"]
CLOSURE_REASONS = ["platform works", "flooding", "lift replacement", "power outage"]
COMMENTS = [
    "Coach C heating is not working again.",
    "Lovely views along the coast this morning!",
    "Wi-Fi dropped between every station.",
    "The quiet coach was anything but quiet.",
    "Very helpful conductor, thank you.",
    "Bike spaces were all taken.",
    "Buffet car ran out of coffee before 8am.",
    "Clean and on time, well done.",
]

MINUTES_PER_SEGMENT = 22
CANCEL_RATE = 0.06
DELAY_RATE = 0.25


# --- planning -------------------------------------------------------------------------------


@dataclass
class Railway:
    stations: dict[str, Station]
    lines: dict[str, Line]
    trains: dict[str, Train]

    def stops(self, train: Train) -> list[Station]:
        return [self.stations[name] for name in LINES[TRAINS[train.name]]]


@dataclass
class Event:
    """An action to log, once the objects it refers to are saved."""

    when: dt.datetime
    actor: models.Model | None
    verb: str
    targets: list[models.Model] = field(default_factory=list)
    related: list[models.Model] = field(default_factory=list)
    level: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


class HistoryPlanner:
    """Plans ``days`` days of events (ending yesterday), then two journeys of today."""

    def __init__(
        self, rng: random.Random, railway: Railway, users: dict[str, Any], days: int
    ) -> None:
        self.rng = rng
        self.railway = railway
        self.users = users
        self.days = days
        self.now = timezone.now()
        midnight = timezone.localtime(self.now).replace(hour=0, minute=0, second=0, microsecond=0)
        self.start = midnight - dt.timedelta(days=days)
        self.retire_day = days // 2
        self.events: list[Event] = []
        self.journeys: list[Journey] = []
        self.tickets: list[Ticket] = []
        self.notes: list[Note] = []

    def add(self, when: dt.datetime, actor: Any, verb: str, **kwargs: Any) -> None:
        targets = kwargs.pop("targets", [])
        related = kwargs.pop("related", [])
        level = kwargs.pop("level", None)
        self.events.append(Event(when, actor, verb, targets, related, level, kwargs))

    def at(self, day: int, hour: int, minute: int = 0) -> dt.datetime:
        return self.start + dt.timedelta(days=day, hours=hour, minutes=minute)

    def plan(self) -> list[Event]:
        self.plan_setup()
        for day in range(self.days):
            self.plan_day(day)
        self.plan_station_works()
        self.plan_faults()
        self.plan_today()
        return sorted(self.events, key=lambda event: event.when)

    def plan_setup(self) -> None:
        admin, railway = self.users["admin"], self.railway
        when = self.start - dt.timedelta(days=3)
        self.add(when, admin, "created", targets=list(railway.stations.values()))
        for minute, line in enumerate(railway.lines.values(), start=1):
            stops = [railway.stations[name] for name in LINES[line.name]]
            self.add(
                when + dt.timedelta(minutes=minute),
                admin,
                "created",
                targets=[line],
                related=stops,
            )
        for minute, train in enumerate(railway.trains.values(), start=10):
            self.add(
                when + dt.timedelta(minutes=minute),
                admin,
                "created",
                targets=[train],
                related=[train.line],
            )

    def plan_day(self, day: int) -> None:
        self.plan_housekeeping(day)
        active = [
            train
            for train in self.railway.trains.values()
            if train.name != RETIRED_TRAIN or day <= self.retire_day
        ]
        running = self.rng.sample(active, self.rng.randint(3, 5))
        for train in running:
            hour, minute = self.rng.randint(6, 20), self.rng.choice([0, 15, 30, 45])
            self.plan_journey(train, self.at(day, hour, minute))
        if self.rng.random() < 0.35:
            self.plan_comment(self.rng.choice(running), self.at(day, self.rng.randint(8, 21)))
        if day == self.retire_day:
            train = self.railway.trains[RETIRED_TRAIN]
            self.add(
                self.at(day, 23),
                self.users["admin"],
                "retired",
                targets=[train],
                reason="end of service life",
            )

    def plan_housekeeping(self, day: int) -> None:
        lines = list(self.railway.lines.values())
        self.add(
            self.at(day, 3),
            None,
            "synced timetable",
            level=actrack.level.HIDDEN,
            rows=self.rng.randint(180, 240),
        )
        self.add(
            self.at(day, 5, 30),
            self.users["hugo"],
            "checked signals",
            targets=[self.rng.choice(lines)],
            level=actrack.level.DEBUG,
        )
        if day % 7 == 0:
            self.add(
                self.at(day, 4),
                None,
                "published timetable",
                targets=lines,
                week=self.at(day, 4).isocalendar().week,
            )

    def plan_journey(self, train: Train, departure: dt.datetime) -> None:
        origin, destination = self.rng.sample(self.railway.stops(train), 2)
        journey = Journey(
            id=uuid.UUID(int=self.rng.getrandbits(128), version=4),
            train=train,
            origin=origin,
            destination=destination,
            departure=departure,
        )
        self.journeys.append(journey)
        if self.rng.random() < CANCEL_RATE:
            self.plan_cancellation(journey)
            return
        self.plan_boardings(journey)
        self.plan_run(journey)

    def plan_cancellation(self, journey: Journey) -> None:
        assert journey.departure is not None
        actor = self.users["david"] if self.rng.random() < 0.8 else None
        when = journey.departure - dt.timedelta(minutes=self.rng.randint(30, 180))
        self.add(
            when,
            actor,
            "cancelled",
            targets=[journey],
            related=[journey.train],
            level=actrack.level.WARNING,
            reason=self.rng.choice(CANCEL_REASONS),
        )

    def plan_run(self, journey: Journey) -> None:
        train, departure = journey.train, journey.departure
        assert departure is not None
        related = [journey, train.line]
        self.add(
            departure,
            train,
            "departed",
            targets=[journey.origin],
            related=related,
            platform=self.rng.randint(1, 8),
        )
        delay = self.rng.choice([5, 8, 12, 20, 35]) if self.rng.random() < DELAY_RATE else 0
        if delay:
            when = departure + dt.timedelta(minutes=self.rng.randint(5, 20))
            self.add(
                when,
                train,
                "was delayed",
                related=related,
                minutes=delay,
                cause=self.rng.choice(DELAY_CAUSES),
            )
        stops = self.railway.stops(train)
        segments = abs(stops.index(journey.origin) - stops.index(journey.destination))
        arrival = departure + dt.timedelta(minutes=segments * MINUTES_PER_SEGMENT + delay)
        self.add(
            arrival,
            train,
            "arrived",
            targets=[journey.destination],
            related=related,
            minutes_late=delay,
        )

    def plan_boardings(self, journey: Journey) -> None:
        departure = journey.departure
        assert departure is not None
        count = self.rng.choice([0, 0, 1, 1, 2])
        for username in self.rng.sample(PASSENGERS, count):
            passenger = self.users[username]
            if journey.train.name != RETIRED_TRAIN and self.rng.random() < 0.5:
                self.plan_booking(passenger, journey)
            when = departure - dt.timedelta(minutes=self.rng.randint(2, 10))
            self.add(
                when,
                passenger,
                "boarded",
                targets=[journey.train],
                related=[journey],
                coach=self.rng.choice("ABCDEF"),
            )

    def plan_booking(self, passenger: Any, journey: Journey) -> None:
        assert journey.departure is not None
        ticket = Ticket(code=f"TK{len(self.tickets) + 1:05d}", journey=journey)
        self.tickets.append(ticket)
        when = journey.departure - dt.timedelta(hours=self.rng.randint(2, 36))
        self.add(
            when,
            passenger,
            "booked",
            targets=[ticket],
            related=[journey],
            fare=self.rng.choice(["standard", "first class", "railcard"]),
        )

    def plan_comment(self, train: Train, when: dt.datetime) -> None:
        note = Note(text=self.rng.choice(COMMENTS))
        self.notes.append(note)
        author = self.users[self.rng.choice(PASSENGERS)]
        self.add(when, author, "commented", targets=[note], related=[train])

    def plan_station_works(self) -> None:
        last_day = max(self.days - 4, 1)
        count = min(max(1, self.days // 10), last_day)
        for day in sorted(self.rng.sample(range(last_day), count)):
            station = self.rng.choice(list(self.railway.stations.values()))
            closed = self.at(day, self.rng.randint(7, 12))
            self.add(
                closed,
                self.users["farid"],
                "closed",
                targets=[station],
                reason=self.rng.choice(CLOSURE_REASONS),
            )
            reopened = closed + dt.timedelta(days=self.rng.randint(1, 3))
            self.add(reopened, self.users["farid"], "opened", targets=[station])

    def plan_faults(self) -> None:
        stations = list(self.railway.stations.values())
        for day in self.rng.sample(range(self.days), max(1, self.days // 20)):
            self.add(
                self.at(day, self.rng.randint(6, 22)),
                None,
                "reported a fault",
                targets=[self.rng.choice(stations)],
                level=actrack.level.ERROR,
                fault="signal failure",
            )

    def plan_today(self) -> None:
        """Two journeys that ended within the last two hours (all in the past)."""
        active = [t for t in self.railway.trains.values() if t.name != RETIRED_TRAIN]
        for train in self.rng.sample(active, 2):
            departure = self.now - dt.timedelta(minutes=self.rng.randint(120, 170))
            self.plan_journey(train, departure)

    def save_objects(self) -> None:
        Journey.objects.bulk_create(self.journeys)
        Ticket.objects.bulk_create(self.tickets)
        Note.objects.bulk_create(self.notes)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# --- the steps ------------------------------------------------------------------------------


def create_users() -> dict[str, Any]:
    user_model = get_user_model()
    passwords = {"admin": make_password("admin"), "demo": make_password("demo")}
    users = [
        user_model(
            username=username,
            first_name=first,
            last_name=last,
            email=f"{username}@railway.example.com",
            is_staff=username == "admin",
            is_superuser=username == "admin",
            password=passwords["admin" if username == "admin" else "demo"],
        )
        for username, (first, last, _role) in USERS.items()
    ]
    user_model.objects.bulk_create(users)
    return {user.username: user for user in user_model.objects.filter(username__in=USERS)}


def create_railway() -> Railway:
    Station.objects.bulk_create(Station(name=name, city=city) for name, city in STATIONS.items())
    Line.objects.bulk_create(Line(name=name) for name in LINES)
    stations = {station.name: station for station in Station.objects.all()}
    lines = {line.name: line for line in Line.objects.all()}
    for name, stops in LINES.items():
        lines[name].stations.set(stations[stop] for stop in stops)
    Train.objects.bulk_create(Train(name=name, line=lines[line]) for name, line in TRAINS.items())
    trains = {train.name: train for train in Train.objects.select_related("line")}
    return Railway(stations=stations, lines=lines, trains=trains)


def log_events(events: Iterable[Event]) -> None:
    """Log in ascending time order, written in bulk when the batch ends.

    ``grouping_delay=-1``: with the default delay (0) similar actions of one
    batch are grouped whatever their time, which would merge weeks of history.
    """
    with actrack.batch():
        for event in events:
            actrack.log(
                event.actor,
                event.verb,
                targets=event.targets or None,
                related=event.related or None,
                timestamp=event.when,
                level=event.level,
                grouping_delay=-1,
                **event.data,
            )


def create_trackers(railway: Railway, users: dict[str, Any]) -> int:
    trains, stations, lines = railway.trains, railway.stations, railway.lines
    track = actrack.track
    track(users["alice"], [trains["Seagull"], trains["Valley Rambler"]], actor_only=False)
    track(users["alice"], Station, verbs=["closed", "opened"], actor_only=False)
    track(users["bob"], lines["Eastern Line"], actor_only=False)
    track(users["bob"], [stations["Northgate"], stations["Wexley"]], actor_only=False)
    track(users["admin"], Train)
    track(users["carol"], trains[RETIRED_TRAIN], actor_only=False)
    track(users["david"], Journey, verbs=["cancelled", "was delayed"], actor_only=False)
    track(users["emma"], [users["alice"], users["grace"]])
    track(users["farid"], Station, actor_only=False)
    track(users["grace"], [trains["Night Owl"], stations["Porthaven Harbour"]], actor_only=False)
    track(users["hugo"], Station, verbs=["reported a fault", "closed"], actor_only=False)
    track(users["hugo"], list(lines.values()), verbs=["cancelled"], actor_only=False)
    backdate_trackers(users)
    return Tracker.objects.count()


def backdate_trackers(users: dict[str, Any]) -> None:
    """The users have followed these things since before the history starts.

    Only actions logged after a tracker was created can be unread, so without
    this the whole history would read as already seen. Everything older than
    two days is marked read, as if each user had caught up until then.
    """
    first = Action.objects.order_by("timestamp").values_list("timestamp", flat=True).first()
    if first is None:
        return
    Tracker.objects.update(created=first - dt.timedelta(days=1))
    seen = Action.objects.filter(timestamp__lt=timezone.now() - dt.timedelta(days=2))
    last_seen = seen.order_by("-pk").values_list("pk", flat=True).first() or 0
    ReadMark.objects.bulk_create(
        [ReadMark(user=user, last_read_id=last_seen) for user in users.values()]
    )


def delete_items() -> tuple[str, int, str]:
    """Retire a train (its actions stay, with a DeletedItem) and delete a commented note."""
    train = Train.objects.get(name=RETIRED_TRAIN)
    kept = train.actions.all().count()
    train.delete()
    note = Note.objects.filter(text__startswith="Wi-Fi").first() or Note.objects.first()
    assert note is not None
    note.delete()
    return train.name, kept, note.text


def delete_demo_data() -> None:
    """Delete every action, tracker and deleted item, the railway and the demo users."""
    with transaction.atomic():
        Action.objects.all().delete()
        Tracker.objects.all().delete()
        for model in (Ticket, Journey, Train, Line, Station, Note):
            model._default_manager.all().delete()
        get_user_model()._default_manager.filter(username__in=USERS).delete()
        DeletedItem.objects.all().delete()


# --- the command ----------------------------------------------------------------------------


class Command(BaseCommand):
    help = "Fill the demo database with users, a railway and a few weeks of activity."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--weeks", type=int, default=6, help="Weeks of history (1-52).")
        parser.add_argument("--seed", type=int, default=42, help="Random seed.")
        parser.add_argument(
            "--reset", action="store_true", help="Delete the demo data first, then seed again."
        )

    def handle(self, *args: Any, weeks: int, seed: int, reset: bool, **options: Any) -> None:
        if not 1 <= weeks <= 52:
            raise CommandError(f"--weeks must be between 1 and 52, got {weeks}.")
        if reset:
            delete_demo_data()
            self.stdout.write("Reset: demo data deleted.")
        elif get_user_model()._default_manager.filter(username="admin").exists():
            self.stdout.write(
                "The demo data is already there (user 'admin' exists); "
                "use --reset to seed it again."
            )
            return
        self.seed(weeks, random.Random(seed))

    def seed(self, weeks: int, rng: random.Random) -> None:
        users = create_users()
        self.stdout.write(f"Users: {plural(len(users), 'user')} ({', '.join(users)}).")
        railway = create_railway()
        planner = HistoryPlanner(rng, railway, users, days=weeks * 7)
        events = planner.plan()
        planner.save_objects()
        self.stdout.write(
            f"Railway: {plural(len(railway.lines), 'line')}, "
            f"{plural(len(railway.stations), 'station')}, "
            f"{plural(len(railway.trains), 'train')}, "
            f"{plural(len(planner.journeys), 'journey')}, "
            f"{plural(len(planner.tickets), 'ticket')}, {plural(len(planner.notes), 'note')}."
        )
        log_events(events)
        history = plural(Action.objects.count(), "action")
        self.stdout.write(f"History: {history} over {plural(weeks, 'week')}.")
        self.stdout.write(f"Trackers: {plural(create_trackers(railway, users), 'tracker')}.")
        train, kept, note = delete_items()
        self.stdout.write(
            f"Deletions: train {train!r} ({plural(kept, 'action')} kept), note {note!r}; "
            f"{plural(DeletedItem.objects.count(), 'deleted item')}."
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo ready: {plural(Action.objects.count(), 'action')}. "
                "Log in as admin/admin, alice/demo or bob/demo."
            )
        )
