"""The code location's domains, one module each, each a ``@definitions`` function returning its ``Definitions``.

- :mod:`.challenge_pipeline`: the assets partitioned by challenge (videos through
  unique_faces), their table checks, the challenge jobs and the two sensors;
- :mod:`.dataset_release`: the dataset export over many challenges and its model;
- :mod:`.trending_monitor`: ``monitored_videos`` and ``alerts`` (partitioned by feed),
  their checks, the ``trending_monitor`` job and its sensor;
- :mod:`.environment`: the resources and executor of ``TIKTOKFER_ENV``/``TIKTOKFER_EXECUTOR``.

:mod:`tiktokfer_assets.definitions` merges them (with the resources a caller passes,
e.g. a test's). The folder is also a ``dg`` defs folder (``[tool.dg]`` in pyproject.toml):
``dagster.load_from_defs_folder`` finds the same domains.
"""
