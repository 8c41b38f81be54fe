"""portal-pulse: a visit counter and a server-authoritative session keep-alive for portals.

The import package is ``portal_pulse`` (its source folders are ``services/core``,
``services/counter``, ``services/session``...). Its public surface is small and stable:

- the ``portal-pulse`` command (``portal_pulse.cli:main``): ``up``, ``counter``,
  ``session``, ``import nukeviet``;
- ``portal_pulse.core.settings.load_settings`` and ``Settings``: configuration from a file,
  the environment and flags;
- ``portal_pulse.counter.app.create_app(settings)`` and
  ``portal_pulse.session.app.create_app(settings)``: the two aiohttp applications, for
  embedding them in another aiohttp server or a test.

Everything else is internal and may change between versions.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("portal-pulse")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
