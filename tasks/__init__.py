"""Prefect tasks: small, retryable steps that call estimator_core (data prep, training, tracking)."""
