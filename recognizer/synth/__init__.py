"""Synthetic SVHN-like house numbers: glyphs, textures, plates, framing and camera effects.

Typical use::

    from recognizer.synth import Generator
    gen = Generator(seed=0)
    sample = gen.sample(17)          # the image with index 17 of the seed-0 stream
    sample.image, sample.boxes, sample.digits

Every image has its own random stream derived from ``(seed, index)``, so any worker process
renders any index identically (see :func:`sample_rng`).

Close-up photos of number plates (the number fills 20-95% of the frame) come from
:mod:`recognizer.synth.plates`: ``PlateGenerator(seed=0).sample(17)``.
"""
from __future__ import annotations

from recognizer.synth.generate import Generator, generate, sample_rng
from recognizer.synth.glyphs import find_fonts, font_families
from recognizer.synth.plates import PlateConfig, PlateGenerator, PlateSample, generate_plates, render_plate
from recognizer.synth.scene import SynthConfig, SynthSample, render_sample

__all__ = [
    "Generator",
    "PlateConfig",
    "PlateGenerator",
    "PlateSample",
    "SynthConfig",
    "SynthSample",
    "find_fonts",
    "font_families",
    "generate",
    "generate_plates",
    "render_plate",
    "render_sample",
    "sample_rng",
]
