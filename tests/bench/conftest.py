import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "bench: runs the actrack_bench command (needs django-activity-stream)"
    )
