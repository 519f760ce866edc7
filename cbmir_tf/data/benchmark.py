"""The open multi-axis benchmark: eight real 2-D sets joined under one code scheme.

Every image gets a code ``MOD-region-finding`` (e.g. ``CT-abdomen-kidney_stone``),
the open stand-in for IRMA's multi-axis codes: the modality and the body region
give paper 002's two relevance axes, and the finding refines the region.

Where the data lives (``$CBMIR_DATA_DIR``):

* ``<folder>/<file>.npz`` for each member of :data:`REGISTRY` (the 128 px
  conversions; :func:`prepare` makes them from a download of the original folders);
* if none of them is present, the benchmark is built from what the code can
  download itself: MedMNIST+ PneumoniaMNIST and BreastMNIST at 128 px and MedNIST,
  with the same code scheme (``source="download"``).

The split is fixed: the source's own train/test split where it has one (its
validation images join the training split), otherwise a stratified 80/20 split
with seed 0. Sets without patient ids can leak a patient across the split; they
are listed in ``meta["patient_leakage"]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import warnings
from pathlib import Path

import numpy as np

from cbmir_tf.config import DATA_DIR_ENV, data_dir
from cbmir_tf.data.dataset import ImageDataset, concatenate, stratified_split
from cbmir_tf.data.download import verify_checksum
from cbmir_tf.data.io import atomic_write, sha256sum

BENCHMARK_SPLIT_SEED = 0
TEST_FRACTION = 0.2


@dataclasses.dataclass(frozen=True)
class Member:
    """One labelled set of the benchmark and where it came from."""

    key: str
    folder: str
    filename: str
    sha256: str
    title: str
    url: str
    licence: str
    modality: str
    region: str
    findings: dict[str, str]  # source class name -> finding token of the code
    has_split: bool = False
    note: str = ""

    def codes(self) -> tuple[str, ...]:
        return tuple(f"{self.modality}-{self.region}-{f}" for f in self.findings.values())


REGISTRY: tuple[Member, ...] = (
    Member("brain-tumor-mri", "brain-tumor-mri", "brain_tumor_mri_128.npz",
           "3c63f0f8302546eacf30e375157e4de937deb12001b0a237800e5059058f5c0d",
           "Brain Tumor MRI Dataset (M. Nickparvar; figshare, SARTAJ, Br35H)",
           "https://www.kaggle.com/datasets/masoudnickparvar/brain-tumor-mri-dataset",
           "CC0 (Kaggle listing); figshare part CC BY 4.0", "MR", "brain",
           {"glioma": "glioma", "meningioma": "meningioma", "notumor": "no_tumor", "pituitary": "pituitary"},
           has_split=True),
    Member("alzheimer-mri", "alzheimer-mri", "alzheimer_mri_128.npz",
           "7fa1876fdb11b36a02f87128414c6cd0d212de284bb89b492d12f5ad3a3cb977",
           "Alzheimer MRI Preprocessed Dataset (S. Kumar)",
           "https://www.kaggle.com/datasets/sachinkumar413/alzheimer-mri-dataset",
           "unknown (upstream said ODbL 1.0)", "MR", "brain",
           {"Non_Demented": "dementia_none", "Very_Mild_Demented": "dementia_very_mild",
            "Mild_Demented": "dementia_mild", "Moderate_Demented": "dementia_moderate"},
           note="neighbouring slices of the same subjects"),
    Member("knee-oa-xray", "knee-oa-xray", "knee_oa_kl_128.npz",
           "87911e645e0c63726517c9d8c1423037ceceeba7c79ebeaf4d6864308ec3a486",
           "Knee Osteoarthritis Severity Grading Dataset, kneeKL224 (P. Chen 2018, OAI)",
           "https://data.mendeley.com/datasets/56rmx5bjcr/1", "CC BY 4.0", "XR", "knee",
           {f"KL{g}": f"kl{g}" for g in range(5)}, has_split=True),
    Member("covid19-cxr-3class", "covid19-cxr-3class", "covid19_cxr_3class_128.npz",
           "b66f2679d40f447ae9a2444b737aa38d956a5faaeb5fcb7957e26d9296aea05a",
           "Covid-19 Image Dataset, 3-way (P. Raikokte)",
           "https://www.kaggle.com/datasets/pranavraikokte/covid19-image-dataset", "unclear / mixed",
           "XR", "chest", {"Normal": "normal", "Covid": "covid", "Viral Pneumonia": "viral_pneumonia"},
           has_split=True, note="class confounded with image source"),
    Member("kidney-ct", "kidney-ct", "kidney_ct_128.npz",
           "526bdf00d34ea01a9ad9498e065fe470087249f89bd970bfccddc642ca2388ef",
           "CT KIDNEY DATASET: Normal-Cyst-Tumor and Stone (Islam et al. 2022)",
           "https://www.kaggle.com/datasets/nazmul0087/ct-kidney-dataset-normal-cyst-tumor-and-stone",
           "unknown", "CT", "abdomen",
           {"Cyst": "kidney_cyst", "Normal": "kidney_normal", "Stone": "kidney_stone", "Tumor": "kidney_tumor"},
           note="consecutive slices of few patients"),
    Member("lung-ct-iq-oth-nccd", "lung-ct-iq-oth-nccd", "iq_oth_nccd_lung_ct_128.npz",
           "80d15435fb002424bc15ae734d83b17209d0a2ec63dd3b16ad41eb4ed4b32600",
           "The IQ-OTH/NCCD lung cancer dataset (Alyasriy & AL-Huseiny)",
           "https://data.mendeley.com/datasets/bhmdr45bh2", "CC BY 4.0", "CT", "chest",
           {"Normal": "lung_normal", "Benign": "lung_benign", "Malignant": "lung_malignant"},
           note="several slices per case"),
    Member("head-ct-hemorrhage", "head-ct-hemorrhage", "head_ct_hemorrhage_128.npz",
           "82571d04d2b170f7b24cc81ad7884828e62761f984aa533f41ce904c0a636063",
           "Head CT - hemorrhage (F. Kitamura)",
           "https://www.kaggle.com/datasets/felipekitamura/head-ct-hemorrhage", "unknown", "CT", "brain",
           {"no_hemorrhage": "no_hemorrhage", "hemorrhage": "hemorrhage"}),
    Member("busi-ultrasound", "busi-ultrasound", "busi_breast_us_128.npz",
           "95d15905ae717ee0fd4e0715312ee19bf951b7402bf3f2ae812c18c7b57bb787",
           "Breast Ultrasound Images Dataset, BUSI (Al-Dhabyani et al. 2020)",
           "https://scholar.cu.edu.eg/?q=afahmy/pages/dataset", "CC BY 4.0", "US", "breast",
           {"normal": "normal", "benign": "benign", "malignant": "malignant"}),
)
MEMBERS = {m.key: m for m in REGISTRY}


def available_members(root=None) -> list[Member]:
    """Registry members whose npz file is present in the data directory."""
    base = data_dir(root)
    return [m for m in REGISTRY if (base / m.folder / m.filename).exists()]


def load_member(member: str | Member, root=None, *, verify: bool = True) -> ImageDataset:
    """Load one member set in the benchmark's form (codes as class names, fixed split)."""
    member = MEMBERS[member] if isinstance(member, str) else member
    path = data_dir(root) / member.folder / member.filename
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found. Set {DATA_DIR_ENV} to the folder holding '{member.folder}/', or download "
            f"{member.title} from {member.url} and run `cbmir-prepare {member.key} <download folder>`."
        )
    if verify:  # a file made by prepare() carries its own checksum in a sidecar
        sidecar = path.with_name(path.name + ".sha256")
        expected = sidecar.read_text().split()[0] if sidecar.exists() else member.sha256
        verify_checksum(path, expected, "sha256")
    with np.load(path, allow_pickle=False) as npz:
        images, labels = npz["images"], npz["labels"].astype(np.int64)
        source_names = [str(c) for c in npz["class_names"]]
        split = npz["split"] if "split" in npz.files else None
        sources = npz["source_paths"]
    unknown = set(source_names) - set(member.findings)
    if unknown:
        raise ValueError(f"{path}: class names {sorted(unknown)} are not in the registry entry '{member.key}'")
    codes = np.array([f"{member.modality}-{member.region}-{member.findings[source_names[l]]}" for l in labels])
    if split is None:
        split = stratified_split(labels, TEST_FRACTION, BENCHMARK_SPLIT_SEED)
    else:
        split = np.where(np.asarray(split) == "val", "train", np.asarray(split))
    class_names = member.codes()
    order = {source_names[i]: class_names.index(f"{member.modality}-{member.region}-{member.findings[n]}")
             for i, n in enumerate(source_names)}
    labels = np.array([order[source_names[l]] for l in labels], dtype=np.int64)
    return ImageDataset(
        images, labels, class_names, split, np.array([f"{member.key}:{s}" for s in sources]), codes,
        name=member.key,
        meta={"origin": member.url, "licence": member.licence, "sha256": member.sha256,
              "patient_leakage": not member.has_split},
    )


