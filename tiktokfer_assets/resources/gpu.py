"""The GPU resource: which torch device the vision models run on, and their batch size."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeVar

from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from tiktokfer_assets.vision.device import resolve_device

T = TypeVar("T")

GPU_POOL = "gpu"
"""Concurrency pool of the assets that run models on the GPU (limited to 1 in dagster.yaml)."""

GPU_OP_TAGS = {"dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}}}}
"""Op tags of GPU assets: under dagster-k8s (k8s_job_executor or the run launcher) their pod asks for one GPU."""


class GpuResource(ConfigurableResource):
    """``device``: ``auto`` (CUDA when torch sees one, else CPU), ``cpu`` or ``cuda``.

    Models are built once per process that executes steps (``setup_for_execution``
    resets the cache; :meth:`model` builds on first use and reuses afterwards), so a
    step that detects faces in thousands of frames loads RetinaFace once.
    """

    device: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: int = 16
    _device: str = PrivateAttr(default="")
    _models: dict = PrivateAttr(default_factory=dict)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._device = resolve_device(self.device)
        self._models = {}
        if context.log is not None:
            context.log.info(f"GPU resource: using torch device {self._device!r} (asked for {self.device!r})")

    @property
    def torch_device(self) -> str:
        if not self._device:
            self._device = resolve_device(self.device)
        return self._device

    def model(self, key: str, build: Callable[[str, int], T]) -> T:
        """The model cached under ``key``, built once with ``build(device, batch_size)``."""
        if key not in self._models:
            self._models[key] = build(self.torch_device, self.batch_size)
        return self._models[key]
