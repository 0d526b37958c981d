"""Which torch device a model runs on: one rule for the GPU resource and for models built without it."""


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a CUDA device, else ``cpu``; any other torch device name as given
    (a CUDA device without a GPU is an error). Torch is imported here, when a device is first resolved."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but torch sees no CUDA device; use 'auto' or 'cpu'")
    return device
