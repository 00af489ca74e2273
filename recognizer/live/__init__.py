"""The frame loop: sources through the models to the outputs, for one source or many.

``pipeline`` (capture threads, batching, inference workers, tracking), ``session`` (the
main-thread stage: draw, hand each frame to its sinks, the summary), ``outputs`` (the sinks of
a run, routed per source), ``summary`` (how a run ended), ``signals`` (Ctrl-C and SIGTERM),
``threads`` (workers and torch threads), ``textworker`` (the text reader beside the loop) and
``run`` (:func:`~recognizer.live.run.run`, the one way to start a run).
"""
