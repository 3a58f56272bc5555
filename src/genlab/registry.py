"""Registries: names -> classes/functions for models, datasets and pipelines.

A family registers itself with ``@MODELS.register("vae")``; ``genlab.load(dir)`` reads
``model_type`` from ``config.json`` and looks it up here, so adding a family never touches
an if/elif chain. A renamed public name keeps its old name as an alias.
"""
from __future__ import annotations

import difflib
import importlib
from typing import Any, Callable, Iterator

# modules that populate each registry on first use (keeps `import genlab` light)
_POPULATE = {
    "model": ("genlab.models",),
    "dataset": ("genlab.data.datasets",),
    "pipeline": ("genlab.pipelines",),
}


class Registry:
    """A name -> object table with aliases and helpful errors for unknown names."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Any] = {}
        self._aliases: dict[str, str] = {}
        self._populated = False

    def _populate(self) -> None:
        if not self._populated:
            self._populated = True
            for mod in _POPULATE.get(self.kind, ()):
                importlib.import_module(mod)

    def register(self, name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[Any], Any]:
        """Decorator: register ``obj`` under ``name`` (and ``aliases``)."""

        def deco(obj: Any) -> Any:
            for key in (name, *aliases):
                if key in self._items or key in self._aliases:
                    raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._items[name] = obj
            for a in aliases:
                self._aliases[a] = name
            return obj

        return deco

    def unregister(self, name: str) -> None:
        """Remove ``name`` and its aliases (a plugin unloading, a test cleaning up)."""
        self._items.pop(name, None)
        for a in [a for a, n in self._aliases.items() if n == name or a == name]:
            del self._aliases[a]

    def canonical(self, name: str) -> str:
        self._populate()
        if name in self._items:
            return name
        if name in self._aliases:
            return self._aliases[name]
        close = difflib.get_close_matches(name, list(self._items) + list(self._aliases), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown {self.kind} {name!r}{hint} (known: {', '.join(sorted(self._items))})"
        )

    def get(self, name: str) -> Any:
        return self._items[self.canonical(name)]

    def names(self) -> list[str]:
        self._populate()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._populate()
        return name in self._items or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def items(self) -> list[tuple[str, Any]]:
        return [(n, self._items[n]) for n in self.names()]


MODELS = Registry("model")
DATASETS = Registry("dataset")
PIPELINES = Registry("pipeline")
