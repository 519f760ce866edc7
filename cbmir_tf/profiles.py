"""Parameter profiles: ``paper`` in full, ``cpu`` and ``smoke`` as overrides of it.

* ``paper``: the papers' own settings, meant for a GPU (e.g. Colab). Written out in full below.
* ``cpu``: the default of ``make book``; the whole open benchmark, networks sized and budgeted
  for 2 CPU cores (each training stops early on its validation loss, or at its time budget).
* ``smoke``: a few minutes on 2 CPU cores, for CI (small per-class subsets, a few steps).

Each profile has two parts:

* ``methods``: the settings of each retrieval method of :mod:`cbmir_tf.methods`, written once
  and used alike by the method's paper chapter and by the side-by-side chapter (so that the
  network a paper chapter trained is the one the side-by-side chapter loads from the cache);
  read with ``method_settings(profile, "cnnc_rbc")``;
* ``chapters``: what only one chapter does (sweeps, ablations, example and timing counts, the
  chapter's own subsets); read with ``get_profile(profile, "hog")``.

``CPU`` and ``SMOKE`` below hold only what differs from ``PAPER`` (nested dicts are merged), so
the difference between the profiles is what is written there; :func:`profile_overrides` lists
it as flat ``section.setting`` rows.

A *dry run* (``dry_run=True``, ``make dry-run``) keeps a profile's architecture (input sizes,
filters, stages, hash bits, ...) and caps only how long things run and how much data they see
(:func:`dry_run_settings`): CI runs every chapter under the ``paper`` profile that way, so that
the papers' networks are built and take a training step.
"""

from __future__ import annotations

import copy
import math

#: The MedMNIST 2D sets the open benchmark falls back to when its eight sets are absent
#: (see ``cbmir_tf.data.benchmark.load_benchmark``): four modalities, five body regions.
FALLBACK_SETS = ("pneumoniamnist", "breastmnist", "organamnist", "octmnist")

