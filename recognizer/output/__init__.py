"""The output layer: what a run leaves behind and what people check.

``render`` (boxes, digits, numbers and the HUD drawn on a copy of a frame), ``records`` (the
JSON Lines schema, built and read back), ``sinks/`` (window, tiled window, video, frame dump,
log, the numbers sink: one ``emit(result, image)`` interface), ``evidence`` (the best view's
picture), ``geo`` (positions from GPX/NMEA), ``expect`` (the ``--expect`` check), ``results``
(the numbers of a log). Depends on the types, input, model and tracking layers, never on the
live loop above it.
"""
