"""The expression classifier (no Dagster): data, backbones, training, metrics, artifact, prediction.

``data`` reads labelled face images (a release's ImageFolder tree, the external photo
set); ``backbones`` turns the project's face checkpoints into feature extractors;
``train`` fine-tunes one with a new head; ``metrics`` and ``plots`` evaluate;
``artifact`` saves, loads and predicts; ``release`` ties them together for one
dataset release (used by the ``expression_model`` asset, the CLI and the demo);
``agreement`` compares predictions with the prompts' labels.
"""
