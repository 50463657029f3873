"""scripts/gpu_check.sh, the GPU acceptance run, stays runnable against the package's current layout: its shell
parses, its embedded Python compiles, and every xpnet name it reaches into exists (the session-prepared script it
was adapted from broke when modules moved). Its checks themselves need a GPU (DRYRUN=1 runs them on the CPU)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.sh"


def _embedded(tag: str) -> str:
    text = SCRIPT.read_text()
    match = re.search(rf"<<'{tag}'\n(.*?)\n{tag}\n", text, re.S)
    assert match, f"no {tag} heredoc in {SCRIPT}"
    return match.group(1)


def test_the_shell_parses():
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_the_helper_reaches_only_names_that_exist():
    import xpnet.bench
    import xpnet.bench.peers
    import xpnet.device.auto

    helper = _embedded("XPNET_GPU_CHECK_PY")
    compile(helper, "xpnet_gpu_check.py", "exec")
    modules = {"peers": xpnet.bench.peers, "bench": xpnet.bench, "auto_rule": xpnet.device.auto}
    used = set(re.findall(r"\b(peers|bench|auto_rule)\.([A-Za-z_]\w*)", helper))
    assert used, "the helper uses no xpnet module names (the pattern is stale)"
    missing = [f"{mod}.{name}" for mod, name in sorted(used) if not hasattr(modules[mod], name)]
    assert not missing, f"scripts/gpu_check.sh uses names the package no longer has: {missing}"
    for module in set(re.findall(r"^\s*from (xpnet[\w.]*) import", helper, re.M)):
        __import__(module)


def test_the_summary_reads_a_kernels_result(tmp_path):
    summary = tmp_path / "summarize.py"
    summary.write_text(_embedded("XPNET_GPU_CHECK_SUMMARY"))
    row = {"section": "kernels", "step": "in-place", "data": {"tiny/gd": {
        "x_kernels": 33.0, "x_copies": 0.0, "x_gpu_busy_us": 40.0, "xpnet_us": 210.0, "torch_us": 90.0,
        "t_kernels": 12.0, "torch_graph_us": 20.0, "gemm_gflop": 1e-5}}}
    (tmp_path / "results.jsonl").write_text(json.dumps(row) + "\n")
    out = subprocess.run([sys.executable, str(summary), str(tmp_path)], check=True, capture_output=True,
                         text=True).stdout
    assert "auto's GPU constants from this run" in out
    assert "kernels/gd step 33.0, wall us/step 210.0" in out and "wall us per kernel 6.36" in out
