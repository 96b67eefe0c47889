"""The reference: the benchmark experiment as a Lightning user writes it by hand.

One `self.log(name, value, on_step=True, on_epoch=True)` per value (the loss and the accuracy), and the learning
rate once per epoch; Lightning names the copies `train/loss_step` and `train/loss_epoch`. `LighterNames` is the
second reference: the same module logging lighter's names (`train/loss/step`, ...) with plain Lightning, which
takes two `self.log` calls per value and the momentum besides (`handwritten_names.py` runs it).

python benchmarks/handwritten.py digits-mlp --epochs 20 --timeline t.json --save-dir runs/bench
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from cases import parse_script_args
from torch import nn
from torch.utils.data import DataLoader
from torchmetrics import Accuracy
from workload import data, models
from workload.timing import TimingCallback


class Classifier(pl.LightningModule):
    LOSS_KEY = "train/loss_epoch"  # what the timing callback reports as the final loss

    def __init__(self, model: nn.Module, lr: float, num_classes: int):
        super().__init__()
        self.model = model
        self.criterion = nn.CrossEntropyLoss()
        self.accuracy = Accuracy(task="multiclass", num_classes=num_classes)
        self.lr = lr

    def training_step(self, batch, batch_idx):
        x, y = batch
        pred = self.model(x)
        loss = self.criterion(pred, y)
        self.accuracy(pred, y)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log("train/accuracy", self.accuracy, on_step=True, on_epoch=True)
        return loss

    def on_train_epoch_start(self):
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=False, on_epoch=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=self.lr)


class LighterNames(Classifier):
    """What a hand-written module needs to log lighter's names and values with plain Lightning."""

    LOSS_KEY = "train/loss/epoch"

    def training_step(self, batch, batch_idx):
        x, y = batch
        pred = self.model(x)
        loss = self.criterion(pred, y)
        self.log("train/loss/step", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=len(x))
        self.log("train/loss/epoch", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=len(x))
        self.accuracy(pred, y)
        self.log("train/metrics/accuracy/step", self.accuracy, on_step=True, on_epoch=False, batch_size=len(x))
        self.log("train/metrics/accuracy/epoch", self.accuracy, on_step=False, on_epoch=True, batch_size=len(x))
        return loss

    def on_train_epoch_start(self):
        group = self.trainer.optimizers[0].param_groups[0]
        self.log("train/optimizer/Adam/lr", float(group["lr"]), on_step=False, on_epoch=True)
        self.log("train/optimizer/Adam/momentum", float(group["betas"][0]), on_step=False, on_epoch=True)


def main(argv: list[str] | None = None, module: type[Classifier] = Classifier, name: str = "handwritten") -> None:
    args, case = parse_script_args(argv, __doc__)

    pl.seed_everything(case.seed, workers=True)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=args.epochs,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=pl.loggers.CSVLogger(args.save_dir, name=name),
        callbacks=[TimingCallback(args.timeline, loss_key=module.LOSS_KEY)],
    )
    classifier = module(getattr(models, case.model)(), case.lr, case.num_classes)
    loader = DataLoader(getattr(data, case.data)(), batch_size=case.batch_size, shuffle=True)
    trainer.fit(classifier, loader)


if __name__ == "__main__":
    main()
