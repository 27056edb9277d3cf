"""The benchmark site: actrack against django-activity-stream on the same data.

Run it with ``DJANGO_SETTINGS_MODULE=tests.bench.settings python manage.py
actrack_bench`` (see ``management/commands/actrack_bench.py``). Nothing here
ships in the wheel.
"""
