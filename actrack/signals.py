"""Signals: extension points for sites. actrack itself never listens to them.

``action_logged``
    Sent once for each action written to the database, right after the write
    (which itself happens when the logging transaction committed), in logging
    order. Keyword arguments:

    - ``sender``: the ``Action`` model;
    - ``action``: the saved ``Action`` (its targets and related are saved too);
    - ``using``: the database alias it was written to;
    - ``grouped``: ``False`` for a new action, ``True`` for an existing one
      that received a grouped action.

    It is sent with ``send_robust()``: the action is committed by then, so an
    exception raised by a receiver is logged on the ``actrack`` logger (ERROR,
    naming the receiver, with the traceback) and never propagates. The other
    receivers and the other actions still get the signal, a queue's remaining
    databases are still written, and ``log()`` outside a request or batch
    still returns the saved action.
"""

from django.dispatch import Signal

action_logged = Signal()
