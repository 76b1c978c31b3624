"""Speed, FLOPs and memory of the full-size models on one Kodak-sized image (CPU).

For each model: parameters, GFLOP of forward / compress / decompress (counted
with ``torch.utils.flop_counter``), median seconds over ``--repeat`` runs, peak
RSS growth, and the ratio of measured encode + decode time to the FLOP-bound
limit (GFLOP / the machine's measured fp32 matmul GFLOP/s).

    python benchmarks/bench_models.py [--models wacnn stf tcm-s tcm-l] [--size 512 768]

Prints a table and writes benchmarks/results/models.json.

``--against REF`` (a git revision) compares this tree with REF instead: for each
model, ``--repeat`` rounds alternate a fresh process of each tree (the order
flips every round) timing one portable compress and one decompress of the same
image, so load and noise fall on both alike; prints the medians and their ratio
(new / old) and writes benchmarks/results/models_against_<REF>.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from licodec.models import create_model


def matmul_gflops(n: int = 2048, repeat: int = 5) -> float:
    """Sustained fp32 GEMM throughput of this machine (best of ``repeat``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def count_gflop(fn: Callable[[], Any]) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 1e9


class PeakRSS:
    """Peak resident memory during a block, sampled (ru_maxrss never decreases)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.005)

    def __enter__(self) -> PeakRSS:  # noqa: PYI034
        self.base = self._rss()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._rss())


def median_time(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench(name: str, size: tuple[int, int], repeat: int, gflops: float) -> dict[str, Any]:
    torch.manual_seed(0)
    model = create_model(name).eval()
    model.update(force=True)
    x = torch.rand(1, 3, *size)
    params = sum(p.numel() for p in model.parameters())
    # variable-rate models: their middle quality
    kw = {"rate": model.num_rates // 2} if getattr(model, "num_rates", 0) else {}
    with torch.no_grad():
        model(x, **kw)  # warm-up
    enc = model.compress(x, **kw)
    g_fwd = count_gflop(lambda: model(x, **kw))
    g_enc = count_gflop(lambda: model.compress(x, **kw))
    g_dec = count_gflop(lambda: model.decompress(enc["strings"], enc["shape"], enc["size"], **kw))
    with torch.no_grad():
        t_fwd = median_time(lambda: model(x, **kw), repeat)
    t_enc = median_time(lambda: model.compress(x, **kw), repeat)
    t_dec = median_time(
        lambda: model.decompress(enc["strings"], enc["shape"], enc["size"], **kw), repeat
    )
    gc.collect()
    with PeakRSS() as mem_enc:
        model.compress(x, **kw)
    with PeakRSS() as mem_dec:
        model.decompress(enc["strings"], enc["shape"], enc["size"], **kw)
    bound = (g_enc + g_dec) / gflops
    return {
        "model": name,
        "params_M": params / 1e6,
        "gflop_forward": g_fwd,
        "gflop_compress": g_enc,
        "gflop_decompress": g_dec,
        "forward_s": t_fwd,
        "compress_s": t_enc,
        "decompress_s": t_dec,
        "flop_bound_s": bound,
        "ratio_to_bound": (t_enc + t_dec) / bound,
        # Absolute process RSS (weights included): growth over the base is hidden
        # by the allocator reusing memory from the timed runs.
        "peak_rss_compress_MiB": mem_enc.peak / 2**20,
        "peak_rss_decompress_MiB": mem_dec.peak / 2**20,
    }


#: One timing in a fresh process of either tree: create, update, compress, decompress.
_TIMING = """
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[2]))
import licodec
torch.manual_seed(0)
m = licodec.create_model(sys.argv[1]).eval()
m.update(force=True)
kw = {"rate": 2} if getattr(m, "num_rates", 0) else {}
g = torch.Generator().manual_seed(1)
x = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 4 * int(sys.argv[3]), 4 * int(sys.argv[4]),
                                              generator=g), 4)
with torch.inference_mode():
    t0 = time.perf_counter(); enc = m.compress(x, portable=True, **kw)
    t1 = time.perf_counter(); m.decompress(enc["strings"], enc["shape"], enc["size"],
                                           portable=True, latent_crc=enc["latent_crc"], **kw)
    t2 = time.perf_counter()
