"""Compatibility layer: the published package's module paths and class names over our layers.

``from scale_eq.layers.spectral_conv import SpectralConv2dLocalized`` and
``from scale_eq.layers.scalq_eq_nonlin import scaleEqNonlinMaxp`` work as in the published
README; new code should use :mod:`scale_eq.fourier`.
"""
