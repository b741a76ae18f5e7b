"""Real-peer test harness: locate, start and stop the real programs sipbridge is tested against.

Imported as the top-level package ``harness``: ``tests/`` is on ``sys.path`` because ``tests/conftest.py``
is the rootmost conftest and ``tests/`` has no ``__init__.py``.
"""
