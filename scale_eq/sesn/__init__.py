"""Scale-equivariant steerable networks (SESN) with fixed or learnable internal scales.

Hermite bases (:mod:`.hermite`), internal scales and their parameterisations (:mod:`.scales`),
scale convolutions Z2 -> H, H -> H, 1x1 and the max projection (:mod:`.layers`), and the MNIST /
toy models (:mod:`.models`, registered as ``sesn_*``).
"""

from __future__ import annotations

from .hermite import BasisSpec, hermite_basis, hermite_functions_1d, support_sizes
from .layers import ScaleMaxProjection, SESConvHH, SESConvHH1x1, SESConvZ2H
from .scales import InternalScales, ScaleSpec, parameter_groups, scale_parameters

__all__ = [
    "BasisSpec",
    "InternalScales",
    "SESConvHH",
    "SESConvHH1x1",
    "SESConvZ2H",
    "ScaleMaxProjection",
    "ScaleSpec",
    "hermite_basis",
    "hermite_functions_1d",
    "parameter_groups",
    "scale_parameters",
    "support_sizes",
]
