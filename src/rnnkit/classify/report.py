"""What a run prints: the models side by side, then the LSTM's per-class scores and its
confusion matrix for each split (long ones are left to report.json and confusion.png)."""

from __future__ import annotations

from .scores import MODELS, TOP_K, confusion_array

PRINT_CLASSES_UP_TO = 30  # per-class lines
PRINT_CONFUSION_UP_TO = 10  # classes


def fmt_score(x: float | None) -> str:
    return f"{x:8.3f}" if x is not None else "     n/a"


def format_metrics(metrics: dict[str, dict[str, dict]], classes: list[str]) -> str:
    lines = _side_by_side(metrics, classes)
    for split, models in metrics.items():
        lines += ["", *_per_class(split, models["lstm"], classes)]
        lines += ["", *_confusion(split, models["lstm"], classes)]
    return "\n".join(lines)


def _side_by_side(metrics: dict[str, dict[str, dict]], classes: list[str]) -> list[str]:
    binary, many = len(classes) == 2, len(classes) > TOP_K
    extra = f" {'PR AUC':>8}" if binary else f" {'top-' + str(TOP_K):>8}" if many else ""
    header = f"{'split':<6} {'model':<22} {'accuracy':>8} {'macro F1':>8} {'wtd F1':>8} {'ROC AUC':>8}{extra}"
    lines = [header + f"   n{' (positive)' if binary else ''}"]
    for split, models in metrics.items():
        for name, m in models.items():
            more = " " + fmt_score(m["pr_auc"]) if binary else " " + fmt_score(m[f"top_{TOP_K}_accuracy"]) if many else ""
            count = f"{m['n']} ({m['positives']})" if binary else str(m["n"])
            lines.append(f"{split:<6} {MODELS[name]:<22} {fmt_score(m['accuracy'])} {fmt_score(m['macro_f1'])} "
                         f"{fmt_score(m['weighted_f1'])} {fmt_score(m['roc_auc'])}{more}   {count}")
    return lines


def _per_class(split: str, m: dict, classes: list[str]) -> list[str]:
    if len(classes) > PRINT_CLASSES_UP_TO:
        return [f"LSTM per-class precision / recall / support on {split}: {len(classes)} classes, in report.json"]
    width = max(8, *(len(c) for c in classes))
    lines = [f"LSTM per class on {split}:", f"{'class':<{width}} {'precision':>9} {'recall':>8} {'F1':>8} {'support':>8}"]
    for c in classes:
        s = m["per_class"][c]
        lines.append(f"{c:<{width}} {s['precision']:9.3f} {s['recall']:8.3f} {s['f1']:8.3f} {s['support']:8d}")
    return lines


def _confusion(split: str, m: dict, classes: list[str]) -> list[str]:
    if len(classes) > PRINT_CONFUSION_UP_TO:
        return [f"LSTM confusion matrix on {split}: {len(classes)} x {len(classes)}, in report.json and confusion.png"]
    matrix = confusion_array(m["confusion_matrix"], len(classes))
    width = max(8, *(len(c) + 5 for c in classes))
    what = f"positive = {classes[1]!r}" if len(classes) == 2 else "counts"
    lines = [f"LSTM confusion on {split} (rows: true class, columns: predicted; {what}):",
             " " * width + "".join(f"{'pred ' + k:>{width}}" for k in classes)]
    for i, c in enumerate(classes):
        lines.append(f"{'true ' + c:<{width}}" + "".join(f"{v:>{width}}" for v in matrix[i]))
    return lines
