"""Name lookup shared by the activation, loss and initializer registries."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError


def lookup(name: Any, table: dict[str, Any], *, kind: str, plural: str, aliases: dict[str, str] | None = None) -> Any:
    """``table[name]`` for a case- and space-insensitive name or alias; an unknown name raises
    :class:`~xpnet.errors.ConfigError` listing the valid ones."""
    aliases = aliases or {}
    if isinstance(name, str):
        key = name.strip().lower()
        key = aliases.get(key, key)
        if key in table:
            return table[key]
    alias_text = f" (aliases: {', '.join(f'{a}={t}' for a, t in aliases.items())})" if aliases else ""
    raise ConfigError(f"unknown {kind} {name!r}; valid {plural}: {', '.join(table)}{alias_text}")
