"""Reading Dagster execution results in tests and scripts."""

from __future__ import annotations


def step_failure_text(result) -> str:
    """Every failed step's error message, including the user code's exception under Dagster's wrapper."""
    texts = []
    for event in result.get_step_failure_events():
        error = event.event_specific_data.error
        while error is not None:
            texts.append(error.message.strip())
            error = error.cause
    return "\n".join(texts)
