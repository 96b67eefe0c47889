"""The floor: the benchmark experiment as a plain PyTorch loop, logging the same values to the same CSVLogger.

python benchmarks/plain.py digits-mlp --epochs 20 --timeline t.json --save-dir runs/bench
"""

from __future__ import annotations

import random

import numpy as np
import torch
from cases import parse_script_args
from pytorch_lightning.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader
from torchmetrics import Accuracy
from workload import data, models
from workload.timing import Timeline


def main(argv: list[str] | None = None) -> None:
    args, case = parse_script_args(argv, __doc__)

    # What pl.seed_everything does for a single process, so the model starts from the same weights.
    random.seed(case.seed)
    np.random.seed(case.seed)
    torch.manual_seed(case.seed)
    model = getattr(models, case.model)()
    loader = DataLoader(getattr(data, case.data)(), batch_size=case.batch_size, shuffle=True)
    criterion = nn.CrossEntropyLoss()
    accuracy = Accuracy(task="multiclass", num_classes=case.num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=case.lr)
    logger = CSVLogger(args.save_dir, name="plain")
    timeline = Timeline(args.timeline)
    timeline.start(model)

    step = 0
    epoch_loss = None
    for epoch in range(args.epochs):
        timeline.epoch_start()
        model.train()
        group = optimizer.param_groups[0]
        hyper = {
            "train/optimizer/Adam/lr": float(group["lr"]),
            "train/optimizer/Adam/momentum": float(group["betas"][0]),
        }
        loss_sum = torch.zeros(())
        seen = 0
        for x, y in loader:
            timeline.batch_start()
            pred = model(x)
            loss = criterion(pred, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            batch_accuracy = accuracy(pred, y)
            loss_sum += loss.detach() * len(x)
            seen += len(x)
            step += 1
            if step % case.log_every_n_steps == 0:
                values = {"train/loss/step": loss.item(), "train/metrics/accuracy/step": batch_accuracy.item()}
                logger.log_metrics({**values, "epoch": epoch}, step=step - 1)
                logger.save()
        epoch_loss = float(loss_sum / seen)
        values = {"train/loss/epoch": epoch_loss, "train/metrics/accuracy/epoch": float(accuracy.compute())}
        accuracy.reset()
        logger.log_metrics({**hyper, **values, "epoch": epoch}, step=step - 1)
        logger.save()
    timeline.finish(epoch_loss)


if __name__ == "__main__":
    main()