def load_benchmark(root=None, *, source: str = "auto", members=None, max_per_class: int | None = None,
                   seed: int = 0, verify: bool = True) -> ImageDataset:
    """Load the open multi-axis benchmark as one `ImageDataset` of 128 px grey images.

    Args:
        root: Data directory. Defaults to ``$CBMIR_DATA_DIR``.
        source: ``"local"`` (the registry's npz files), ``"download"`` (MedMNIST+ and
            MedNIST, fetched if absent) or ``"auto"`` (local when any member is present).
            Defaults to ``"auto"``.
        members: Keys of the registry to include. Defaults to every one present.
        max_per_class: Keep at most this many images per class and split (seeded).
            Defaults to `None` (all).
        seed: Seed of that subsampling (the split itself is fixed). Defaults to 0.
        verify: Check each file's sha256 against the registry. Defaults to `True`.

    Returns:
        An `ImageDataset` whose class names are the codes, with ``meta["members"]``
        and ``meta["patient_leakage"]``.
    """
    if source not in {"auto", "local", "download"}:
        raise ValueError(f"source must be 'auto', 'local' or 'download'. Received: source={source!r}")
    present = available_members(root)
    if source == "download" or (source == "auto" and not present and members is None):
        parts = _downloadable_parts(root)
    else:
        chosen = [MEMBERS[k] for k in members] if members else present
        if not chosen:
            raise FileNotFoundError(
                f"No benchmark set found under {data_dir(root)}. Set {DATA_DIR_ENV} (see README, 'Data'), "
                "or use source='download'."
            )
        parts = [load_member(m, root, verify=verify) for m in chosen]
    if max_per_class:
        parts = [p.stratified_sample(max_per_class, seed) for p in parts]
    benchmark = concatenate(parts, name="open-benchmark")
    leaky = [p.name for p in parts if p.meta.get("patient_leakage")]
    if leaky:
        warnings.warn(f"No patient ids in {', '.join(leaky)}: their split may leak patients.", stacklevel=2)
    meta = {"members": [p.name for p in parts], "patient_leakage": leaky, "source": source,
            "max_per_class": max_per_class, "seed": seed}
    return dataclasses.replace(benchmark, meta=meta)


