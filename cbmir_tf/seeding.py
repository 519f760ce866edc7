"""One call that makes a run repeatable: seeds and deterministic TensorFlow ops."""

from __future__ import annotations

import keras


def seed_everything(seed: int, deterministic_ops: bool = True) -> None:
    """Seed Python, NumPy and the Keras backend, and ask TensorFlow for deterministic kernels.

    With ``deterministic_ops`` TensorFlow picks deterministic op implementations
    (``tf.config.experimental.enable_op_determinism``), so that the same seed trains
    the same weights on a CPU; a few GPU ops have no deterministic version and
    then raise an error saying so. Defaults to `True`.
    """
    keras.utils.set_random_seed(int(seed))
    if deterministic_ops and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
