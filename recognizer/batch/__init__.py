"""Many files to completion: ``recognizer batch``.

``jobs`` (the inputs, one file to complete outputs, renamed into place only when done),
``results`` (the table and summary of a batch) and ``cluster`` (the Ray workers, retries and
Ctrl-C across machines).
"""
