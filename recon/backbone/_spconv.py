"""The one import site of spconv, with the three shims its CPU path needs.

1. spconv 2.x asks ``torch.cuda.current_stream()`` for a stream handle in every op, forward
   and backward, even for CPU tensors; a CPU-only torch raises there. Its CPU kernels ignore
   the stream, so on machines without CUDA we hand them the null stream (0).
2. Its CPU kernels race when run on several OpenMP threads: the same layer on the same input
   returned outputs differing by ~0.1 between two calls with 2 threads, and identical ones
   with 1 (spconv 2.3.8). Every op in ``spconv.pytorch.ops`` therefore runs single-threaded
   when it is given CPU tensors; CUDA tensors are untouched.
3. A CUDA build gives its convolutions an algorithm for CUDA only; CPU tensors run the native
   one (`_native_on_cpu`).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging

import torch

from ...data.errors import VoxsplatError

_SPCONV = None


def spconv():
    """``spconv.pytorch``, imported on first use (with the CPU shim applied)."""
    global _SPCONV
    if _SPCONV is None:
        try:
            sp = importlib.import_module("spconv.pytorch")
        except ImportError as e:  # pragma: no cover - depends on the machine
            raise VoxsplatError(
                "the voxel model needs spconv: pip install spconv (CPU) or spconv-cu126 "
                f"(CUDA 12.x); import failed: {e}") from e
        if not torch.cuda.is_available():
            _apply_cpu_shim()
        _single_threaded_cpu_ops(importlib.import_module("spconv.pytorch.ops"))
        _native_on_cpu(importlib.import_module("spconv.pytorch.conv").SparseConvolution)
        # spconv asks torch.fx.is_fx_tracing(), which logs a deprecation note meant for
        # torch.export's users once per process: not ours to show
        logging.getLogger("torch.fx._symbolic_trace").setLevel(logging.ERROR)
        _SPCONV = sp
    return _SPCONV


def cuda_build_available() -> bool:
    """Whether an spconv build with CUDA kernels is installed (a CPU-only build, e.g. the
    `spconv` wheel on a GPU machine, cannot run the voxel model on CUDA tensors)."""
    if importlib.util.find_spec("spconv") is None:
        return False
    try:
        return not importlib.import_module("spconv.cppconstants").CPU_ONLY_BUILD
    except Exception:  # pragma: no cover - a broken install counts as none
        return False


def _null_stream() -> int:
    return 0


def _apply_cpu_shim() -> None:
    """Point every module-level alias of spconv's ``get_current_stream`` at the null stream."""
    for name in ("spconv.pytorch.cppcore", "spconv.pytorch.ops", "spconv.pytorch.hash"):
        mod = importlib.import_module(name)
        if hasattr(mod, "get_current_stream"):
            mod.get_current_stream = _null_stream


def _has_cpu_tensor(args, kwargs) -> bool:
    return any(isinstance(a, torch.Tensor) and a.device.type == "cpu"
               for a in (*args, *kwargs.values()))


def _single_threaded(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        n = torch.get_num_threads()
        if n == 1 or not _has_cpu_tensor(args, kwargs):
            return fn(*args, **kwargs)
        torch.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(n)
    wrapper._voxsplat_single_threaded = True
    return wrapper


def _native_on_cpu(conv_class) -> None:
    """Have spconv's convolutions run CPU tensors with the native algorithm: a CUDA build
    gives each layer the implicit-GEMM one, which fails on CPU tensors ("implicit gemm only
    support cuda"), so `--device cpu` on a GPU machine could not train the voxel model. The
    weights keep one layout for every algorithm (spconv's ALL_WEIGHT_IS_KRSC)."""
    if getattr(conv_class.forward, "_voxsplat_native_on_cpu", False):
        return
    from spconv.core import ConvAlgo
    forward = conv_class.forward

    @functools.wraps(forward)
    def wrapper(self, input, *args, **kwargs):
        if self.algo == ConvAlgo.Native or input.features.device.type != "cpu":
            return forward(self, input, *args, **kwargs)
        algo, self.algo = self.algo, ConvAlgo.Native
        try:
            return forward(self, input, *args, **kwargs)
        finally:
            self.algo = algo
    wrapper._voxsplat_native_on_cpu = True
    conv_class.forward = wrapper


def _single_threaded_cpu_ops(ops) -> None:
    """Wrap the public functions of ``spconv.pytorch.ops`` (used by its conv layers and
    autograd functions through the module) to run on one thread for CPU tensors."""
    for name, fn in list(vars(ops).items()):
        if (callable(fn) and not isinstance(fn, type) and not name.startswith("_")
                and getattr(fn, "__module__", "") == ops.__name__
                and not getattr(fn, "_voxsplat_single_threaded", False)):
            setattr(ops, name, _single_threaded(fn))
