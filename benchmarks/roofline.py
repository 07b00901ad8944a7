"""The machine's roofline, and every kernel of benchmarks/kernels.py placed on it (run by hand).

    python benchmarks/roofline.py                      # a minute or so; the plot in runs/roofline.png
    python benchmarks/roofline.py --plot PATH.png      # the plot elsewhere
    python benchmarks/roofline.py --quick              # small sizes, a smoke run

The roofline model (kernels/roofline.py): a kernel doing F FLOPs while moving B bytes has the
arithmetic intensity AI = F / B and can run at most min(peak, AI x bandwidth) FLOP/s here. Measured:

- peak float32 FLOP/s: a loop of vector FMAs in Numba on all its threads (the count of FMA
  instructions in its machine code, by register width, is printed: zmm/ymm are 512/256-bit vectors),
  and NumPy's sgemm at a few sizes on all BLAS threads and on one. The compute roof is the better of
  the two (a BLAS faster than the loop means the loop is not the machine's peak);
- memory bandwidth: STREAM's triad a = b + s c over three float32 arrays of 128 MiB (384 MiB in all,
  far beyond a last-level cache of tens of MiB), 12 bytes an element as STREAM counts them: the
  write-allocate read of a is not counted, so the memory moves up to 4/3 of it. The triad within the
  caches is printed and drawn (dashed) too: a kernel whose data stays in cache (the pools, the dense
  layer and Adam at these sizes) can pass the memory's roof, above 100%;
- each kernel (conv1 and conv2 forward, backward input and weight; the max-pools forward and backward;
  the dense layer forward and backward; the Adam update) at batch 128, timed by benchmarks/kernels.py's
  own measure_ours: its FLOPs and compulsory bytes (benchmarks/kernels.py's counts: inputs read once,
  outputs written once), AI, the bound that limits it and the share of that bound it reaches.

The environment's OpenBLAS setting is used as it is (benchmarks/kernels.py measures both settings).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numba  # noqa: E402
import numpy as np  # noqa: E402
import threadpoolctl  # noqa: E402

from benchmarks import kernels as kernel_benchmark  # noqa: E402
from train_step import OPENBLAS_VARIABLES, cpu_flags, cpu_model  # noqa: E402


def header():
    """The lines saying where the numbers come from: CPU, threads, versions, BLAS, OpenBLAS setting."""
    blas = [f"{i['internal_api']} {i.get('version')} {i.get('architecture')} ({Path(i['filepath']).name}, "
            f"{i['num_threads']} threads)" for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    seen = ", ".join(f"{k}={os.environ[k]}" if k in os.environ else f"{k} unset" for k in OPENBLAS_VARIABLES)
    return [f"CPU: {cpu_model()} ({os.cpu_count()} cores; {cpu_flags()})",
            f"numpy {np.__version__}, numba {numba.__version__}, numba threads {numba.get_num_threads()}; {seen}",
            "BLAS: " + ("; ".join(blas) or "none found by threadpoolctl")]


def machine_report(machine, roof, which):
    """The roofline's measurements, one line each."""
    fmas = ", ".join(f"{n} on {kind}" for kind, n in machine["fma_instructions"].items()) or "none"
    rows = [(f"FMA loop (Numba, {machine['threads']} threads)", f"{machine['fma'] / 1e9:8.1f} GFLOP/s",
             f"(FMA instructions in its machine code: {fmas})")]
    rows += [(f"sgemm {n}^3, {t} thread{'s' * (t > 1)}", f"{f / 1e9:8.1f} GFLOP/s", "")
             for n, t, f in machine["sgemm"]]
    rows += [(f"triad, 3 x {machine['dram_mib']} MiB", f"{machine['dram'] / 1e9:8.1f} GB/s",
              "(STREAM's count, write-allocate not counted)"),
             ("triad in cache, 3 x 64 KiB", f"{machine['cache'] / 1e9:8.1f} GB/s", "")]
    lines = [f"{label:32} {value:16} {note}".rstrip() for label, value, note in rows]
    lines.append(f"compute roof: {roof.peak / 1e9:.1f} GFLOP/s ({which}); memory roof: {roof.bandwidth / 1e9:.1f} "
                 f"GB/s; ridge: {roof.ridge:.2f} FLOP/byte")
    return lines


