"""MLflow tracking for the pipeline: one run per pipeline run, records through a durable outbox.

- ``client``: the tracking URI, a client, the experiment, links into MLflow's UI;
  ``credentials``: MLflow credentials from a Prefect Secret block.
- ``runs``: the run of a Prefect flow run (found again by its id), its tags and description.
- ``records`` (what is sent), ``outbox`` (kept on disk, delivered by a background thread),
  ``recorder`` (a run's records: params, metrics, files, datasets, its end).
- ``datasets``: a prepared data set's splits as MLflow datasets (schema, profile, digest).
- ``system_metrics``: CPU, memory and GPU samples while training.
- ``registry``: an export as a LoggedModel and a registered version; ``gate``: the champion
  gate (pure).
- ``prefect_tasks``: the Prefect tasks and the flows' ``tracked_run``.
- ``python -m tasks.tracking deliver``: what a finished process left in an outbox.
"""
