"""Command line: ``python -m eigarray info | demo | bench WHAT``.

``WHAT`` is one of lanczos, jacobi, randomized, matfuncs, layers.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any


def _version(name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return None


def cmd_info(args: argparse.Namespace) -> int:
    import numpy as np

    import eigarray

    print(f"eigarray {eigarray.__version__} on Python {platform.python_version()} "
          f"({platform.machine()}, {os.cpu_count()} CPUs)")
    print(f"numpy {np.__version__}")
    for name in ("array-api-compat", "array-api-extra", "numba", "scipy", "torch", "jax",
                 "array-api-strict", "dask", "cupy", "numba-cuda", "primme", "matplotlib"):
        v = _version(name)
        print(f"  {name:<18} {v if v else 'not installed'}")
    try:
        import numba

        @numba.njit(parallel=True)
        def _touch(n):
            s = 0
            for i in numba.prange(n):
                s += i
            return s

        _touch(10)
        print(f"numba threading layer: {numba.threading_layer()}, "
              f"threads: {numba.get_num_threads()} (set with numba.set_num_threads or "
              f"NUMBA_NUM_THREADS)")
    except ImportError:
        print("numba: not installed (the CSR and Jacobi kernels need it)")
    gpu = "none"
    try:
        import cupy

        n = cupy.cuda.runtime.getDeviceCount()
        if n:
            gpu = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode() + f" (x{n})"
    except Exception:
        pass
    print(f"GPU: {gpu}; CUDA simulator: {os.environ.get('NUMBA_ENABLE_CUDASIM', '0') == '1'}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import importlib.util

    import numpy as np

    if importlib.util.find_spec("scipy") is None:
        print("The demo needs scipy (the Laplacian is a scipy sparse matrix, and ARPACK is "
              "the peer): pip install -e '.[demo]'", file=sys.stderr)
        return 1

    import eigarray
    from eigarray.testing import laplacian_2d

    N, k = args.grid, args.k
    A, lam = laplacian_2d(N, N)
    exact = lam[-k:]
    print(f"Top {k} eigenpairs of the 2-D Dirichlet Laplacian on a {N} x {N} grid "
          f"(n = {A.shape[0]:,}, {A.nnz:,} nonzeros); its top eigenvalues come in pairs.")
    print("eigarray.eigsh, thick-restart Lanczos:")

    def progress(state: eigarray.LanczosState) -> None:
        worst = float(np.max(state.residual_estimates))
        bar = "#" * state.n_converged + "." * (k - state.n_converged)
        sys.stdout.write(f"\r  restart {state.n_iter:4d}  matvecs {state.n_matvec:6d}  "
                         f"converged [{bar}]  worst residual {worst:9.2e}")
        sys.stdout.flush()

    t0 = time.perf_counter()
    res = eigarray.eigsh(A, k=k, which="LA", tol=args.tol, rng=0, callback=progress)
    t_ours = time.perf_counter() - t0
    print()
    err_ours = float(np.max(np.abs(res.eigenvalues - exact) / exact))

    import scipy.sparse.linalg as sla

    t0 = time.perf_counter()
    w_arpack = np.sort(sla.eigsh(A, k=k, which="LA", tol=args.tol, return_eigenvectors=False))
    t_arpack = time.perf_counter() - t0
    err_arpack = float(np.max(np.abs(w_arpack - exact) / exact))
    from eigarray._bench import _Counting

    counter = _Counting(A)
    sla.eigsh(counter.op, k=k, which="LA", tol=args.tol, return_eigenvectors=False)

    print(f"\n{'solver':<34}{'time [s]':>9}{'matvecs':>9}{'max rel error':>15}")
    print(f"{'eigarray.eigsh':<34}{t_ours:9.2f}{res.info.n_matvec:9d}{err_ours:15.2e}")
    print(f"{'scipy.sparse.linalg.eigsh (ARPACK)':<34}{t_arpack:9.2f}{counter.count:9d}"
          f"{err_arpack:15.2e}")
    print(f"\n{'exact':>22}{'eigarray':>22}{'ARPACK':>22}")
    for e, a, b in zip(exact, res.eigenvalues, w_arpack, strict=True):
        print(f"{e:22.15f}{a:22.15f}{b:22.15f}")
    if err_arpack > max(1e-6, 10 * args.tol):
        print("ARPACK returned a wrong set: it missed second copies of double eigenvalues.")
    # eigenvalues to the accuracy asked for (``--tol``, and no tighter than 1e-10)
    ok = err_ours < max(1e-10, args.tol) and res.info.all_converged
    print(f"eigarray: every eigenvalue {'matches' if ok else 'DOES NOT match'} the analytic "
          f"spectrum; true residual norms <= {float(np.max(res.info.residual_norms)):.1e}.")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        hist = res.info.history
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.semilogy(hist["n_matvec"], hist["residual_estimates"], lw=1)
        ax.axhline(args.tol * float(np.max(np.abs(exact))), color="k", ls="--", lw=0.8)
        ax.set_xlabel("operator applications")
        ax.set_ylabel("Ritz residual estimate")
        ax.set_title(f"eigsh on the {N}x{N} Laplacian, k={k}")
        fig.tight_layout()
        path = os.path.abspath(args.plot)
        fig.savefig(path, dpi=120)
        print(f"convergence plot saved to {path}")
    except ImportError:
        print("(install matplotlib to get a convergence plot)")
    return 0 if ok else 1


def cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "lanczos":
        from eigarray._bench import lanczos_table

        lanczos_table(args.problems or None, repeats=args.repeats or 3, torch=not args.no_torch)
        return 0
    if args.what == "jacobi":
        from eigarray._bench_jacobi import gpu_available, run, run_gpu

        if not args.gpu_only:
            run(repeats=args.repeats or 5)
        if gpu_available():
            run_gpu(repeats=args.repeats or 5)
        elif args.gpu_only:
            print("bench jacobi --gpu-only: CuPy finds no GPU", file=sys.stderr)
            return 1
        return 0
    if args.what == "randomized":
        from eigarray._bench_randomized import run as run_randomized

        run_randomized(repeats=args.repeats or 3, dask=not args.no_dask,
                       in_memory=not args.dask_only)
        return 0
    if args.what == "matfuncs":
        from eigarray._bench_matfuncs import run as run_matfuncs

        run_matfuncs(repeats=args.repeats or 5)
        return 0
    if args.what == "layers":
        from eigarray._bench_layers import run as run_layers

        run_layers(repeats=args.repeats or 5)
        return 0
    print(f"unknown benchmark {args.what!r}", file=sys.stderr)
    return 2


def _at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}; got {value}")
        return value
    parse.__name__ = "int"                      # argparse names the type in its errors
    return parse


def _tolerance(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1); got {value}")
    return value


_tolerance.__name__ = "float"                   # argparse names the type in its errors


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eigarray", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions, backends, threads, GPU")
    demo = sub.add_parser("demo", help="top eigenpairs of a 2-D Laplacian, against ARPACK")
    demo.add_argument("--grid", type=_at_least(3), default=316,
                      help="grid side, >= 3 (default 316: ~100k rows)")
    demo.add_argument("-k", type=_at_least(1), default=6, help="number of eigenpairs (default 6)")
    demo.add_argument("--tol", type=_tolerance, default=1e-8,
                      help="requested accuracy, in [0, 1) (default 1e-8)")
    demo.add_argument("--plot", default="eigarray-demo-convergence.png")
    bench = sub.add_parser("bench", help="side-by-side benchmarks")
    bench.add_argument("what", choices=["lanczos", "jacobi", "randomized", "matfuncs", "layers"])
    bench.add_argument("--problems", nargs="*", choices=["aniso200", "aniso700", "square300"])
    bench.add_argument("--repeats", type=_at_least(1), default=None,
                       help="timed runs per figure (default: 5 for jacobi, matfuncs and "
                            "layers, else 3)")
    bench.add_argument("--no-torch", action="store_true", help="bench lanczos: skip torch input")
    dask = bench.add_mutually_exclusive_group()
    dask.add_argument("--no-dask", action="store_true", help="bench randomized: skip Dask rows")
    dask.add_argument("--dask-only", action="store_true",
                      help="bench randomized: only the Dask rows")
    bench.add_argument("--gpu-only", action="store_true",
                       help="bench jacobi: only the GPU table (CuPy and a CUDA device)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        try:
            return cmd_demo(args)
        except ValueError as exc:                 # e.g. -k not below the grid's n
            parser.error(str(exc))
    return {"info": cmd_info, "bench": cmd_bench}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
