"""The error-analysis report (``report.md``) and the tables behind it."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.corpora import ravdess
from .metrics import classification_metrics
from .predictions import Predictions


#: Clip-table columns the report breaks accuracy down by, where the data have them.
BREAKDOWNS = ("corpus", "intensity", "gender", "statement", "speaker")


def breakdown(pred: Predictions, by: str) -> pd.DataFrame:
    """Clips, accuracy and UAR per value of a clip-table column (corpus, intensity, gender, speaker, ...)."""
    rows = []
    for value, idx in pred.clips.groupby(by).indices.items():
        m = classification_metrics(pred.y_true[idx], pred.y_pred[idx], len(pred.labels))
        rows.append({by: value, "clips": len(idx), "accuracy": m["accuracy"], "uar": m["uar"]})
    return pd.DataFrame(rows)


def confused_pairs(matrix: np.ndarray, labels: list[str], top: int = 5) -> pd.DataFrame:
    """The ``top`` largest off-diagonal cells: true -> predicted, count, share of the true class."""
    rows = []
    for i in range(len(labels)):
        for j in range(len(labels)):
            if i != j and matrix[i, j]:
                rows.append({"true": labels[i], "predicted": labels[j], "count": int(matrix[i, j]),
                             "share_of_true": matrix[i, j] / matrix[i].sum()})
    frame = pd.DataFrame(rows, columns=["true", "predicted", "count", "share_of_true"])
    return frame.sort_values(["count", "share_of_true"], ascending=False).head(top).reset_index(drop=True)


def confident_mistakes(pred: Predictions, top: int = 10) -> pd.DataFrame:
    """Wrong predictions with the highest confidence, with their files."""
    table = pred.table()
    wrong = table[~table["correct"]].sort_values("confidence", ascending=False).head(top)
    return wrong[["file", "path", "speaker", "emotion", "predicted", "confidence", "p_true"]].reset_index(drop=True)


def _fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _md_table(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    for i in range(len(frame)):
        lines.append("| " + " | ".join(_fmt(frame[c].iloc[i]) for c in cols) + " |")
    return "\n".join(lines)


def _models(model_path: str | list[str]) -> str:
    """The evaluated checkpoint, or an ensemble's, as the report names them."""
    if isinstance(model_path, str):
        return f"`{model_path}`"
    return f"an ensemble of {len(model_path)} models ({', '.join(f'`{p}`' for p in model_path)})"


def _headline(metrics: dict, labels: list[str], title: str) -> list[str]:
    """The report's title, what was evaluated (and whether it is speaker-independent), the headline table."""
    speakers = _speaker_list(metrics["speakers"])
    leaked = metrics.get("leaked_speakers") or []
    kind = "Speaker-independent evaluation" if not leaked else "Evaluation (**not speaker-independent**)"
    lines = [
        f"# {title}",
        "",
        f"{kind} of {_models(metrics['model_path'])} on speakers {speakers} "
        f"({metrics['n_clips']} clips, {len(labels)} classes: {', '.join(labels)}), "
        f"data {', '.join(f'`{d}`' for d in metrics['datasets'])}.",
        "",
    ]
    if leaked:
        lines += [f"> **Warning.** Speakers {', '.join(leaked)} were used to train the model or to choose its "
                  f"epoch: their scores measure how well it knows these voices, not how it does on a new "
                  f"speaker, and overstate its accuracy.", ""]
    lines += _left_out(metrics.get("left_out") or {})
    lines += [
        "## Headline",
        "",
        "| metric | value |",
        "| --- | --- |",
        f"| accuracy (WA) | {_fmt(metrics['accuracy'])} |",
        f"| UAR | {_fmt(metrics['uar'])} |",
        f"| macro-F1 | {_fmt(metrics['macro_f1'])} |",
        f"| ROC AUC (macro, one vs rest) | {_fmt(metrics['roc_auc_macro'])} |",
        f"| expected calibration error | {_fmt(metrics['ece'])} |",
        f"| clips | {metrics['n_clips']} |",
        "",
    ]
    return lines + _protocols(metrics)


def _speaker_list(speakers: list[str]) -> str:
    """``ravdess:01-04`` style for a run of numbered speakers of one corpus, else the ids."""
    corpora = {s.split(":", 1)[0] for s in speakers}
    locals_ = [s.split(":", 1)[1] for s in speakers]
    if len(corpora) == 1 and len(speakers) > 2 and all(x.isdigit() for x in locals_):
        numbers = sorted(int(x) for x in locals_)
        if numbers == list(range(numbers[0], numbers[-1] + 1)):
            return f"{next(iter(corpora))}:{locals_[0]}-{locals_[-1]}"
    return ", ".join(speakers)