#: The papers' settings. Training settings are the keyword arguments of
#: :func:`cbmir_tf.models.training.train`.
PAPER: dict[str, dict[str, dict]] = {
    "methods": {
        # paper 002, Section VIII-B.1: 64 px cells, 128 px blocks, 15 bins at 256 px
        "hog": {"image_size": 256, "cell_size": 64, "block_size": 128, "block_stride": 64, "n_bins": 15},
        # paper 002, Section VIII-B.2: RootSIFT at 256 px, every descriptor clustered, best vocabulary
        "bovw": {"n_words": 4000, "root": True, "max_iter": 50, "n_init": 5, "max_descriptors_per_image": 0,
                 "points_per_word": None, "image_size": 256},
        # paper 002, Section VIII-B.3: SqueezeNet (ImageNet), last map average-pooled 5 x 5, at 256 px
        "pretrained_cnn": {"model": "squeezenet", "pooling": 5, "input_size": 256, "batch_size": 32},
        # paper 002, Section VIII-B.4: SqueezeNet's 30 first hits re-sorted by HOG
        "cnn_hog": {"k_prep": 30},
        # paper 003, Table 1 and Section 3: 128 px, 1,000-bit codes, dropout 0.5, 50 candidates, 192 px
        # 16-angle barcodes, 50 epochs; the optimiser, step, batch and the 20 % held out are ours
        "cnnc_rbc": {"input_size": 128, "code_bits": 1000, "dropout": 0.5, "n_candidates": 50,
                     "barcode_size": 192, "n_angles": 16, "val_fraction": 0.2,
                     "training": {"optimizer": "adam", "learning_rate": 1e-3, "epochs": 50, "batch_size": 64,
                                  "steps_per_epoch": None, "patience": None, "time_budget_s": None}},
        # paper 000, "Materials and methods": 128 x 128 grey inputs, classes evened out to about 200
        # images each, batch 16, at most 500 epochs with early stopping. It names no optimiser, step
        # size, patience, validation share, vector length or pyramid width: Adam at 1e-3, patience 10,
        # 20 % held out, a 256-value vector (4 levels x 64) and 256 channels (Lin et al.'s FPN) are ours.
        # network / levels: the chapter's baselines and ablation are this method with another value
        "resnet50v2_fpn": {"network": "resnet50v2_fpn", "levels": ("P2", "P3", "P4", "P5"), "input_size": 128,
                           "feature_dim": 256, "pyramid_channels": 256, "balance_per_class": 200, "val_fraction": 0.2,
                           "training": {"optimizer": "adam", "learning_rate": 1e-3, "epochs": 500,
                                        "batch_size": 16, "steps_per_epoch": None, "patience": 10,
                                        "time_budget_s": None, "run_eagerly": False}},
        # paper 001, Section 3.4: N(0, 0.01) kernels, an LSH-like hash layer, plain SGD at a constant 1e-4,
        # at most 30 epochs (no early stopping: the held-out tenth is only watched). The paper names no
        # input size, widths, code length, dropout, batch or Hamming radius; ours: 256 px (its 512 px
        # slices halved), 32 stem filters and 4 module pairs, FC1 of 1024, 48 bits (as in Lin et al.'s
        # deep binary hash codes), AlexNet's dropout 0.5, batch 32, radius 8 bits widened by 2 to >= 10 images
        "inres_hashing": {"input_size": 256, "stem_filters": 32, "stages": 4, "fc1_units": 1024, "hash_bits": 48,
                          "dropout": 0.5, "init_stddev": 0.01, "hamming_threshold": 8, "threshold_step": 2,
                          "min_pool": 10, "val_fraction": 0.1,
                          "training": {"optimizer": "sgd", "learning_rate": 1e-4, "momentum": 0.0, "epochs": 30,
                                       "batch_size": 32, "steps_per_epoch": None, "patience": None,
                                       "time_budget_s": None}},
        # paper 004: configuration C (its best, Table 4) at 128 px (Section IV.B); SGD with momentum
        # 0.9, minibatches of 256, L2 penalty 5e-4, dropout 0.5 (IV.C); 10 % of the training set held
        # out for early stopping (IV.A); 1000-2000 epochs (IV.C). Learning rate and patience are
        # not given in the paper (ours)
        "vgg_configs": {"config": "C", "image_size": 128, "dropout": 0.5, "weight_decay": 5e-4,
                        "augmentation": False, "val_fraction": 0.1,
                        "training": {"optimizer": "sgd", "learning_rate": 0.01, "momentum": 0.9, "epochs": 1000,
                                     "batch_size": 256, "steps_per_epoch": None, "patience": 20,
                                     "time_budget_s": None}},
    },
    "chapters": {
        # every chapter that trains or compares methods uses this subset of the open benchmark
        "benchmark": {"fallback_sets": FALLBACK_SETS, "fallback_size": 128, "fallback_max_per_class": None,
                      "max_per_class": None},
        "data": {"max_per_class": None, "examples_per_class": 8},
        "hog": {"max_per_class": None, "test_max_per_class": None, "sweep_bins": (6, 9, 12, 15, 18),
                "val_fraction": 0.2, "n_example_queries": 8},
        # paper 000, Tables 2 and 4-5: three plain backbones beside the FPN, FPNs on fewer levels
        "resnet50v2_fpn": {"baselines": ("vgg16", "resnet50", "resnet50v2"), "baseline_time_budget_s": None,
                           "ablation_levels": (("P5",), ("P4", "P5"), ("P2", "P3")), "n_timing_queries": 100},
        # paper 001: the U-Net and its training are not described (ours: Adam, BCE + soft Dice); the
        # 70 / 30 split of each class is Section 4.2's. inres_time_budget_s caps this chapter's InRes-Net
        # training (the method's own settings are those of the side-by-side chapter)
        "inres_hashing": {"max_per_class": None, "unet_size": 256, "unet_filters": 32, "unet_depth": 4,
                          "unet_windows": 4,
                          "unet_training": {"optimizer": "adam", "learning_rate": 1e-3, "epochs": 30, "batch_size": 8,
                                            "steps_per_epoch": None, "patience": 5, "time_budget_s": None},
                          "inres_time_budget_s": None, "test_fraction": 0.3, "n_example_queries": 4},
        "bovw_cnn": {"max_per_class": None, "val_fraction": 0.2,
                     "sift_vocab_sizes": (250, 500, 1000, 2000, 3000, 4000),
                     "rootsift_vocab_sizes": (3000, 3500, 4000), "kmeans_iter": 50, "kmeans_restarts": 5,
                     "max_descriptors_per_image": 0, "sift_image_size": 256, "cnn_input_size": 256,
                     "cnn_models": ("squeezenet", "resnet50", "vgg16", "mobilenet"),
                     "k_preps": (10, 20, 30, 50, 100), "n_example_queries": 8},
        # paper 003: networks at 128 and 96 px (the method's input_size first); the 96 px one's time budget
        "cnnc_rbc": {"input_sizes": (128, 96), "variant_time_budget_s": None, "k": 10, "n_timing_queries": 100,
                     "n_example_queries": 5, "n_roi_examples": 5},
        # paper 004: Tables 5-6 train ablation_configs without dropout / with augmentation, Table 7
        # combined_configs with both; Table 4 each of them (and C) with dropout. Every ablation
        # network trains on ablation.max_per_class images per code of the archive (None: all) for
        # at most ablation.time_budget_s (None: the method's budget)
        "vgg_configs": {"ablation_configs": ("A", "B", "C", "D", "E", "F"), "combined_configs": ("E", "F", "G"),
                        "ablation": {"max_per_class": None, "time_budget_s": None}},
        "side_by_side": {"k": 10, "n_timing_queries": 200},
        # n_calibration: further test images (never queries) the IVF and HNSW knobs are calibrated on;
        # target_recall: what they are calibrated for, a margin above the 0.95 the queries must reach
        "scale": {"max_per_class": None, "sizes": (10_000, 30_000, 100_000, 300_000, 1_000_000),
                  "n_queries": 1000, "n_timing": 300, "n_calibration": 1000, "target_recall": 0.96},
        # the chapter after it: pq_sizes are the archive sizes of the compressed (IVF-PQ) indexes,
        # streamed, with pq_ms bytes of code per HOG vector (324 floats); throughput_images: the
        # images each of throughput_methods describes, then three times as many, for its rate per core
        "compressed": {"max_per_class": None, "n_queries": 1000, "n_timing": 300, "n_calibration": 1000,
                       "target_recall": 0.96, "pq_sizes": (1_000_000, 10_000_000), "pq_ms": (36, 81),
                       "throughput_images": 200, "throughput_methods": ("hog", "rbc", "cnn")},
    },
}

