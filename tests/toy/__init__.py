"""A toy record type declared the way a new contributor would add one: its own ``.avsc``
files, one catalog entry and a processor (:mod:`.processor`), nothing else. The tests run it
through the worker pipeline, the sink and into a table (``tests/unit/test_toy_record_type.py``,
``tests/integration/test_toy_record_type.py``)."""
