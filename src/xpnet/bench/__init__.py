"""``xpnet bench``: time xpnet's training against PyTorch, a GEMM bound, a bare NumPy script and scikit-learn,
side by side in one run.

Two units of speed:

* a **step** (the default): forward, cost, backward, optimizer update on one prepared batch of ``b`` examples,
  for a dense network ``n_0 - n_1 - ... - n_L`` (ReLU hidden layers, a softmax / sigmoid / linear output fused
  with its loss), against PyTorch eager, the step's matrix products alone, a plain NumPy script and
  ``MLPClassifier.partial_fit``; after a one-step correctness check against PyTorch;
* a **whole fit** (``--fit``, :mod:`xpnet.bench.fit`): several epochs of shuffled mini-batches with their
  metrics (and validation), as users run it: ``DNNClassifier.fit`` and ``DNN.train`` against a plain PyTorch
  loop and ``MLPClassifier.fit``.

Rounds are interleaved (every candidate once per round, after warm-up and calibration); a candidate's time is
the median of its block times and every ratio is the median of per-round ratios (absolute times drift between
rounds on a shared machine, ratios within a round hold). Peak memory is measured in a fresh process.

The modules, one concern each: :mod:`~xpnet.bench.configs` (configurations, settings, the step's GEMMs, the
host data), :mod:`~xpnet.bench.peers` (the step candidates), :mod:`~xpnet.bench.correctness` (the one-step
check), :mod:`~xpnet.bench.timing` (calibration, rounds, medians), :mod:`~xpnet.bench.memory` (fresh-process
peak memory), :mod:`~xpnet.bench.environment` (versions, threads, machine load), :mod:`~xpnet.bench.report`
(the step tables), :mod:`~xpnet.bench.profiling` (``--profile``), :mod:`~xpnet.bench.fit` (``--fit``) and
:mod:`~xpnet.bench.command` (the runs and the command).

Nothing here imports an array library at ``import xpnet`` time: numpy, torch and scikit-learn are imported
inside the functions that need them.
"""

from __future__ import annotations

from .children import _memory_child
from .command import _json_safe, add_fit_arguments, end_to_end, run_bench, run_command
from .configs import (
    ADAM,
    CANDIDATES,
    CONFIGS,
    DEFAULT_LR,
    OUTPUTS,
    SCHEMA_VERSION,
    BenchConfig,
    BenchSettings,
    GemmProduct,
    Problem,
    custom_config,
    gemm_flops,
    gemm_plan,
    make_problem,
    parse_configs,
)
from .correctness import check_correctness
from .environment import _thread_limits, cpus_busy, environment_info
from .fit import (
    FIT_CANDIDATES,
    FitSettings,
    fit_ratios,
    format_fit_report,
    run_fit_bench,
    run_fit_config,
)
from .memory import measure_fit_memory, measure_memory
from .peers import (
    _BUILDERS,
    Candidate,
    SkippedCandidateError,
    _build_gemm,
    _sklearn_available,
    _torch_available,
    build_candidate,
    make_numpy_reference_step,
    skip_reason,
)
from .profiling import _instrumented, _OpRecorder, format_profile, profile_config, run_profile
from .report import format_config_report, format_end_to_end, format_header
from .timing import _median_ratio, run_config

__all__ = [
    "ADAM",
    "CANDIDATES",
    "CONFIGS",
    "DEFAULT_LR",
    "FIT_CANDIDATES",
    "OUTPUTS",
    "SCHEMA_VERSION",
    "BenchConfig",
    "BenchSettings",
    "Candidate",
    "FitSettings",
    "GemmProduct",
    "Problem",
    "SkippedCandidateError",
    "add_fit_arguments",
    "build_candidate",
    "check_correctness",
    "cpus_busy",
    "custom_config",
    "end_to_end",
    "environment_info",
    "fit_ratios",
    "format_config_report",
    "format_end_to_end",
    "format_fit_report",
    "format_header",
    "format_profile",
    "gemm_flops",
    "gemm_plan",
    "make_numpy_reference_step",
    "make_problem",
    "measure_fit_memory",
    "measure_memory",
    "parse_configs",
    "profile_config",
    "run_bench",
    "run_command",
    "run_config",
    "run_fit_bench",
    "run_fit_config",
    "run_profile",
    "skip_reason",
]

# Reached by name from outside the package: the memory child's command line (``xpnet.bench._memory_child``), the
# tests (``_BUILDERS``, ``_build_gemm``, ``_OpRecorder``, ``_instrumented``, ``_json_safe``, ``_torch_available``).
_PRIVATE_REEXPORTS = (_BUILDERS, _build_gemm, _instrumented, _json_safe, _median_ratio, _memory_child, _OpRecorder,
                      _sklearn_available, _thread_limits, _torch_available)