def _downloadable_parts(root=None) -> list[ImageDataset]:
    """The fallback benchmark: what the code can download itself, at 128 px."""
    from cbmir_tf.data.medmnist import load_medmnist
    from cbmir_tf.data.mednist import load_mednist

    mednist = load_mednist(root, size=128, max_per_class=1000)
    return [load_medmnist("pneumoniamnist", 128, root=root), load_medmnist("breastmnist", 128, root=root),
            mednist]


def composition(dataset: ImageDataset) -> "pandas.DataFrame":  # noqa: F821
    """One row per code: modality, region, finding and the train/test counts."""
    import pandas as pd

    table = dataset.summary().reset_index()
    parts = table["class"].astype(str).str.split("-", n=2, expand=True)
    table.insert(1, "modality", parts[0])
    table.insert(2, "region", parts[1])
    table.insert(3, "finding", parts[2])
    return table.rename(columns={"class": "code"})


# -- prepare: original image folders -> the benchmark's npz form --------------------------------

SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "valid": "val",
                 "validation": "val", "test": "test", "testing": "test"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def prepare(member: str, source_folder: str | os.PathLike, root=None, size: int = 128) -> Path:
    """Convert a download of a member's original image folders into its benchmark npz.

    Each image becomes grey uint8, centre-padded to a square with black and
    area-resized to ``size``. Byte-identical files are kept once (first in sorted
    path order) and dropped altogether if their labels disagree. The class is the
    nearest parent folder named like one of the member's classes (case-insensitive);
    the split is a parent folder named train/val/test (or Training/Testing).
    The npz is written atomically to ``<data dir>/<folder>/<filename>``.

    Returns:
        The path of the written file.
    """
    from cbmir_tf.data.io import read_image
    from cbmir_tf.data.preprocess import standardize_image

    entry, source = MEMBERS[member], Path(source_folder)
    classes = {name.lower(): name for name in entry.findings}
    records = {}
    for path in sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        parents = [p.name.lower() for p in path.relative_to(source).parents]
        label = next((classes[p] for p in parents if p in classes), None)
        if label is None:
            continue
        digest = sha256sum(path)
        split = next((SPLIT_FOLDERS[p] for p in parents if p in SPLIT_FOLDERS), "")
        records.setdefault(digest, []).append((path, label, split))
    keep = [group[0] for group in records.values() if len({label for _, label, _ in group}) == 1]
    if not keep:
        raise FileNotFoundError(f"{source}: no images in class folders named {sorted(entry.findings)}")
    keep.sort(key=lambda r: str(r[0]))
    class_names = list(entry.findings)
    images, sizes = [], []
    for path, _, _ in keep:
        pixels = read_image(path)
        sizes.append(pixels.shape[::-1])
        images.append(standardize_image(pixels, size))
    arrays = {
        "images": np.stack(images), "labels": np.array([class_names.index(l) for _, l, _ in keep]),
        "class_names": np.array(class_names), "original_size_wh": np.array(sizes, dtype=np.int32),
        "source_paths": np.array([str(p.relative_to(source)) for p, _, _ in keep]),
    }
    if all(s for _, _, s in keep):
        arrays["split"] = np.array([s for _, _, s in keep])
    out = data_dir(root) / entry.folder / entry.filename
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as tmp:
        np.savez_compressed(tmp, **arrays)
        digest = sha256sum(tmp)
    with atomic_write(out.with_name(out.name + ".sha256"), "w") as sidecar:
        sidecar.write(f"{digest}  {out.name}\n")
    return out


def prepare_cli(argv=None) -> None:
    """``cbmir-prepare MEMBER SOURCE_FOLDER``: the command-line face of :func:`prepare`."""
    parser = argparse.ArgumentParser(description=prepare.__doc__.splitlines()[0])
    parser.add_argument("member", choices=sorted(MEMBERS))
    parser.add_argument("source_folder")
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args(argv)
    out = prepare(args.member, args.source_folder, size=args.size)
    print(f"wrote {out} (and its .sha256 sidecar)")
