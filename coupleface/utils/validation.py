"""Argument checks shared by components that validate their constructor arguments."""
from __future__ import annotations

from typing import Any, Optional


def check_int(value: Any, name: str, minimum: int = 0, owner: Optional[str] = None) -> int:
    """Return ``value`` if it is an ``int`` (a bool counts) of at least ``minimum``.

    Args:
        value: The argument.
        name: Its name, for the message.
        minimum: The smallest valid value. Defaults to 0.
        owner: The component, prefixed to the message (``'LoadFaceImage: ...'``).

    Raises:
        ValueError: ``"[owner: ]name must be an int >= minimum, got value!r"``.

    Examples:
        >>> check_int(3, 'max_failures', owner='LoadFaceImage')
        3
    """
    if not isinstance(value, int) or value < minimum:
        prefix = f'{owner}: ' if owner else ''
        raise ValueError(f'{prefix}{name} must be an int >= {minimum}, got {value!r}')
    return value
