"""The input layer: frames from cameras, streams, video files and image folders
(``sources``), the one image decoder (``imageio``) and the names of a run's sources (``names``).

Depends on :mod:`recognizer.types` only; everything above reads its frames through here.
"""