#: ``cpu``: what differs from ``PAPER`` on 2 CPU cores. Networks are smaller (64 px inputs, fewer
#: filters) and every training stops early on its validation loss or at its time budget.
CPU: dict[str, dict[str, dict]] = {
    "methods": {
        "bovw": {"n_words": 1000, "max_iter": 20, "n_init": 1, "max_descriptors_per_image": 50,
                 "points_per_word": 256, "image_size": None},
        # the paper's network at 128 px, in short epochs (60 batches, ~60 s on 2 cores) so that the run,
        # which stops after the epoch that passes the budget, ends within 300 s
        "cnnc_rbc": {"training": {"batch_size": 32, "steps_per_epoch": 60, "patience": 3, "time_budget_s": 240}},
        # a 360 s budget: 64 px, epochs of 60 batches of 32 (about 40 s with validation on 2 cores),
        # the last one starting before 320 s
        "resnet50v2_fpn": {"input_size": 64, "pyramid_channels": 128,
                           "training": {"batch_size": 32, "steps_per_epoch": 60, "patience": 3,
                                        "time_budget_s": 320}},
        # 64 px, three module pairs, no dropout, He / Glorot starts and Adam: 11 epochs of the 9,417
        # images in 230 s on 2 shared cores, mAP@10 (AP) 0.593 against HOG's 0.553 (SGD at 0.01 with
        # momentum, 10 epochs: 0.523; Adam at 2e-3 stopped early at 0.552). The budget leaves room for the
        # epoch that crosses it (about 25 s), so that training ends within 240 s
        "inres_hashing": {"input_size": 64, "stem_filters": 16, "stages": 3, "fc1_units": 256, "dropout": 0.0,
                          "init_stddev": None,
                          "training": {"optimizer": "adam", "learning_rate": 1e-3, "epochs": 100, "batch_size": 64,
                                       "patience": 3, "time_budget_s": 215}},
        # paper 004's C at 64 px; Adam, as SGD at 0.01-0.03 learnt too slowly for a 240 s budget (20-25 s
        # an epoch on 2 free cores; training stops after the first epoch that ends past 210 s)
        "vgg_configs": {"image_size": 64, "training": {"optimizer": "adam", "learning_rate": 1e-3, "batch_size": 32,
                                                       "patience": 3, "time_budget_s": 210}},
    },
    "chapters": {
        "benchmark": {"fallback_size": 64, "fallback_max_per_class": 1000},
        "data": {"examples_per_class": 6},
        "hog": {"max_per_class": 150, "n_example_queries": 6},
        # one baseline (plain ResNet50V2) in a 180 s budget, as the FPN's epochs: the last starts before 145 s
        "resnet50v2_fpn": {"baselines": ("resnet50v2",), "baseline_time_budget_s": 145, "ablation_levels": (),
                           "n_timing_queries": 20},
        "inres_hashing": {"unet_size": 128, "unet_filters": 16, "unet_depth": 3, "unet_windows": 3,
                          # budgets a few seconds (one epoch) under 60 s and 120 s: an epoch that crosses
                          # its budget still ends
                          "unet_training": {"epochs": 40, "time_budget_s": 54}, "inres_time_budget_s": 112},
        "bovw_cnn": {"max_per_class": 100, "sift_vocab_sizes": (250, 500, 1000, 2000),
                     "rootsift_vocab_sizes": (1000, 2000, 3000), "kmeans_iter": 20, "kmeans_restarts": 1,
                     "max_descriptors_per_image": 50, "sift_image_size": None,
                     "cnn_models": ("squeezenet", "mobilenet", "resnet50"), "n_example_queries": 6},
        "cnnc_rbc": {"variant_time_budget_s": 100, "n_timing_queries": 20, "n_roi_examples": 4},  # ends within 150 s
        # ten ablation networks (B, C, F, G in Table 4), each on 40 images per code within about 30 s
        "vgg_configs": {"ablation_configs": ("B", "F"), "combined_configs": ("F", "G"),
                        "ablation": {"max_per_class": 40, "time_budget_s": 25}},
        "side_by_side": {"n_timing_queries": 50},
        "scale": {"sizes": (30_000, 100_000, 300_000, 1_000_000), "n_queries": 1000, "n_timing": 100},
        "compressed": {"n_timing": 100, "pq_ms": (36,)},  # one code size up to 10M vectors
    },
}

