"""Internal scales of a scale convolution: fixed (SESN) or learnable (Basting et al. 2024).

Four parameterisations of the N_S scales ``sigma_0 < ... < sigma_{N_S - 1}``:

* ``fixed``: the given values, a buffer (SESN);
* ``isr``: ``sigma_i = sigma_basis * ISR^(i / (N_S - 1))`` with ``ISR = 1 + gamma^2``; sigma_basis
  and gamma are learned, and ISR > 1 whatever gamma is (no collapse to one scale);
* ``spacing``: ``sigma_0`` and the positive spacings ``sigma_{i+1} - sigma_i = exp(d_i)``;
* ``direct``: every sigma_i learned as it is.

The kernel size follows the largest scale, ``l = 2 k sigma_max + 1`` rounded up to an odd integer
(``2 ceil(k sigma_max) + 1``: rounding to the nearest odd one would put the default init,
k sigma_max = 1.25 * 6 = 7.5, on a tie that float round-off breaks either way) and capped by
``max_kernel_size`` (or a fixed ``kernel_size`` as SESN uses), so a layer
whose scales grow also grows its support. The scale parameters are ordinary parameters of an
:class:`InternalScales` module; :func:`scale_parameters` and :func:`parameter_groups` pick them
out so a trainer can give them their own learning rate and schedule.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

__all__ = [
    "InternalScales",
    "ScaleSpec",
    "parameter_groups",
    "scale_parameters",
]

Parameterisation = Literal["fixed", "isr", "spacing", "direct"]
# k * sigma_max this close (relative) to an integer is that integer: float32 round-off of
# learned scales (about 1e-7) must not move K by 2 (ScaleSpec.kernel_size_for).
KERNEL_TIE_TOLERANCE = 1e-6
PARAMETERISATIONS: tuple[str, ...] = get_args(Parameterisation)


@dataclass(frozen=True)
class ScaleSpec:
    """Initial scales, how they are learned, and how the kernel size follows them.

    ``kernel_size`` fixes K (SESN); when None, K = ``2 * ceil(kernel_factor * sigma_max) + 1``
    (the smallest odd integer >= 2 k sigma_max + 1), at most ``max_kernel_size``.
    """

    init: tuple[float, ...]
    learn: Parameterisation = "fixed"
    kernel_size: int | None = None
    kernel_factor: float = 1.25
    max_kernel_size: int = 21

    def __post_init__(self) -> None:
        if self.learn not in PARAMETERISATIONS:
            raise ValueError(f"learn must be one of {PARAMETERISATIONS}, got {self.learn!r}")
        if not self.init or min(self.init) <= 0:
            raise ValueError(f"init needs at least one scale, all > 0, got {self.init}")
        if any(b <= a for a, b in itertools.pairwise(self.init)):
            raise ValueError(f"init scales must be strictly ascending, got {self.init}")
        if self.learn in ("isr", "spacing") and len(self.init) < 2:
            raise ValueError(f"learn={self.learn!r} needs at least two scales")
        if self.learn == "isr" and not _is_geometric(self.init):
            raise ValueError(f"learn='isr' needs geometric init scales, got {self.init}")
        for name in ("kernel_size", "max_kernel_size"):
            k = getattr(self, name)
            if k is not None and (k < 3 or k % 2 == 0):
                raise ValueError(f"{name} must be an odd int >= 3, got {k}")
        if self.kernel_factor <= 0:
            raise ValueError(f"kernel_factor must be > 0, got {self.kernel_factor}")

    @classmethod
    def geometric(cls, sigma_basis: float, isr: float, num_scales: int, **kwargs: Any) -> ScaleSpec:
        """Scales ``sigma_basis * isr^(i / (num_scales - 1))`` (rounded to 1e-12)."""
        if num_scales < 1 or sigma_basis <= 0 or (num_scales > 1 and isr <= 1):
            raise ValueError(
                f"need num_scales >= 1, sigma_basis > 0 and isr > 1, got "
                f"{num_scales}, {sigma_basis}, {isr}"
            )
        steps = max(num_scales - 1, 1)
        init = tuple(round(sigma_basis * isr ** (i / steps), 12) for i in range(num_scales))
        return cls(init=init, **kwargs)

    def kernel_size_for(self, sigma_max: float) -> int:
        """K for a largest scale sigma_max (the fixed K if one is set).

        Tie rule: ``k * sigma_max`` within ``KERNEL_TIE_TOLERANCE`` (relative) of an integer
        counts as that integer before the ceiling. Learned scales land on such ties (Basting's
        toy: k = 4, sigma_max = 2 * ISR with ISR = 1 + gamma^2 = 3 and gamma = sqrt(2) stored in
        float32, so k sigma_max is 24 plus or minus round-off): without the rule the ceiling
        gives K = 49 or 51 depending on the dtype of the scales; with it, 49 in both.
        """
        if self.kernel_size is not None:
            return self.kernel_size
        reach = self.kernel_factor * sigma_max
        nearest = round(reach)
        if abs(reach - nearest) <= KERNEL_TIE_TOLERANCE * max(1.0, abs(reach)):
            reach = float(nearest)
        k = 2 * math.ceil(reach) + 1
        return max(3, min(k, self.max_kernel_size))


def _is_geometric(values: Sequence[float]) -> bool:
    ratios = [b / a for a, b in itertools.pairwise(values)]
    return all(math.isclose(r, ratios[0], rel_tol=1e-6) for r in ratios)


class InternalScales(nn.Module):
    """The N_S internal scales of one layer; ``forward()`` returns them as a (N_S,) tensor.

    Parameters are float32 (like the weights; ``.double()`` converts them). ``learnable`` says
    whether a basis built from them must be rebuilt every training step.
    """

    def __init__(self, spec: ScaleSpec) -> None:
        super().__init__()
        self.spec = spec
        init = torch.tensor(spec.init, dtype=torch.float64)
        if spec.learn == "fixed":
            self.register_buffer("values", init.float())
        elif spec.learn == "isr":
            ratio = spec.init[-1] / spec.init[0]
            self.sigma_basis = nn.Parameter(torch.tensor(spec.init[0]))
            self.gamma = nn.Parameter(torch.tensor(math.sqrt(ratio - 1.0)))
        elif spec.learn == "spacing":
            self.first = nn.Parameter(torch.tensor(spec.init[0]))
            self.log_spacing = nn.Parameter(torch.diff(init).log().float())
        else:
            self.values = nn.Parameter(init.float())

    @property
    def num_scales(self) -> int:
        return len(self.spec.init)

    @property
    def learnable(self) -> bool:
        return self.spec.learn != "fixed"

    def forward(self) -> Tensor:
        learn = self.spec.learn
        if learn in ("fixed", "direct"):
            return self.values
        if learn == "isr":
            steps = torch.arange(self.num_scales, dtype=self.gamma.dtype, device=self.gamma.device)
            return self.sigma_basis * self.isr() ** (steps / (self.num_scales - 1))
        spacing = self.log_spacing.exp()
        return torch.cat([self.first[None], self.first + torch.cumsum(spacing, 0)])

    def isr(self) -> Tensor:
        """ISR = 1 + gamma^2 (learn='isr'), else sigma_max / sigma_0 of the current scales."""
        if self.spec.learn == "isr":
            return 1.0 + self.gamma.square()
        s = self.forward()
        return s.max() / s.min()

    def exact_values(self, current: Tensor | None = None) -> tuple[float, ...]:
        """The current scales as Python floats, for building a basis in float64.

        Fixed scales whose buffer still holds the spec's values (up to float32 rounding) give
        the spec's exact values; a buffer loaded with other values (say, the learned scales
        of a ``direct`` model, whose parameter has the same name) gives those. ``current`` is
        this module's output if the caller has it already (a host copy saves a device read).
        """
        with torch.no_grad():
            current = self.forward() if current is None else current
            values = tuple(float(v) for v in current.detach().cpu())
        if not self.learnable and all(
            math.isclose(a, b, rel_tol=1e-6) for a, b in zip(values, self.spec.init, strict=True)
        ):
            return self.spec.init
        return values

    def kernel_size(self, values: Sequence[float] | None = None) -> int:
        """K for the current largest scale (of ``values``, from :meth:`exact_values`, if given)."""
        return self.spec.kernel_size_for(max(self.exact_values() if values is None else values))

    def describe(self) -> dict[str, Any]:
        """Current values, for logs: scales, sigma_basis (the smallest), ISR and K."""
        with torch.no_grad():
            current = self.forward().detach().cpu()
        s = [float(v) for v in current]
        return {
            "scales": s,
            "sigma_basis": min(s),
            "isr": max(s) / min(s),
            "kernel_size": self.kernel_size(self.exact_values(current)),
        }

    def extra_repr(self) -> str:
        return f"learn={self.spec.learn!r}, init={list(self.spec.init)}"


def scale_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    """Every learnable scale parameter of the model (those of its InternalScales modules)."""
    seen: set[int] = set()
    for module in model.modules():
        if isinstance(module, InternalScales):
            for p in module.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield p


def parameter_groups(
    model: nn.Module, lr: float, scale_lr: float | None = None, **scale_options: Any
) -> list[dict[str, Any]]:
    """Optimiser groups: the weights at ``lr``, the scale parameters at ``scale_lr``.

    >>> opt = torch.optim.Adam(parameter_groups(model, 0.01, scale_lr=0.001))

    ``scale_options`` (e.g. ``weight_decay=0``) go to the scale group only; the scale group is
    the last one, so a scheduler can address it as ``optimizer.param_groups[-1]``. A model with
    no learnable scales gets one group.
    """
    scales = list(scale_parameters(model))
    ids = {id(p) for p in scales}
    groups: list[dict[str, Any]] = [
        {"params": [p for p in model.parameters() if id(p) not in ids], "lr": lr, "name": "weights"}
    ]
    if scales:
        groups.append(
            {"params": scales, "lr": lr if scale_lr is None else scale_lr, "name": "scales"}
            | scale_options
        )
    return groups
