"""Write genbench/stats/catalogue.json: the published reference statistics of the field, by name.

The facts (URLs, keys, n, resolution, how each file was made, covariance normalisation, published checksums)
come from the owners' repositories, issue threads and docs (each entry's ``citation``); what those sources do
not state is left null and listed under ``unconfirmed``. README "Published references" summarises them. Run from the repository root:

    python scripts/make_catalogue.py            # rewrite the JSON
    python scripts/make_catalogue.py --check    # exit 1 when the JSON is not what this script writes

tests/unit/test_catalogue.py runs the check, so the table here and the shipped JSON never drift apart.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "genbench" / "stats" / "catalogue.json"
sys.path.insert(0, str(REPO))

from genbench.features.weights import INCEPTION_V3_WEIGHTS  # noqa: E402

MiB = 1 << 20
GiB = 1 << 30
INCEPTION_SHA = INCEPTION_V3_WEIGHTS.sha256
FEATURES_PORT = "PyTorch port (genbench inception-v3: pytorch-fid's pt_inception-2015-12-05-6726825d.pth)"

TF_GRAPH = "TF graph (classify_image_graph_def.pb of inception-2015-12-05.tgz, pool_3:0)"
NV_PT = "NVIDIA TorchScript (inception-2015-12-05.pt, a direct translation of the TF graph)"
NV_PKL = "NVIDIA pickle (StyleGAN3's inception-2015-12-05.pkl, a direct translation of the TF graph)"
PT_PORT = "PyTorch port (pytorch-fid's pt_inception-2015-12-05-6726825d.pth, as clean-fid legacy_pytorch)"

#: What the anchors measured between packagings of the one Inception network (README "Published references").
AGREEMENT = {
    "tf1-bilinear": ("TF graph vs NVIDIA TorchScript (clean-fid legacy_tensorflow vs TTUR, 5,000 StyleGAN2 vs "
                     "5,000 FFHQ images): FID 8.972544787448271 vs 8.972518580709163 (about 2e-05); torch-fidelity's "
                     "TF1-exact bilinear + the PyTorch port vs the TF reference code on 5,000 CIFAR-10 images: FID "
                     "relative error 1e-6, features 1e-4"),
    "torch-bilinear": ("clean-fid legacy_pytorch vs pytorch-fid, same 5k/5k set: FID 8.966867513671616 vs "
                       "8.966869432185263 (about 2e-06); against the TF-bilinear numbers (8.9725) the resize moves "
                       "FID by about 0.0057"),
    "pil-bicubic": ("clean-fid clean: PIL bicubic on float32 channels, the NVIDIA TorchScript layers; no "
                    "cross-packaging measurement published (clean and legacy_* statistics are not equivalent: a "
                    "third-party CIFAR-10 run gives clean 8.619 vs legacy_tensorflow 8.115)"),
}


def inception(layer: str = "pool3", preprocessing: str = "tf1-bilinear", reference: str = TF_GRAPH,
              name: str = "fid", kind: str = "statistics", keys: tuple[str, ...] = ("mu", "sigma"),
              feature_dim: int = 2048) -> dict:
    return {
        "name": name, "kind": kind, "keys": list(keys), "extractor": "inception-v3", "layer": layer,
        "preprocessing": preprocessing, "weights_sha256": INCEPTION_SHA, "feature_dim": feature_dim,
        "packaging": {"reference": reference, "features": FEATURES_PORT},
        "agreement": AGREEMENT[preprocessing] if layer == "pool3" else (
            "sFID's spatial features: mixed_6/conv:0 (first 7 channels, 17x17x7 = 2023 values) of the TF graph; "
            "genbench has no extractor layer for them yet (protocols issue)"),
    }


def entry(source: str, stem: str, suffix: str, url: str, fmt: str, dataset: str, split: str, resolution: int | None,
          n: int | None, n_basis: str, made_by: str, components: list[dict], citation: str, max_bytes: int,
          images: dict | None = None, unconfirmed: tuple[str, ...] = (), notes: tuple[str, ...] = (),
          git_blob_sha1: str | None = None, fingerprint: dict | None = None) -> dict:
    return {
        "id": f"{source}/{stem}", "source": source, "file": stem + suffix, "url": url, "format": fmt,
        "dataset": dataset, "split": split, "resolution": resolution, "n": n, "n_basis": n_basis,
        "sha256": None, "sha256_basis": "none published: recorded at the first download and checked on every later copy",
        "git_blob_sha1": git_blob_sha1, "fingerprint": fingerprint, "covariance": "unbiased", "max_bytes": max_bytes, "made_by": made_by,
        "images": images, "components": components, "unconfirmed": list(unconfirmed), "notes": list(notes),
        "citation": citation,
    }


# ----------------------------------------------------------------------------- clean-fid

CLEANFID_BASE = "https://www.cs.cmu.edu/~clean-fid/stats/"
CLEANFID_MODES = {
    "clean": ("pil-bicubic", NV_PT, "PIL bicubic resize to 299 per channel on float32 (no uint8 re-quantisation), "
              "(x-128)/128, the layers of NVIDIA's TorchScript inception-2015-12-05.pt"),
    "legacy_tensorflow": ("tf1-bilinear", NV_PT, "NVIDIA's TorchScript inception-2015-12-05.pt with its own "
                          "TF-style bilinear resize and normalisation (equivalent to TTUR)"),
    "legacy_pytorch": ("torch-bilinear", PT_PORT, "F.interpolate(bilinear, align_corners=False) to 299 and "
                       "pytorch-fid's InceptionV3 (equivalent to pytorch-fid)"),
}
ALL_MODES = tuple(CLEANFID_MODES)
#: (dataset_name, res, split, n, modes, made from, kid files published)
CLEANFID = [
    ("cifar10", 32, "train", 50_000, ALL_MODES, "the 50k CIFAR-10 train PNGs (stylegan2-ada-pytorch dataset_tool)", False),
    ("cifar10", 32, "test", 10_000, ALL_MODES, "the 10k CIFAR-10 test PNGs", False),
    ("ffhq", 1024, "trainval", 50_000, ALL_MODES, "a random 50k of FFHQ train+val images1024x1024 (seed 0)", False),
    ("ffhq", 256, "trainval", 50_000, ALL_MODES, "a random 50k of FFHQ ffhq-r08.tfrecords unpacked (seed 0)", False),
    ("ffhq", 1024, "trainval70k", 70_000, ALL_MODES, "all 70k FFHQ images1024x1024", False),
    ("ffhq", 256, "trainval70k", 70_000, ALL_MODES, "all 70k FFHQ ffhq-r08.tfrecords", False),
    ("lsun_church", 256, "train", 50_000, ALL_MODES, "50k LSUN church images", False),
    ("lsun_church", 256, "trainfull", 126_227, ("clean",), "all LSUN church train images", False),
    ("lsun_horse", 256, "train", 50_000, ALL_MODES, "50k LSUN horse images", False),
    ("lsun_horse", 256, "trainfull", 2_000_340, ("clean",), "all LSUN horse train images", False),
    ("lsun_cat", 256, "train", 50_000, ALL_MODES, "a random 50k of a 200k center-crop 256 LSUN cat set (seed 0)", False),
    ("lsun_cat", 256, "trainfull", 1_657_264, ALL_MODES, "all LSUN cat train images", False),
    ("afhq_cat", 512, "train", 5_153, ALL_MODES, "AFHQ cat train", True),
    ("afhq_dog", 512, "train", 4_739, ALL_MODES, "AFHQ dog train", True),
    ("afhq_wild", 512, "train", 4_738, ALL_MODES, "AFHQ wild train", True),
    ("brecahad", 512, "train", 1_944, ALL_MODES, "BreCaHAD train", True),
    ("metfaces", 1024, "train", 1_336, ALL_MODES, "MetFaces train", True),
    ("horse2zebra", 256, "test", 140, ALL_MODES, "horse2zebra test", False),
    ("cat2dog", 256, "test", 500, ALL_MODES, "cat2dog test", False),
]
#: Content fingerprints of official files printed by users (not checksums): file stem -> sums.
CLEANFID_FINGERPRINTS = {
    "ffhq_clean_trainval70k_256": {"mu_sum": 618.9957, "mu_sum_tol": 5e-4, "sigma_sum": 12467.119923723967,
                                   "source": "GaParmar/clean-fid#27: a user's printout of the official file"},
}
CLEANFID_CITATION = ("GaParmar/clean-fid README 'Supported Precomputed Datasets', docs/datasets.md, "
                     "cleanfid/features.py::get_reference_statistics (Parmar et al., CVPR 2022)")


def cleanfid_entries() -> list[dict]:
    out = []
    for name, res, split, n, modes, made_from, kid in CLEANFID:
        for mode in modes:
            policy, reference, how = CLEANFID_MODES[mode]
            stem = f"{name}_{mode}_{split}_{res}".lower()
            unconfirmed = []
            notes = [f"clean-fid: compute_fid(..., dataset_name={name!r}, dataset_res={res}, dataset_split={split!r}, "
                     f"mode={mode!r})"]
            if name.startswith("lsun_"):
                unconfirmed.append("server spelling: the README writes lsun_cat/lsun_church/lsun_horse, "
                                   "docs/datasets.md writes lsuncat; the URL assumes the README spelling")
            if n < 2048:
                notes.append(f"n={n} < 2048: the covariance is rank-deficient")
            out.append(entry(
                "clean-fid", stem, ".npz", CLEANFID_BASE + stem + ".npz", "clean-fid-npz", name, split, res, n,
                "stated (README)", f"clean-fid mode {mode}: {how}; from {made_from}",
                [inception(preprocessing=policy, reference=reference)], CLEANFID_CITATION, 64 * MiB,
                unconfirmed=tuple(unconfirmed), notes=tuple(notes), fingerprint=CLEANFID_FINGERPRINTS.get(stem)))
            if kid:
                kid_stem = stem + "_kid"
                out.append(entry(
                    "clean-fid", kid_stem, ".npz", CLEANFID_BASE + kid_stem + ".npz", "clean-fid-kid-npz", name,
                    split, res, None, "the rows of feats", f"clean-fid mode {mode}: {how}; per-image features of "
                    f"{made_from} for KID",
                    [inception(preprocessing=policy, reference=reference, name="kid", kind="features",
                               keys=("feats",))],
                    CLEANFID_CITATION + "; README: KID statistics only for AFHQ, BreCaHAD and MetFaces", 512 * MiB,
                    unconfirmed=("which modes the server holds _kid files for",),
                    notes=(f"clean-fid: compute_kid(..., dataset_name={name!r}, dataset_res={res}, "
                           f"dataset_split={split!r}, mode={mode!r})",)))
    return out


# ----------------------------------------------------------------------------- TTUR

TTUR_BASE = "http://bioinf.jku.at/research/ttur/ttur_stats/"
#: (stem, dataset, split, resolution, n, n basis, what)
TTUR = [
    ("fid_stats_cifar10_train", "cifar10", "train", 32, 50_000, "derived (all CIFAR-10 training samples)",
     "all CIFAR-10 training samples"),
    ("fid_stats_celeba", "celeba", "all", 64, None, "not stated", "all samples of cropped CelebA 64x64"),
    ("fid_stats_lsun_train", "lsun_bedroom", "train", None, None, "not stated", "all LSUN bedroom training samples"),
    ("fid_stats_svhn_train", "svhn", "train", None, None, "not stated", "all SVHN training samples"),
    ("fid_stats_imagenet_train", "imagenet", "train", None, None, "not stated", "all ImageNet training samples"),
    ("fid_stats_imagenet_valid", "imagenet", "valid", None, None, "not stated", "all ImageNet validation samples"),
]


def ttur_entries() -> list[dict]:
    out = []
    for stem, dataset, split, res, n, basis, what in TTUR:
        unconfirmed = []
        if res is None:
            unconfirmed.append("the resolution of the images (not stated)")
        if n is None:
            unconfirmed.append("the number of images (not stated)")
        notes = ["before TTUR commit 583a850 (2017-09-19) some files of similar names held other statistics "
                 "(100k / 40k random samples); a copy cached before then differs"] if stem in (
                     "fid_stats_celeba",) else []
        out.append(entry(
            "ttur", stem, ".npz", TTUR_BASE + stem + ".npz", "ttur-npz", dataset, split, res, n, basis,
            f"TTUR fid.py: {what}, float [0,255] images fed to FID_Inception_Net/ExpandDims:0 (the graph resizes "
            "bilinearly to 299 and normalises), features pool_3:0, np.cov",
            [inception()], "bioinf-jku/TTUR README 'Precalculated Statistics', fid.py (Heusel et al., NeurIPS 2017)",
            64 * MiB, unconfirmed=tuple(unconfirmed), notes=tuple(notes)))
    return out


# ----------------------------------------------------------------------------- ADM

ADM_BASE = "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/ref_batches/"
#: (stem, folder, dataset, resolution, images in arr_0)
ADM = [
    ("VIRTUAL_imagenet64_labeled", "imagenet/64", "imagenet", 64, 10_000),
    ("VIRTUAL_imagenet128_labeled", "imagenet/128", "imagenet", 128, 10_000),
    ("VIRTUAL_imagenet256_labeled", "imagenet/256", "imagenet", 256, 10_000),
    ("VIRTUAL_imagenet512", "imagenet/512", "imagenet", 512, 1_000),
    ("VIRTUAL_lsun_bedroom256", "lsun/bedroom", "lsun_bedroom", 256, 10_000),
    ("VIRTUAL_lsun_cat256", "lsun/cat", "lsun_cat", 256, 10_000),
    ("VIRTUAL_lsun_horse256", "lsun/horse", "lsun_horse", 256, 10_000),
]


def adm_entries() -> list[dict]:
    out = []
    for stem, folder, dataset, res, images in ADM:
        notes = ["ADM evaluator: python evaluator.py " + stem + ".npz SAMPLES.npz (FID-50K, sFID, IS, precision, "
                 "recall with k=3 on the pool_3 features of arr_0)"]
        if res == 512:
            notes.append("arr_0 holds 1,000 images, not the 10,000 of the README (openai/guided-diffusion#19, #66)")
        out.append(entry(
            "adm", stem, ".npz", f"{ADM_BASE}{folder}/{stem}.npz", "adm-npz", dataset, "unstated", res, None,
            "not stated ('pre-computed statistics over the whole dataset')",
            "openai/guided-diffusion evaluations/evaluator.py: float32 NHWC [0,255] into the TF graph "
            "(ResizeBilinear to 299 inside), pool_3:0 for mu/sigma, mixed_6/conv:0 first 7 channels for "
            "mu_s/sigma_s, np.cov",
            [inception(keys=("mu", "sigma")),
             inception(name="spatial", layer="spatial", keys=("mu_s", "sigma_s"), feature_dim=17 * 17 * 7,
                       reference="TF graph (classify_image_graph_def.pb, mixed_6/conv:0, first 7 channels)")],
            "openai/guided-diffusion evaluations/README.md and evaluator.py (Dhariwal & Nichol, NeurIPS 2021)",
            4 * GiB, images={"key": "arr_0", "n": images, "layout": "NHWC", "dtype": "uint8",
                             "use": "precision and recall (k=3, Inception pool_3)"},
            unconfirmed=("which split and how many images the mu/sigma statistics cover",
                         "whether _labeled files also hold labels (arr_1)",
                         "whether mixed_6/conv:0 is taken after batch norm and ReLU"),
            notes=tuple(notes)))
    return out


# ----------------------------------------------------------------------------- EDM, EDM2

EDM_BASE = "https://nvlabs-fi-cdn.nvidia.com/edm/fid-refs/"
#: (stem, dataset, split, resolution, n, basis, how the images were made, unconfirmed)
EDM = [
    ("cifar10-32x32", "cifar10", "train", 32, 50_000, "stated (data_batch_1..5)", "CIFAR-10 train, no resize", ()),
    ("ffhq-64x64", "ffhq", "all", 64, 70_000, "derived (all of images1024x1024)",
     "FFHQ downscaled with dataset_tool.py --resolution=64x64 (PIL LANCZOS)", ()),
    ("afhqv2-64x64", "afhqv2", "all", 64, None, "not stated", "AFHQv2 downscaled with PIL LANCZOS",
     ("the number of AFHQv2 images",)),
    ("imagenet-64x64", "imagenet", "train", 64, 1_281_167, "derived (all of ILSVRC train)",
     "ImageNet train, dataset_tool.py --transform=center-crop (square center crop + LANCZOS; not ADM's BOX+BICUBIC)",
     ()),
    ("imagenet-64x64-baseline", "imagenet", "train", 64, None, "not stated",
     "derived from ADM's precomputed reference statistics (for baseline-imagenet-64x64-cond-adm.pkl only)",
     ("the keys (assumed mu, sigma)", "the number of images")),
]
EDM2_BASE = "https://nvlabs-fi-cdn.nvidia.com/edm2/dataset-refs/"


def edm_entries() -> list[dict]:
    out = []
    for stem, dataset, split, res, n, basis, how, unconfirmed in EDM:
        out.append(entry(
            "edm", stem, ".npz", EDM_BASE + stem + ".npz", "edm-npz", dataset, split, res, n, basis,
            f"NVlabs/edm fid.py ref: {how}; all images of the dataset zip, uint8 NCHW into NVIDIA's "
            "inception-2015-12-05.pkl (TF-style resize inside), covariance /(N-1)",
            [inception(reference=NV_PKL)], "NVlabs/edm README and fid.py (Karras et al., NeurIPS 2022)", 64 * MiB,
            unconfirmed=unconfirmed,
            notes=("EDM2's calculate_metrics.py reads these .npz files as its 'fid' statistics",)))
    for stem, res, extra in (
            ("img512", 512, ()),
            ("img64", 64, ("the img64.pkl URL from a first-party source (only the folder is written by NVlabs)",))):
        dinov2 = {
            "name": "fd_dinov2", "kind": "statistics", "keys": ["fd_dinov2.mu", "fd_dinov2.sigma"],
            "extractor": "dinov2-vit-l14", "layer": "cls-norm", "preprocessing": "dinov2-torch-bicubic",
            "weights_sha256": None, "feature_dim": 1024,
            "packaging": {"reference": "DINOv2 ViT-L/14 (torch.hub facebookresearch/dinov2:main, "
                                       "dinov2_vitl14_pretrain.pth), EDM2's resize_mode='torch'",
                          "features": "genbench dinov2-vit-l14 (the same checkpoint, no published sha256)"},
            "agreement": ("EDM2: resize_mode='torch' (bicubic, antialias) 'yields almost the same results' as "
                          "'pil', which 'matches the original dgm-eval codebase exactly'"),
        }
        out.append(entry(
            "edm2", stem, ".pkl", EDM2_BASE + stem + ".pkl", "edm2-pkl", "imagenet", "train", res, None,
            "the file's num_images",
            f"NVlabs/edm2 calculate_metrics.py ref on img{res}.zip (dataset_tool.py convert "
            "--transform=center-crop-dhariwal: ADM's center_crop_arr); FID: NVIDIA's inception-2015-12-05.pkl on "
            "uint8 NCHW; FD_DINOv2: dinov2_vitl14, resized to 224, /255, ImageNet mean/std; float64, /(N-1)",
            [inception(reference=NV_PKL, keys=("fid.mu", "fid.sigma")), dinov2],
            "NVlabs/edm2 README 'Calculating FID' and calculate_metrics.py (Karras et al., CVPR 2024)", 256 * MiB,
            unconfirmed=("which DINOv2 resize_mode made the published files (EDM2's default, 'torch', is assumed)",
                         *extra),
            notes=("a Python pickle: read with a restricted unpickler that admits only numpy arrays and plain "
                   "containers",)))
    return out


# ----------------------------------------------------------------------------- the LTH14 line (MAR, FractalGen)

#: (source, repository, stem, resolution, git blob SHA-1 of the file in the repository's tree, origin stated?)
LTH14 = [
    ("mar", "LTH14/mar", "adm_in256_stats", 256, "1da4c17607fe959d54999fd098105649a0c05e15", True),
    ("fractalgen", "LTH14/fractalgen", "adm_in64_stats", 64, "9740153cb724c0a05e522f8516a34a6b9d21fa0e", False),
]


def lth14_entries() -> list[dict]:
    out = []
    for source, repo, stem, res, blob, stated in LTH14:
        unconfirmed = ["the raw-file URL (derived from the repository path and its default branch, main)"]
        if not stated:
            unconfirmed.append("its origin (presumably ADM's ImageNet-64 reference statistics)")
        out.append(entry(
            source, stem, ".npz", f"https://github.com/{repo}/raw/main/fid_stats/{stem}.npz", "lth14-npz", "imagenet",
            "unstated", res, None, "as ADM's reference statistics (not stated)",
            f"{repo}: the mu and sigma of ADM's ImageNet-{res} reference batch ('Our evaluation will generate the "
            "exact same result as the ADM evaluation suite', LTH14/mar#8), scored there with torch-fidelity's "
            "inception-v3-compat (TF1-exact bilinear) through the LTH14 fork",
            [inception()], f"{repo} fid_stats/{stem}.npz (git tree); LTH14/mar#8", 64 * MiB,
            unconfirmed=tuple(unconfirmed),
            notes=(f"checked against the git blob SHA-1 {blob} of the repository's tree (sha1 of 'blob SIZE\\0' + "
                   "bytes)",),
            git_blob_sha1=blob))
    return out


def catalogue() -> dict:
    entries = cleanfid_entries() + ttur_entries() + adm_entries() + edm_entries() + lth14_entries()
    return {
        "format_version": 1,
        "about": ("Published reference statistics for FID-family metrics: where each file lives, what it holds, "
                  "how it was made and which genbench extractor and preprocessing policy reproduce its features. "
                  "Written by scripts/make_catalogue.py; sources: each entry's citation."),
        "entries": entries,
    }


def render() -> str:
    return json.dumps(catalogue(), indent=1) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="Exit 1 when the JSON differs from what is written.")
    args = parser.parse_args()
    text = render()
    if args.check:
        same = OUT.is_file() and OUT.read_text() == text
        print(f"{OUT}: {'up to date' if same else 'stale: run python scripts/make_catalogue.py'}")
        return 0 if same else 1
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(catalogue()['entries'])} entries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