#: ``smoke``: what differs from ``PAPER`` in CI: 28 px MedMNIST, ten images per code, tiny
#: networks trained for a few steps.
SMOKE: dict[str, dict[str, dict]] = {
    "methods": {
        "bovw": {"n_words": 100, "max_iter": 20, "n_init": 1, "max_descriptors_per_image": 100,
                 "points_per_word": 256, "image_size": None},
        "cnnc_rbc": {"training": {"epochs": 2, "batch_size": 32, "steps_per_epoch": 6, "time_budget_s": 60}},
        "resnet50v2_fpn": {"input_size": 64, "pyramid_channels": 64, "balance_per_class": 2,
                           "training": {"epochs": 1, "patience": None, "time_budget_s": 60, "run_eagerly": True}},
        "inres_hashing": {"input_size": 32, "stem_filters": 8, "stages": 2, "fc1_units": 64, "dropout": 0.0,
                          "init_stddev": None,
                          "training": {"optimizer": "adam", "learning_rate": 1e-3, "epochs": 4, "batch_size": 16,
                                       "patience": 2, "time_budget_s": 30}},
        "vgg_configs": {"image_size": 64, "training": {"epochs": 2, "batch_size": 16, "patience": 2,
                                                       "time_budget_s": 60}},
    },
    "chapters": {
        "benchmark": {"fallback_sets": ("pneumoniamnist", "breastmnist"), "fallback_size": 28,
                      "max_per_class": 10},
        "data": {"max_per_class": 40, "examples_per_class": 4},
        "hog": {"max_per_class": 20, "test_max_per_class": 20, "sweep_bins": (9, 15), "n_example_queries": 4},
        "resnet50v2_fpn": {"baselines": ("resnet50v2",), "baseline_time_budget_s": 60, "ablation_levels": (),
                           "n_timing_queries": 5},
        "inres_hashing": {"max_per_class": 60, "unet_size": 96, "unet_filters": 8, "unet_depth": 3, "unet_windows": 2,
                          "unet_training": {"epochs": 6, "patience": None, "time_budget_s": 30},
                          "inres_time_budget_s": 30, "n_example_queries": 3},
        "bovw_cnn": {"max_per_class": 10, "sift_vocab_sizes": (50, 100), "rootsift_vocab_sizes": (100, 150),
                     "kmeans_iter": 20, "kmeans_restarts": 1, "max_descriptors_per_image": 100,
                     "sift_image_size": None, "cnn_models": ("squeezenet", "mobilenet"), "k_preps": (10, 30),
                     "n_example_queries": 4},
        "cnnc_rbc": {"variant_time_budget_s": 60, "n_timing_queries": 3, "n_example_queries": 4,
                     "n_roi_examples": 3},
        "vgg_configs": {"ablation_configs": ("B", "F"), "combined_configs": ("F",),
                        "ablation": {"time_budget_s": 20}},
        "side_by_side": {"n_timing_queries": 5},
        "scale": {"max_per_class": 20, "sizes": (10_000, 50_000), "n_queries": 100, "n_timing": 30,
                  "n_calibration": 300},
        "compressed": {"max_per_class": 20, "n_queries": 100, "n_timing": 30, "n_calibration": 300,
                       "pq_sizes": (20_000,), "pq_ms": (36,), "throughput_images": 20,
                       "throughput_methods": ("hog", "rbc")},
    },
}