print(json.dumps({"compress_s": t1 - t0, "decompress_s": t2 - t1}))
"""


def against(
    ref: str,
    models: list[str],
    size: tuple[int, int],
    repeat: int,
    threads: int,
    output: str | None,
) -> None:
    import os
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="licodec-ref-") as tmp:
        old = Path(tmp) / "old"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(old), ref], check=True
        )
        try:
            trees = {"new": ROOT / "src", "old": old / "src"}
            rows = []
            print(
                f"{'model':10} {'old enc':>8} {'new enc':>8} {'ratio':>6} "
                f"{'old dec':>8} {'new dec':>8} {'ratio':>6}"
            )
            for name in models:
                times: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
                for r in range(repeat):
                    for tree in ("old", "new") if r % 2 == 0 else ("new", "old"):
                        env = {**os.environ, "PYTHONPATH": str(trees[tree])}
                        proc = subprocess.run(
                            [sys.executable, "-c", _TIMING, name, str(threads), *map(str, size)],
                            capture_output=True,
                            text=True,
                            env=env,
                            check=False,
                        )
                        if proc.returncode != 0:
                            last = (proc.stderr.strip().splitlines() or ["?"])[-1]
                            raise SystemExit(f"{name} failed in the {tree} tree: {last}")
                        times[tree].append(json.loads(proc.stdout.strip().splitlines()[-1]))
                med = {
                    t: {
                        k: statistics.median(v[k] for v in times[t])
                        for k in ("compress_s", "decompress_s")
                    }
                    for t in times
                }
                row = {
                    "model": name,
                    "old": med["old"],
                    "new": med["new"],
                    "runs": times,
                    "compress_ratio": med["new"]["compress_s"] / med["old"]["compress_s"],
                    "decompress_ratio": med["new"]["decompress_s"] / med["old"]["decompress_s"],
                }
                rows.append(row)
                print(
                    f"{name:10} {med['old']['compress_s']:8.2f} {med['new']['compress_s']:8.2f} "
                    f"{row['compress_ratio']:6.3f} {med['old']['decompress_s']:8.2f} "
                    f"{med['new']['decompress_s']:8.2f} {row['decompress_ratio']:6.3f}",
                    flush=True,
                )
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=False
            )
    out = Path(output or ROOT / "benchmarks" / "results" / f"models_against_{ref}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "ref": ref,
                "size": list(size),
                "threads": threads,
                "repeat": repeat,
                "load_average": os.getloadavg(),
                "results": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["wacnn", "stf", "tcm-s", "tcm-l"])
    ap.add_argument("--size", nargs=2, type=int, default=(512, 768), metavar=("H", "W"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("-o", "--output", default=None)
    ap.add_argument("--against", metavar="REF", help="compare with git revision REF instead")
    args = ap.parse_args()
    if args.against:
        against(args.against, args.models, tuple(args.size), args.repeat, args.threads, args.output)
        return
    args.output = args.output or str(ROOT / "benchmarks" / "results" / "models.json")
    torch.set_num_threads(args.threads)
    gflops = matmul_gflops()
    print(
        f"fp32 matmul: {gflops:.0f} GFLOP/s, {args.threads} threads, input {args.size[0]}x{args.size[1]}"
    )
    rows = []
    header = (
        f"{'model':8} {'params':>8} {'GFLOP':>7} {'fwd s':>7} {'enc s':>7} {'dec s':>7} "
        f"{'bound s':>8} {'ratio':>6} {'enc RSS':>8} {'dec RSS':>8}"
    )
    print(header)
    for name in args.models:
        r = bench(name, tuple(args.size), args.repeat, gflops)
        rows.append(r)
        print(
            f"{name:8} {r['params_M']:7.2f}M {r['gflop_forward']:7.0f} {r['forward_s']:7.2f} "
            f"{r['compress_s']:7.2f} {r['decompress_s']:7.2f} {r['flop_bound_s']:8.2f} "
            f"{r['ratio_to_bound']:6.2f} {r['peak_rss_compress_MiB']:8.0f} {r['peak_rss_decompress_MiB']:8.0f}",
            flush=True,
        )
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "machine": {
                    "cpu": platform.processor() or platform.machine(),
                    "threads": args.threads,
                },
                "matmul_gflops": gflops,
                "size": list(args.size),
                "torch": torch.__version__,
                "results": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
