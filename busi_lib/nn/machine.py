"""The machine a network runs on: CPU model and bfloat16 support, precision policy, determinism."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path


def cpu_supports_bf16() -> bool:
    """True when the CPU advertises native bfloat16 (AVX512_BF16 or AMX-BF16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (else :func:`platform.processor`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(precision: str | None = None) -> dict:
    """What a record says about the machine: CPU, cores, bf16 support, backend, GPU."""
    import keras

    info = {"cpu": cpu_model(), "cores": os.cpu_count(), "cpu_bf16": cpu_supports_bf16(),
            "backend": keras.backend.backend(), "gpu": None}
    if precision is not None:
        info["precision"] = precision
    if info["backend"] == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        info["gpu"] = getattr(gpus[0], "device_kind", "gpu") if gpus else None
    return info


def resolve_precision(precision: str) -> str:
    """``"auto"`` -> ``"mixed_bfloat16"`` on a bf16-capable CPU or any GPU, else ``"float32"``."""
    if precision != "auto":
        return precision
    import keras

    if keras.backend.backend() == "jax":
        import jax

        if any(d.platform == "gpu" for d in jax.devices()):
            return "mixed_bfloat16"
    return "mixed_bfloat16" if cpu_supports_bf16() else "float32"


@contextlib.contextmanager
def precision_scope(precision: str):
    """Set Keras' global dtype policy for the duration of a ``with`` block."""
    import keras

    keras.mixed_precision.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def set_determinism(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and the backend; turn on TensorFlow op determinism."""
    import keras

    keras.utils.set_random_seed(int(seed))
    if deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
