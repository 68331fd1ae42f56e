"""The faust worker: app factory (:func:`streams.worker.app.create_app`), state tables,
outputs with acknowledgements, reference data feed, timers and the status server
(:func:`streams.worker.run.run_worker`, ``ebi worker``)."""
