"""Model registry: build any reference model by name, with keyword overrides.

Model modules register their factories with ``@register_model("name")`` when imported; the
registry imports the built-in model modules itself the first time it is asked for a name, so
``create_model("fourier_mnist")`` works after ``import scale_eq`` alone.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

__all__ = ["create_model", "list_models", "register_model"]

Factory = TypeVar("Factory", bound=Callable[..., nn.Module])

# Modules that define built-in models; imported lazily so ``import scale_eq`` stays light and a
# missing optional model family never breaks the others.
_BUILTIN_MODULES: tuple[str, ...] = (
    "scale_eq.fourier.models",
    "scale_eq.baselines",
    "scale_eq.sesn.models",
)

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_loaded = False


def register_model(name: str | None = None) -> Callable[[Factory], Factory]:
    """Decorator: register a factory ``f(**overrides) -> nn.Module`` under ``name``.

    ``name`` defaults to the factory's ``__name__``. Registering a name twice is an error unless
    it is the same function (module reloads).
    """

    def decorate(factory: Factory) -> Factory:
        key = name or factory.__name__
        old = _REGISTRY.get(key)
        if old is not None and old.__qualname__ != factory.__qualname__:
            raise ValueError(f"model {key!r} is already registered by {old.__module__}")
        _REGISTRY[key] = factory
        return factory

    return decorate


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)
        _loaded = True


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build the model registered as ``name``; ``overrides`` go to its factory (e.g. width=0.25)."""
    _load_builtins()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}"
        ) from None
    return factory(**overrides)