def last_level_cache(root=Path("/sys/devices/system/cpu/cpu0/cache")) -> int | None:
    """Bytes of the CPU's last-level data cache, from Linux's sysfs (None where it does not say)."""
    best = None
    for index in sorted(root.glob("index*")):
        try:
            level, kind, size = ((index / name).read_text().strip() for name in ("level", "type", "size"))
        except OSError:
            continue
        if kind in ("Data", "Unified") and level.isdigit() and size[:-1].isdigit() and size[-1:] in ("K", "M"):
            found = (int(level), int(size[:-1]) << (10 if size[-1] == "K" else 20))
            best = max(best, found) if best else found
    return best[1] if best else None


def table(roof, ours, batch, cache=None):
    """One row per kernel: its counts, its place on the roofline and the share of its bound; "in LLC" marks a
    memory-bound kernel whose bytes fit in the last-level cache of ``cache`` bytes (it may run from there,
    faster than the DRAM triad: above 100% of its bound)."""
    head = (f"{'kernel':30} {'MFLOP':>9} {'MB':>7} {'AI':>6} {'bound GFLOP/s':>14} {'ms':>8} {'GFLOP/s':>8} "
            f"{'GB/s':>7} {'in LLC':>6} {'of bound':>9}")
    rows = [head, "-" * len(head)]
    for case, ms in ours.items():
        flops, nbytes = kernel_benchmark.counts(batch)[case]
        ai, fraction, limit = kernel_benchmark.place(roof, case, ms, batch)
        bound = f"{roof.bound(ai) / 1e9:6.1f} {limit:>7}" if flops else f"{'-':>6} {limit:>7}"
        rate = f"{flops / ms / 1e6:8.1f}" if flops else f"{'-':>8}"
        fits = "yes" if cache and limit == "memory" and nbytes <= cache else "-"
        rows.append(f"{case:30} {flops / 1e6:9.2f} {nbytes / 1e6:7.2f} {ai:6.2f} {bound} {ms:8.3f} {rate} "
                    f"{nbytes / ms / 1e6:7.1f} {fits:>6} {100 * fraction:8.1f}%")
    return rows


def plot(roof, machine, ours, batch, path):
    """The roofline, the in-cache triad's slope and each kernel with FLOPs as a labelled point, to ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [(case.replace(" (34,826 params)", ""), *kernel_benchmark.counts(batch)[case], ms / 1e3)
              for case, ms in ours.items()]
    fig, ax = plt.subplots(figsize=(11, 6))
    roof.plot(ax, points, roofs=[("triad in cache", machine["cache"])])
    ax.set_title(f"Roofline of {cpu_model()}, {numba.get_num_threads()} threads: the Keras MNIST CNN's kernels "
                 f"at batch {batch}", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and batch 8 (a smoke run)")
    parser.add_argument("--plot", type=Path, default=REPO / "runs" / "roofline.png",
                        help="where the PNG goes (default runs/roofline.png, which git ignores)")
    args = parser.parse_args(argv)
    batch, repeat = (8, 2) if args.quick else (128, 7)
    machine = kernel_benchmark.measure_machine(args.quick, sgemm_sizes=(1024, 2048, 4096))
    roof, which = kernel_benchmark.roof_of(machine)
    ours = kernel_benchmark.measure_ours(batch, repeat, "cpu")
    print("\n".join(header()))
    print("\n".join(machine_report(machine, roof, which)))
    print(f"kernels at batch {batch}, float32 (bytes: compulsory traffic; of bound: achieved / min(peak, AI x "
          f"bandwidth); without FLOPs: GB/s / bandwidth)")
    cache = last_level_cache()
    print("\n".join(table(roof, ours, batch, cache)))
    if cache:
        print(f"in LLC: a memory-bound kernel whose bytes fit in the last-level cache ({cache >> 20} MiB): it may run\n"
              f"from there, faster than the triad beyond the cache (above 100% of its bound)")
    plot(roof, machine, ours, batch, args.plot)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
