"""Programs built on the library: the benchmark (``bench``), the demo and its scoring (``demo``)
and the page of ``recognizer report`` (``report``)."""