def merged(base: dict, overrides: dict) -> dict:
    """A deep copy of ``base`` with ``overrides`` merged in (nested dicts merged, other values replaced).

    Raises:
        KeyError: an override names a setting ``base`` does not have (a typo would otherwise go unseen).
    """
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if key not in out:
            raise KeyError(f"override {key!r} is not a setting of the paper profile; it has {sorted(out)}")
        out[key] = merged(out[key], value) if isinstance(value, dict) else copy.deepcopy(value)
    return out


#: The overrides of each profile, and the full settings they give.
OVERRIDES = {"paper": {}, "cpu": CPU, "smoke": SMOKE}
PROFILES = {name: merged(PAPER, overrides) for name, overrides in OVERRIDES.items()}


def profile_overrides(profile: str) -> list[tuple[str, object, object]]:
    """``(section.setting, paper value, profile value)`` for each setting ``profile`` overrides."""
    rows = []

    def walk(prefix, paper, override):
        for key, value in override.items():
            if isinstance(value, dict):
                walk(f"{prefix}{key}.", paper[key], value)
            else:
                rows.append((f"{prefix}{key}", paper[key], value))

    walk("", PAPER, _check_profile(profile) and OVERRIDES[profile])
    return rows


#: Images per class (and split) a dry run keeps: enough for a train / validation / test split of
#: every code. A section whose ``*_fraction`` is smaller keeps more (:func:`dry_run_per_class`).
DRY_RUN_PER_CLASS = 3
#: The per-class data caps of a section, capped to :func:`dry_run_per_class` in a dry run.
DRY_RUN_DATA = ("max_per_class", "test_max_per_class", "fallback_max_per_class")
#: What :func:`dry_run_settings` caps besides :data:`DRY_RUN_DATA`, by setting name (the nested sections of
#: ``side_by_side`` too). A value is an upper bound; `None` (no limit: every step) becomes the bound,
#: except for ``patience``, where `None` means no early stopping and stays. Every other setting
#: keeps its value.
DRY_RUN_CAPS: dict[str, int] = {
    # training: one epoch of at most two batches where the trainer takes a step cap, else one
    # short epoch over the capped data
    "epochs": 1, "unet_epochs": 1, "steps_per_epoch": 2, "patience": 1,
    # the FPN chapters' training set: one image per code after balancing, i.e. two batches of 16 for
    # the benchmark's 28 codes (the smoke profile covers the augmentation of small classes)
    "balance_per_class": 1,
    # U-Net training pairs: renderings of each Lung-PET-CT-Dx slice (the lung window only; the smoke
    # profile covers the random windows)
    "unet_windows": 1,
    # timing and example counts
    "n_timing_queries": 2, "n_timing": 2, "n_queries": 5, "n_example_queries": 2, "n_roi_examples": 2,
    "n_calibration": 20,  # the scale chapters' held-out calibration images
    "throughput_images": 10,
    "examples_per_class": 2,
    # k-means of the visual vocabularies: a few iterations, one restart. The vocabulary sizes stay
    # the paper's (up to 4000 words): the capped archives still hold more SIFT descriptors than that
    # (about 26,000 in bovw_cnn at 256 px, 7,500 in side_by_side at 128 px), which k-means needs.
    "kmeans_iter": 3, "kmeans_restarts": 1, "max_iter": 3, "n_init": 1,
}
#: Sweeps a dry run shortens to their first values, by setting name: ablations that retrain
#: networks the chapter has already trained (VGG configurations A-G without dropout, with
#: augmentation, with both), the FPN trained on fewer pyramid levels (the first variant takes the
#: chapter's ablation path; the others differ only in the levels tapped) and paper 002's numbers of
#: candidates to re-rank (up to 100; the capped validation archive holds fewer images).
DRY_RUN_PREFIX: dict[str, int] = {"ablation_configs": 1, "combined_configs": 1, "ablation_levels": 1,
                                  "k_preps": 2}
