"""MLflow credentials from a Prefect Secret block, for workers whose environment lacks them."""

from __future__ import annotations

import json
import os

CREDENTIAL_VARIABLES = {
    "username": "MLFLOW_TRACKING_USERNAME",
    "password": "MLFLOW_TRACKING_PASSWORD",
    "token": "MLFLOW_TRACKING_TOKEN",
}


def load_credentials(block_name: str) -> None:
    """Put the MLflow credentials kept in Prefect Secret block ``block_name`` (JSON with
    ``username`` and ``password``, or ``token``) into this process's environment, where MLflow's
    client reads them; they go nowhere else."""
    from prefect.blocks.system import Secret

    value = Secret.load(block_name).get()
    fields = value if isinstance(value, dict) else json.loads(value)
    unknown = set(fields) - set(CREDENTIAL_VARIABLES)
    if unknown or not fields:
        raise ValueError(
            f"Secret block {block_name!r} must hold username and password, or token; "
            f"found keys {sorted(fields)}"
        )
    for key, variable in CREDENTIAL_VARIABLES.items():
        if key in fields:
            os.environ[variable] = str(fields[key])
