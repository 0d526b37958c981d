"""The labelled expression dataset (no Dagster): persons across challenges, splits by person, the release.

``persons`` links each challenge's individuals into persons by their mean embeddings,
``splits`` gives every person one split, ``release`` builds the manifest, the image tree
and the release id, ``card`` writes the dataset card. ``assets/dataset_export.py`` runs
them in Dagster.
"""


class DatasetError(ValueError):
    """The export cannot be made from what is stored (unknown challenge, nothing to export, missing column or crop)."""
