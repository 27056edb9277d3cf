"""Sample models of the demo site and the tests: a small railway."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

import actrack


@actrack.connect
class Station(models.Model):
    name = models.CharField(_("name"), max_length=100)
    city = models.CharField(_("city"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("station")
        verbose_name_plural = _("stations")
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name


@actrack.connect
class Line(models.Model):
    name = models.CharField(_("name"), max_length=100)
    stations = models.ManyToManyField(Station, verbose_name=_("stations"), blank=True)

    class Meta:
        verbose_name = _("line")
        verbose_name_plural = _("lines")
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name


@actrack.connect
class Train(models.Model):
    name = models.CharField(_("name"), max_length=100)
    line = models.ForeignKey(
        Line, verbose_name=_("line"), null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        verbose_name = _("train")
        verbose_name_plural = _("trains")
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name

    def deleted_item_description(self) -> str:
        return f"Train {self.name} (retired)"

    def deleted_item_serialization(self) -> dict[str, object]:
        return {"pk": self.pk, "name": self.name}


@actrack.connect
class Journey(models.Model):
    """UUID-keyed, so that 36-character keys are exercised everywhere."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    train = models.ForeignKey(Train, verbose_name=_("train"), on_delete=models.CASCADE)
    origin = models.ForeignKey(
        Station, verbose_name=_("origin"), on_delete=models.PROTECT, related_name="+"
    )
    destination = models.ForeignKey(
        Station, verbose_name=_("destination"), on_delete=models.PROTECT, related_name="+"
    )
    departure = models.DateTimeField(_("departure"), null=True, blank=True)

    #: __str__ names the train and both stations: load them with the journey.
    actrack_select_related = ("train", "origin", "destination")

    class Meta:
        verbose_name = _("journey")
        verbose_name_plural = _("journeys")
        ordering = ["departure", "pk"]

    def __str__(self) -> str:
        return f"{self.train} {self.origin} → {self.destination}"


@actrack.connect(use_del_items=False)
class Ticket(models.Model):
    """Connected without deleted items: deleting one deletes its actions."""

    code = models.CharField(_("code"), max_length=32, unique=True)
    journey = models.ForeignKey(
        Journey, verbose_name=_("journey"), null=True, blank=True, on_delete=models.CASCADE
    )

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Note(models.Model):
    """Not connected to actrack: references to deleted notes render as "(deleted)"."""

    text = models.CharField(_("text"), max_length=200)

    class Meta:
        verbose_name = _("note")
        verbose_name_plural = _("notes")
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.text