def _left_out(left_out: dict) -> list[str]:
    """What a cross-corpus evaluation could not score: model classes the data lack, clips of other emotions."""
    lines = []
    if left_out.get("model_classes_without_clips"):
        lines.append(f"The model's classes {', '.join(left_out['model_classes_without_clips'])} have no clips in "
                     f"these data: scores are over the classes both share, the model's probabilities renormalised "
                     f"over them.")
    if left_out.get("clips_of_other_emotions"):
        counts = ", ".join(f"{n} {e}" for e, n in left_out["clips_of_other_emotions"].items())
        lines.append(f"Clips of emotions the model does not know are left out: {counts}.")
    return lines + [""] if lines else []


def _protocols(metrics: dict) -> list[str]:
    """The speaker-statistics protocols of a speaker-normalised model, side by side."""
    protocols = metrics.get("protocols") or {}
    if len(protocols) < 2:
        return []
    table = pd.DataFrame([{"speaker statistics": v["description"], **{k: x for k, x in v.items() if k != "description"}}
                          for v in protocols.values()])
    return ["## Speaker statistics", "", f"The headline uses `--adapt {metrics['adapt']}`.", "", _md_table(table), ""]


def render_report(metrics: dict, pred: Predictions, title: str) -> str:
    """The Markdown error-analysis report."""
    labels = pred.labels
    lines = _headline(metrics, labels, title)
    if metrics["classes_without_test_clips"]:
        lines += [f"No test clips for: {', '.join(metrics['classes_without_test_clips'])} (their recall, F1 "
                  f"and AUC are n/a and they are left out of UAR and macro-F1).", ""]
    lines += [
        "## Figures", "",
        "![confusion matrix](confusion_matrix.png)", "",
        "![ROC curves](roc.png) ![per-class scores](per_class.png) ![reliability diagram](reliability.png)", "",
        "## Per class", "",
    ]
    per = pd.DataFrame([{"emotion": label, **{k: metrics["per_class"][label][k]
                                              for k in ("precision", "recall", "f1", "roc_auc", "support")}}
                        for label in labels])
    lines += [_md_table(per), ""]
    for by in BREAKDOWNS:
        if by not in pred.clips or pred.clips[by].isna().all() or (by == "corpus" and pred.clips[by].nunique() < 2):
            continue
        table = breakdown(pred, by)
        if by == "statement" and set(pred.clips["corpus"]) <= {"ravdess", "synthetic"}:
            table["statement"] = table["statement"].map(lambda s: f"{int(s):02d} {ravdess.STATEMENTS[int(s)]}")
        lines += [f"## Accuracy by {by}", "", _md_table(table), ""]
    pairs = confused_pairs(np.asarray(metrics["confusion_matrix"]), labels)
    lines += ["## Most confused pairs", "", "True emotion -> predicted emotion, with the share of the true "
              "class's clips that went there.", "", _md_table(pairs) if len(pairs) else "No confusions.", ""]
    mistakes = confident_mistakes(pred)
    lines += ["## Most confident mistakes", "", "Listen to these first: they show what the model is sure "
              "about and wrong.", "",
              _md_table(mistakes.drop(columns=["path"]).rename(columns={"emotion": "true", "p_true": "p(true)"}))
              if len(mistakes) else "No mistakes.", ""]
    if pred.failures:
        lines += ["## Files that could not be loaded", "", "They are not in any number above.", ""]
        lines += [f"- `{path}`: {reason}" for path, reason in pred.failures]
        lines.append("")
    return "\n".join(lines)


def render_fold_summary(summary: dict, run_dir, metrics) -> str:
    """``summary.md`` of a K-fold evaluation: the per-fold table with mean ± std, and the pooled scores."""
    table = pd.DataFrame(summary["per_fold"])
    table["test_speakers"] = table["test_speakers"].map(_speaker_list)
    mean_row = {"split": "mean ± std", "test_speakers": "", "clips": int(table["clips"].sum()),
                **{k: f"{summary[k]['mean']:.4f} ± {summary[k]['std']:.4f}" for k in metrics}}
    pooled = summary["pooled"]
    folds = list(table["split"])
    return "\n".join([
        "# K-fold evaluation summary", "",
        f"{summary['folds']} speaker-independent folds of `{run_dir}`, each model tested on its own held-out speakers.",
        "", _md_table(pd.concat([table, pd.DataFrame([mean_row])], ignore_index=True)), "",
        f"Pooled over folds (every speaker tested once): UAR {pooled['uar']:.4f}, accuracy "
        f"{pooled['accuracy']:.4f}, macro-F1 {pooled['macro_f1']:.4f}; [full report](pooled/report.md).", "",
        "![pooled confusion matrix](pooled/confusion_matrix.png)", "",
        "Per-fold reports: " + ", ".join(f"[{name}](../{name}/evaluation/report.md)" for name in folds), ""])