#: Settings a dry run replaces: the archive sizes of the scale chapter (and one size of the compressed
#: indexes, large enough for their codebooks' 9,984 training vectors), and ``run_eagerly`` (building
#: the graph of a ResNet's training step costs more on a CPU than the few steps it would speed up;
#: the ``cpu`` profile trains the same networks in graph mode).
DRY_RUN_VALUES: dict[str, object] = {"sizes": (1_000, 2_000), "pq_sizes": (20_000,), "run_eagerly": True}


def dry_run_per_class(settings: dict) -> int:
    """Images per class a dry run of ``settings`` keeps: :data:`DRY_RUN_PER_CLASS`, or more when a
    ``*_fraction`` (validation or test share, rounded per class) would leave a class without one."""
    fractions = [value for key, value in settings.items() if key.endswith("_fraction") and value]
    return max([DRY_RUN_PER_CLASS] + [math.floor(0.5 / f) + 1 for f in fractions])


def dry_run_settings(settings: dict) -> dict:
    """A copy of ``settings`` capped for a dry run: short trainings on a few images, same networks.

    Caps the per-class data of :data:`DRY_RUN_DATA` to :func:`dry_run_per_class` and the settings
    named in :data:`DRY_RUN_CAPS` (epochs to 1, ``steps_per_epoch`` to 2, ``patience`` to 1,
    timing and example counts to a few, ...), shortens the sweeps of :data:`DRY_RUN_PREFIX` and
    replaces the settings of :data:`DRY_RUN_VALUES`, in nested dicts too. Every other setting, in
    particular every architecture setting (input sizes, filters, stages, FC units, hash bits,
    pyramid channels, vocabulary sizes), keeps its value.
    """
    caps = {**DRY_RUN_CAPS, **dict.fromkeys(DRY_RUN_DATA, dry_run_per_class(settings))}
    capped = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            value = dry_run_settings(value)
        elif key in DRY_RUN_VALUES:
            value = DRY_RUN_VALUES[key]
        elif key in DRY_RUN_PREFIX:
            value = value[:DRY_RUN_PREFIX[key]]
        elif key in caps and not (key == "patience" and value is None):
            value = caps[key] if value is None else min(value, caps[key])
        capped[key] = value
    return capped



def _check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"Unknown profile. Use one of {sorted(PROFILES)}. Received: profile={profile!r}")
    return profile


def _settings(profile: str, part: str, section: str, dry_run: bool, overrides: dict) -> dict:
    sections = PROFILES[_check_profile(profile)][part]
    if section not in sections:
        raise ValueError(f"Profile {profile!r} has no {part[:-1]} {section!r}; it has {sorted(sections)}")
    settings = copy.deepcopy(sections[section])
    if dry_run:
        settings = dry_run_settings(settings)
    unknown = set(overrides) - set(settings)
    if unknown:
        raise ValueError(f"Unknown settings {sorted(unknown)} for {part[:-1]} {section!r}")
    for key, value in overrides.items():
        settings[key] = merged(settings[key], value) if isinstance(value, dict) else value
    return settings


def get_profile(profile: str, section: str, *, dry_run: bool = False, **overrides) -> dict:
    """Settings of one chapter ``section`` under ``profile``, with keyword ``overrides``.

    With ``dry_run=True`` the settings are capped by :func:`dry_run_settings` (before the overrides).

    Raises:
        ValueError: unknown profile, section or setting.
    """
    return _settings(profile, "chapters", section, dry_run, overrides)


def method_settings(profile: str, method: str, *, dry_run: bool = False, **overrides) -> dict:
    """Settings of one retrieval ``method`` (a key of :data:`cbmir_tf.methods.METHODS`) under ``profile``.

    These are the method's constructor arguments; ``training`` holds those of
    :func:`cbmir_tf.models.training.train`. A dict override is merged into the nested settings
    (``training={"epochs": 3}`` changes only the epochs). ``dry_run`` as in :func:`get_profile`.

    Raises:
        ValueError: unknown profile, method or setting.
    """
    return _settings(profile, "methods", method, dry_run, overrides)
