"""Batch prediction: probabilities for every clip of a dataset (validation, evaluation)."""
from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from ..data.dataset import ClipDataset, collate, to_device


@torch.no_grad()
def predict_dataset(model, dataset: ClipDataset, batch_size: int, device, num_workers: int = 0,
                    max_batches: int | None = None, progress: bool = False) -> dict[str, np.ndarray | None]:
    """Emotion (and gender) probabilities of every clip of ``dataset``, with the targets and the
    clips' indices, in dataset order; the model is left in the mode it was in."""
    was_training = model.training
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate,
                                         num_workers=num_workers)
    parts: dict[str, list] = {"probs": [], "gender_probs": [], "emotion": [], "gender": [], "index": []}
    for b, batch in enumerate(tqdm(loader, desc="predicting", unit="batch", leave=False, disable=not progress)):
        if max_batches is not None and b >= max_batches:
            break
        moved = to_device(batch, device)
        out = model(moved["wave"], moved["lengths"], **moved["inputs"])
        parts["probs"].append(torch.softmax(out.emotion_logits.float(), -1).cpu().numpy())
        if out.gender_logits is not None:
            parts["gender_probs"].append(torch.softmax(out.gender_logits.float(), -1).cpu().numpy())
        for key in ("emotion", "gender", "index"):
            parts[key].append(batch[key].numpy())
    model.train(was_training)
    return {key: np.concatenate(values) if values else None for key, values in parts.items()}
