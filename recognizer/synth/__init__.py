"""Synthetic SVHN-like house numbers: glyphs, textures, plates, framing and camera effects.

Typical use::

    from recognizer.synth import Generator
    gen = Generator(seed=0)
    sample = gen.sample(17)          # the image with index 17 of the seed-0 stream
    sample.image, sample.boxes, sample.digits

Every image has its own random stream derived from ``(seed, index)``, so any worker process
renders any index identically (see :func:`sample_rng`).
"""
from __future__ import annotations

from recognizer.synth.generate import Generator, generate, sample_rng
from recognizer.synth.glyphs import find_fonts, font_families
from recognizer.synth.scene import SynthConfig, SynthSample, render_sample

__all__ = [
    "Generator",
    "SynthConfig",
    "SynthSample",
    "find_fonts",
    "font_families",
    "generate",
    "render_sample",
    "sample_rng",
]
