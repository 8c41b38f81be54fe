"""Checks the settings share: the error that names the key, ports, positive numbers and
origins (normalised to what browsers send)."""

from __future__ import annotations

from portal_pulse.core.origins import normalise_origin


class ConfigError(ValueError):
    """A configuration value is missing or wrong; the message names the key."""


def normalised_origins(origins: tuple[str, ...]) -> tuple[str, ...]:
    """Origins in the form browsers send; one that is none stays as given, for
    ``validate()`` to refuse with the key's name."""
    normalised: list[str] = []
    for origin in origins:
        try:
            normalised.append(normalise_origin(origin))
        except (ValueError, TypeError, AttributeError):
            normalised.append(origin)
    return tuple(dict.fromkeys(normalised))


def check_origins(where: str, origins: tuple[str, ...]) -> None:
    for index, origin in enumerate(origins):
        try:
            normalise_origin(origin)
        except (ValueError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{where}[{index}]: {exc}") from exc


def setting_key(where: str, name: str) -> str:
    """The dotted name of setting ``name`` in section ``where`` ("" at the top level)."""
    return f"{where}.{name}" if where else name


def port(where: str, name: str, value: int) -> None:
    """A port to listen on: 1..65535 (0, "any free port", is no address to scrape or proxy to)."""
    if not 1 <= value <= 65535:
        raise ConfigError(f"{setting_key(where, name)}: a port is 1..65535, got {value!r}")


def positive(where: str, name: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{setting_key(where, name)}: must be > 0, got {value!r}")
