"""Every retrieval method of the book, one module each, behind ``fit`` / ``add`` / ``search``.

==================  ==========================================  =====  ==================
key                 class                                       paper  learns
==================  ==========================================  =====  ==================
``hog``             :class:`~cbmir_tf.methods.hog.HOG`          002    nothing
``bovw``            :class:`~cbmir_tf.methods.bovw.BoVW`        002    a visual vocabulary
``pretrained_cnn``  :class:`~.pretrained_cnn.PretrainedCNN`     002    nothing (ImageNet)
``cnn_hog``         :class:`~.reranked.Reranked` (CNN, HOG)     002    nothing
``cnnc_rbc``        :class:`~.cnnc_rbc.CNNCRBC`                 003    a shallow CNN
``resnet50v2_fpn``  :class:`~.resnet50v2_fpn.ResNet50V2FPN`     000    ResNet50V2 + FPN
``inres_hashing``   :class:`~.inres_hashing.InResHashing`       001    InRes-Net
``vgg_configs``     :class:`~.vgg_configs.VGGConfigMethod`      004    a VGG configuration
==================  ==========================================  =====  ==================

:func:`make_method` builds one from its settings, :func:`from_profile` from a profile's
(:func:`cbmir_tf.profiles.method_settings`). Learned methods train once per cache key
(:mod:`cbmir_tf.methods.cache`). Modules are imported on first use, so that a label-free
method never imports TensorFlow.
"""

from __future__ import annotations

import importlib

from cbmir_tf.methods.base import DescriptorMethod, LearnedMethod, RetrievalMethod

__all__ = ["CLI_METHODS", "METHODS", "DescriptorMethod", "LearnedMethod", "RetrievalMethod", "from_profile",
           "make_method", "method_class"]

#: Method key -> "module:class" under ``cbmir_tf.methods``.
METHODS = {
    "hog": "hog:HOG",
    "bovw": "bovw:BoVW",
    "pretrained_cnn": "pretrained_cnn:PretrainedCNN",
    "cnn_hog": "reranked:Reranked",
    "rbc": "cnnc_rbc:RadonBarcodeMethod",
    "cnnc_rbc": "cnnc_rbc:CNNCRBC",
    "resnet50v2_fpn": "resnet50v2_fpn:ResNet50V2FPN",
    "inres_hashing": "inres_hashing:InResHashing",
    "vgg_configs": "vgg_configs:VGGConfigMethod",
}

#: Methods that need no labels, by the name the ``cbmir`` command line knows them by.
CLI_METHODS = {
    "hog": "HOG, L1 (paper 002; 540 floats at 256 px)",
    "bovw": "RootSIFT bag of 1,000 visual words, TF-IDF, cosine (paper 002)",
    "cnn": "SqueezeNet (ImageNet) last map, 5 x 5 average pooling, L2 (paper 002)",
    "rbc": "Radon barcode, 16 angles at 192 px, Hamming (paper 003)",
    "cnn+hog": "SqueezeNet hits re-ranked by HOG, k_prep 30 (paper 002's final pair)",
}
_CLI_KEYS = {"hog": "hog", "bovw": "bovw", "cnn": "pretrained_cnn", "rbc": "rbc", "cnn+hog": "cnn_hog"}
#: The CLI's BoVW: a 1,000-word vocabulary learnt with one k-means run.
_CLI_SETTINGS = {"bovw": {"n_words": 1000, "n_init": 1}}


def method_class(key: str) -> type:
    """The class of method ``key`` (a key of :data:`METHODS`)."""
    if key not in METHODS:
        raise ValueError(f"Unknown method {key!r}. Choose one of {sorted(METHODS)}.")
    module, name = METHODS[key].split(":")
    return getattr(importlib.import_module(f"cbmir_tf.methods.{module}"), name)


def make_method(name: str, **settings) -> RetrievalMethod:
    """Method ``name`` (a key of :data:`METHODS` or of :data:`CLI_METHODS`) built with ``settings``.

    ``cnn_hog`` / ``cnn+hog`` takes ``k_prep`` (and optional ``first`` / ``second`` settings dicts).
    """
    key = _CLI_KEYS.get(name, name)
    if name in _CLI_KEYS:
        settings = {**_CLI_SETTINGS.get(name, {}), **settings}
    if key == "cnn_hog":
        first = method_class("pretrained_cnn")(**settings.pop("first", {}))
        second = method_class("hog")(**settings.pop("second", {}))
        return method_class(key)(first, second, **settings)
    return method_class(key)(**settings)


def from_profile(key: str, profile: str, *, dry_run: bool = False, seed: int | None = None,
                 **overrides) -> RetrievalMethod:
    """Method ``key`` with the settings of ``profile`` (and ``overrides``); ``seed`` where it takes one."""
    from cbmir_tf.profiles import method_settings

    settings = method_settings(profile, key, dry_run=dry_run, **overrides)
    if key == "cnn_hog":
        settings["first"] = method_settings(profile, "pretrained_cnn", dry_run=dry_run)
        settings["second"] = method_settings(profile, "hog", dry_run=dry_run)
    elif seed is not None and key not in ("hog", "pretrained_cnn", "rbc"):
        settings["seed"] = seed
    return make_method(key, **settings)
