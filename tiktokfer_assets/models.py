"""The model checkpoints the pipeline loads: their manifest paths, one home (no torch, so anything may import it).

Each is a ``weights/...`` row of ``weights/manifest.tsv``, fetched by ``tiktokfer fetch`` and
verified by :func:`tiktokfer_assets.weights.require_file` before a model loads. The identity
threshold of each embedding backend lives beside its measurements in
:mod:`tiktokfer_assets.identity.thresholds`.
"""

RETINAFACE_WEIGHTS = "weights/retinaface_mobilenet0.25.pth"
"""RetinaFace MobileNet-0.25 (public ``mobilenet0.25_Final.pth``): the face detector."""

MOBILEFACENET_WEIGHTS = "weights/mobilefacenet_casia.ckpt"
"""MobileFaceNet trained on CASIA-WebFace: the default face embedder (identity) and an expression backbone."""
