"""``xpnet info MODEL``: what a person needs to trust a model file, read from its header (no code runs, no
network is built): architecture and activations, task, classes, feature names, label column, dtype, the backend
and device it was trained on, epochs and best scores, the xpnet version, and whether its checksums verify.
``--json`` prints the same as one JSON object. Exit code 1 when the file cannot be read or a checksum fails."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from ..errors import ModelFileError


def _checksums(path: str) -> dict[str, Any]:
    """Verify the tensors' and the metadata's SHA-256 (:func:`xpnet.files.read_model_file` checks both)."""
    from ..files import read_model_file
    from ..files.format import _METADATA_KEY, _open_checked, _read_header

    p, size = _open_checked(path)
    with open(p, "rb") as fh:
        raw, _ = _read_header(fh, size, p)
    file_meta = json.loads(raw.decode("utf-8")).get(_METADATA_KEY, {})
    out: dict[str, Any] = {"tensors_sha256": file_meta.get("sha256"),
                           "metadata_sha256": file_meta.get("meta_sha256")}
    try:
        read_model_file(path)
    except ModelFileError as exc:
        out.update(verified=False, problem=str(exc))
    else:
        out["verified"] = True
    return out


def describe(path: str) -> dict[str, Any]:
    """The facts about the model file at ``path`` as a JSON-able dict (what ``xpnet info --json`` prints)."""
    from ..files import read_metadata

    meta = read_metadata(path)
    net = meta.get("network") or {}
    params = meta.get("params") or {}
    fitted = meta.get("fitted") or {}
    data = meta.get("data") or {}
    history = meta.get("history") or {}
    kind = meta.get("kind")
    task = data.get("task") or {"DNNClassifier": "classification", "DNNRegressor": "regression"}.get(str(kind))
    features = fitted.get("feature_names_in") or data.get("feature_names")
    info: dict[str, Any] = {
        "file": os.fspath(path),
        "bytes": os.path.getsize(path),
        "kind": kind,
        "task": task,
        "layer_dims": net.get("layer_dims"),
        "hidden_activation": net.get("hidden"),
        "output_activation": net.get("output"),
        "init": net.get("init"),
        "dtype": net.get("dtype"),
        "n_features": meta.get("n_features_in") or (net.get("layer_dims") or [None])[0],
        "feature_names": list(features) if features else None,
        "label_column": data.get("label_column"),
        "classes": meta.get("classes"),
        "normalization": meta.get("normalization"),
        "trained_on": {"backend": history.get("backend") or meta.get("trained_on"), "device": history.get("device")},
        "training": {k: params.get(k) for k in ("solver", "learning_rate_init", "batch_size", "alpha", "dropout",
                                                "max_iter") if k in params} or None,
        "dataset": {k: data.get(k) for k in ("dataset", "test_fraction", "seed") if k in data} or None,
        # A checkpoint's history is the per-epoch lists and its epoch count sits at the top level.
        "epochs": next((e for e in (history.get("epochs"), meta.get("epoch"), net.get("n_iter")) if e is not None),
                       None),
        "scores": _scores(meta),
        "xpnet_version": meta.get("xpnet_version"),
        "format_version": meta.get("format_version"),
        "checksums": _checksums(path),
    }
    return info


def _scores(meta: dict[str, Any]) -> dict[str, Any] | None:
    history = meta.get("history") or {}
    fitted = meta.get("fitted") or {}
    name = history.get("metric_name", "metric")
    if isinstance(history.get("loss"), list):  # a checkpoint: per-epoch lists, the last entry is the final one
        history = {**history, **{f"final_{k}": history[src][-1] for k, src in (
            ("loss", "loss"), ("metric", "metric"), ("val_loss", "val_loss"), ("val_metric", "val_metric"))
            if history.get(src)}}
    scores = {
        "final_loss": history.get("final_loss"),
        f"final_{name}": history.get("final_metric"),
        "final_val_loss": history.get("final_val_loss"),
        f"final_val_{name}": history.get("final_val_metric"),
        "best_val_loss": history.get("best_val_loss"),
        "best_loss": fitted.get("best_loss"),
        f"best_val_{name}": fitted.get("best_validation_score"),
    }
    full = meta.get("history_full") or {}
    val = [(v, i) for i, v in enumerate(full.get("val_loss") or []) if isinstance(v, (int, float))]
    if val:  # the epoch early stopping on the validation loss keeps (xpnet train)
        scores["best_epoch"] = min(val)[1] + 1
    if not history and meta.get("costs"):
        scores["final_cost"] = meta["costs"][-1]
    scores = {k: v for k, v in scores.items() if v is not None}
    return scores or None


def _text(info: dict[str, Any]) -> str:
    def num(v: Any) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    lines = [f"{info['file']}: {info['kind']} ({info['task'] or 'network'}), {info['bytes']:,} bytes"]
    dims = info["layer_dims"] or []
    lines.append(f"  architecture   {'-'.join(map(str, dims))} ({len(dims) - 1} layers), hidden "
                 f"{info['hidden_activation']}, output {info['output_activation']}, init {info['init']}")
    lines.append(f"  dtype          {info['dtype']}")
    names = info["feature_names"]
    shown = "not recorded"
    if names:
        shown = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
    lines.append(f"  features       {info['n_features']}: {shown}")
    if info["label_column"] is not None:
        lines.append(f"  label column   {info['label_column']}")
    if info["classes"] is not None:
        c = info["classes"]
        lines.append(f"  classes        {len(c)}: {', '.join(map(str, c[:12]))}{', ...' if len(c) > 12 else ''}")
    if info["normalization"]:
        lines.append(f"  normalization  {info['normalization']}")
    where = info["trained_on"]
    lines.append(f"  trained on     {where['backend']}" + (f" ({where['device']})" if where.get("device") else ""))
    if info["training"]:
        lines.append("  training       " + ", ".join(f"{k} {v}" for k, v in info["training"].items()))
    if info["dataset"]:
        lines.append("  data           " + ", ".join(f"{k} {v}" for k, v in info["dataset"].items()))
    if info["epochs"] is not None:
        lines.append(f"  epochs         {info['epochs']}")
    scores = info["scores"] or {}
    for group in ("final", "best"):
        shown = [f"{k[len(group) + 1:]} {num(v)}" + ("" if group == "final" or k == "best_epoch" else
                                                      " (lowest)" if "loss" in k else " (highest)")
                 for k, v in scores.items() if k.startswith(group + "_")]
        if shown:
            lines.append(f"  {group:<15}" + ", ".join(shown))
    lines.append(f"  written by     xpnet {info['xpnet_version']} (file format {info['format_version']})")
    c = info["checksums"]
    if c["verified"]:
        what = "tensors and metadata" if c["metadata_sha256"] else "tensors (this older file has no metadata checksum)"
        lines.append(f"  checksums      verified: SHA-256 of the {what}")
    else:
        lines.append(f"  checksums      FAILED: {c['problem']}")
    return "\n".join(lines)


def _cmd_info(args: argparse.Namespace) -> int:
    info = describe(args.model)
    print(json.dumps(info, indent=1) if args.json else _text(info))
    return 0 if info["checksums"]["verified"] else 1
