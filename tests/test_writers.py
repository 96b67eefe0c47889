"""FileWriter and TableWriter: one output per predicted sample, named by identifier, in one or two processes."""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import yaml
from conftest import captured, run_cli, write_project, write_yaml
from monai.data import MetaTensor, list_data_collate
from PIL import Image
from torch.utils.data import DataLoader, DistributedSampler

from lighter import engine
from lighter.callbacks import FileWriter, SampleWriter, TableWriter
from lighter.callbacks.formats import write_image, write_nifti, write_tensor
from lighter.callbacks.samples import real_samples, split
from lighter.callbacks.writer import sample_name
from lighter.errors import ConfigError

N = 7  # odd on purpose: two processes cannot split it evenly

WRITING = '''
    """Samples whose values say which sample they are: sample i is a tensor full of (i + 1) / n."""

    import torch
    from torch import nn
    from torch.utils.data import Dataset


    class Samples(Dataset):
        def __init__(self, n=7, shape=(1, 4, 4), name="case-{i}", meta=False):
            self.n, self.shape, self.name, self.meta = n, tuple(shape), name, meta

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            x = torch.full(self.shape, (i + 1) / self.n)
            if self.meta:
                from monai.data import MetaTensor

                x = MetaTensor(x, affine=torch.diag(torch.tensor([i + 1.0, 2.0, 3.0, 1.0])))
            return {"image": x, "name": self.name.format(i=i)} if self.name else {"image": x}


    class Exploding(nn.Module):
        def forward(self, x):
            raise RuntimeError("the model ran")
'''


def value(i: int) -> float:
    return (i + 1) / N


def predict_config(
    tmp_path: Path,
    callbacks: list[dict[str, Any]],
    *,
    dataset: dict[str, Any] | None = None,
    named: bool = True,
    pred_transforms: Any = None,
    loader: dict[str, Any] | None = None,
    model: str = "torch.nn.Identity",
) -> Path:
    """A predict-only config: an Identity model over `Samples`, so each prediction is its input."""
    project = write_project(tmp_path)
    (project / "writing.py").write_text(textwrap.dedent(WRITING).lstrip())
    batch = {"_target_": "lighter.adapters.BatchAdapter", "input_accessor": "image"}
    if named:
        batch["identifier_accessor"] = "name"
    adapters: dict[str, Any] = {"batch": batch}
    if pred_transforms is not None:
        adapters["logging"] = {"_target_": "lighter.adapters.LoggingAdapter", "pred_transforms": pred_transforms}
    config = {
        "project": str(project),
        "seed": 0,
        "trainer": {
            "_target_": "pytorch_lightning.Trainer",
            "accelerator": "cpu",
            "devices": 1,
            "logger": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "callbacks": [{"_target_": "project.probe.Capture"}, *callbacks],
        },
        "system": {
            "_target_": "lighter.System",
            "model": {"_target_": model},
            "dataloaders": {
                "predict": {
                    "_target_": "torch.utils.data.DataLoader",
                    "dataset": {"_target_": "project.writing.Samples", "n": N, **(dataset or {})},
                    "batch_size": 3,
                    **(loader or {}),
                }
            },
            "adapters": {"predict": adapters},
        },
    }
    return write_yaml(tmp_path / "config.yaml", config)


def file_writer(path: Path, **kwargs: Any) -> dict[str, Any]:
    return {"_target_": "lighter.callbacks.FileWriter", "path": str(path), **kwargs}


def table_writer(path: Path, **kwargs: Any) -> dict[str, Any]:
    return {"_target_": "lighter.callbacks.TableWriter", "path": str(path), **kwargs}


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


# ---- FileWriter ---------------------------------------------------------------------------------------


def _load_pt(path: Path, i: int) -> None:
    saved = torch.load(path)
    assert type(saved) is torch.Tensor and saved.shape == (1, 4, 4)
    assert torch.allclose(saved, torch.full((1, 4, 4), value(i)))
    assert saved.untyped_storage().nbytes() == 16 * 4  # the sample, not the whole batch it was a view of


def _load_png(path: Path, i: int) -> None:

    pixels = np.asarray(Image.open(path))
    assert pixels.shape == (4, 4) and pixels.dtype == np.uint8
    assert (pixels == round(value(i) * 255)).all()


def _load_nifti(affine_scale: bool):
    def check(path: Path, i: int) -> None:

        image = nib.load(path)
        assert image.shape == (3, 3, 3)
        assert np.allclose(image.get_fdata(), value(i))
        expected = np.diag([i + 1.0, 2.0, 3.0, 1.0]) if affine_scale else np.eye(4)
        assert np.allclose(image.affine, expected)

    return check


def _load_text(path: Path, i: int) -> None:
    assert float(path.read_text()) == pytest.approx(value(i))


@pytest.mark.parametrize(
    ("writer", "dataset", "loader", "suffix", "check"),
    [
        pytest.param({"writer": "tensor"}, {}, {}, ".pt", _load_pt, id="tensor"),
        pytest.param({"writer": "image"}, {}, {}, ".png", _load_png, id="image-png"),
        pytest.param(
            {"writer": "nifti"},
            {"shape": [1, 3, 3, 3], "meta": True},
            {"_target_": "monai.data.DataLoader"},
            ".nii.gz",
            _load_nifti(affine_scale=True),
            id="nifti-keeps-metatensor-affine",
        ),
        *(
            pytest.param(
                {"writer": name}, {"shape": [1, 3, 3, 3]}, {}, ".nii.gz", _load_nifti(affine_scale=False), id=id_
            )
            for name, id_ in (("nifti", "nifti-plain"), ("itk_nifti", "itk-nifti-as-lighter-names-it"))
        ),
        pytest.param(
            {"writer": "$lambda t, p: p.write_text(str(float(t.mean())))", "suffix": ".txt"},
            {},
            {},
            ".txt",
            _load_text,
            id="callable-with-suffix",
        ),
        pytest.param(
            {"writer": "$lambda t, p: p.with_suffix('.txt').write_text(str(float(t.mean())))"},
            {},
            {},
            ".txt",
            _load_text,
            id="callable-picks-its-suffix",
        ),
    ],
)
def test_file_writer_writes_one_file_per_sample(tmp_path, writer, dataset, loader, suffix, check):
    out = tmp_path / "out"
    config = predict_config(tmp_path, [file_writer(out, **writer)], dataset=dataset, loader=loader)

    engine.call_stage("predict", [str(config)])

    assert sorted(p.name for p in out.iterdir()) == [f"case-{i}{suffix}" for i in range(N)]
    for i in range(N):
        check(out / f"case-{i}{suffix}", i)
    trainer, _ = captured("predict")
    assert trainer.predict_loop.predictions == []  # nothing piles up in Lightning's list


def test_file_writer_names_by_dataset_index_without_identifier(tmp_path):
    out = tmp_path / "out"
    config = predict_config(tmp_path, [file_writer(out)], named=False, loader={"shuffle": True})

    engine.call_stage("predict", [str(config)])

    # Shuffled batches, yet file i holds dataset sample i: names come from the sampler's indices.
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{i}.pt" for i in range(N))
    for i in range(N):
        assert torch.allclose(torch.load(out / f"{i}.pt"), torch.full((1, 4, 4), value(i)))


def test_file_writer_with_two_dataloaders_writes_a_folder_each(tmp_path):
    out = tmp_path / "out"
    config = predict_config(tmp_path, [file_writer(out)])
    data = yaml.safe_load(config.read_text())
    loader = data["system"]["dataloaders"]["predict"]
    data["system"]["dataloaders"]["predict"] = [loader, {**loader, "dataset": {**loader["dataset"], "n": 2}}]
    write_yaml(config, data)

    engine.call_stage("predict", [str(config)])

    assert sorted(p.name for p in (out / "dataloader_0").iterdir()) == [f"case-{i}.pt" for i in range(N)]
    assert sorted(p.name for p in (out / "dataloader_1").iterdir()) == ["case-0.pt", "case-1.pt"]


def test_file_writer_refuses_two_samples_with_one_name(tmp_path):
    config = predict_config(tmp_path, [file_writer(tmp_path / "out")], dataset={"name": "case"})

    with pytest.raises(ValueError, match="two samples are named 'case'.*identifier_accessor") as info:
        engine.call_stage("predict", [str(config)])
    assert "lighter: raised in trainer::callbacks::" in "".join(info.value.__notes__)  # the writer's key


@pytest.mark.parametrize(
    ("writer", "match"),
    [
        pytest.param("nifty", "Did you mean 'nifti'", id="typo"),
        pytest.param("tensors", "Did you mean 'tensor'", id="plural"),
        pytest.param("jpeg", r"writer='jpeg' is not a built-in writer. Give one of tensor, image, nifti", id="unknown"),
        pytest.param(3, "writer=3 is not a built-in writer", id="not-a-name"),
    ],
)
def test_file_writer_unknown_writer(tmp_path, writer, match):
    with pytest.raises(ValueError, match=match):
        FileWriter(tmp_path / "out", writer=writer)


# ---- the built-in formats ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("write", "sample", "error", "match"),
    [
        pytest.param(write_image, torch.zeros(2, 3, 4, 4), ValueError, r"2D images.*\(2, 3, 4, 4\)", id="image-4d"),
        pytest.param(write_image, torch.zeros(2, 4, 4), ValueError, r"2D images", id="image-2-channels"),
        pytest.param(
            write_image, torch.full((4, 4), 300), ValueError, "from 300 to 300, outside 0..255", id="image-int"
        ),
        pytest.param(write_image, {"a": torch.zeros(4, 4)}, TypeError, "needs a tensor per sample", id="image-dict"),
        pytest.param(write_nifti, torch.zeros(5), ValueError, r"2D or 3D images.*\(5,\)", id="nifti-1d"),
    ],
)
def test_format_errors(tmp_path, write, sample, error, match):
    with pytest.raises(error, match=match):
        write(sample, tmp_path / "x")


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        pytest.param(torch.tensor([[True, False]]), [[255, 0]], id="bool"),
        pytest.param(torch.tensor([[0.0, 0.5, 2.0]]), [[0, 128, 255]], id="float-clamped"),
        pytest.param(torch.tensor([[[0, 7], [255, 1]]]), [[0, 7], [255, 1]], id="int-one-channel"),
    ],
)
def test_image_writer_scales_values(tmp_path, sample, expected):

    write_image(sample, tmp_path / "x.png")
    assert np.asarray(Image.open(tmp_path / "x.png")).tolist() == expected


def test_tensor_writer_saves_any_object_loadable_without_monai(tmp_path):

    write_tensor({"mask": MetaTensor(torch.ones(2)), "score": 0.5}, tmp_path / "x.pt")
    loaded = torch.load(tmp_path / "x.pt")  # weights_only: a MetaTensor would not load
    assert type(loaded["mask"]) is torch.Tensor and loaded["score"] == 0.5


# ---- TableWriter -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("named", "pred_transforms", "loader", "expected"),
    [
        pytest.param(
            True,
            "$lambda x: x.mean(dim=(1, 2, 3))",
            {},
            lambda i: {"identifier": f"case-{i}", "pred": value(i)},
            id="scalar",
        ),
        pytest.param(
            True,
            "$lambda x: {'mean': x.mean(dim=(1, 2, 3)), 'double': 2 * x.amax(dim=(1, 2, 3))}",
            {},
            lambda i: {"identifier": f"case-{i}", "mean": value(i), "double": 2 * value(i)},
            id="dict-keys-become-columns",
        ),
        pytest.param(
            False,
            "$lambda x: x.mean(dim=(1, 2, 3))",
            {"shuffle": True},
            lambda i: {"identifier": i, "pred": value(i)},
            id="no-identifier-index-in-dataset-order",
        ),
        pytest.param(
            True,
            "$lambda x: x[:, 0, 0, :2]",
            {},
            lambda i: {"identifier": f"case-{i}", "pred": [value(i)] * 2},
            id="vector-as-list",
        ),
    ],
)
def test_table_writer_writes_one_row_per_sample(tmp_path, named, pred_transforms, loader, expected):
    out = tmp_path / "tables" / "predictions.csv"
    config = predict_config(tmp_path, [table_writer(out)], named=named, pred_transforms=pred_transforms, loader=loader)

    engine.call_stage("predict", [str(config)])

    rows = read_rows(out)
    assert len(rows) == N
    assert list(rows[0]) == list(expected(0))
    for i, row in enumerate(rows):
        for column, want in expected(i).items():
            got = yaml.safe_load(row[column])
            assert got == (pytest.approx(want) if not isinstance(want, str) else want), (i, column)


def test_table_writer_cells_from_a_callable(tmp_path):
    out = tmp_path / "t.csv"
    writer = "$lambda x: {'mean': float(x.mean()), 'shape': 'x'.join(map(str, x.shape))}"
    engine.call_stage("predict", [str(predict_config(tmp_path, [table_writer(out, writer=writer)]))])

    rows = read_rows(out)
    assert [float(r["mean"]) for r in rows] == pytest.approx([value(i) for i in range(N)])
    assert {r["shape"] for r in rows} == {"1x4x4"}


@pytest.mark.parametrize(
    ("writer", "match"),
    [
        pytest.param("tensr", r"writer='tensr' is not a built-in cell writer. Did you mean 'tensor'", id="typo"),
        pytest.param(["x"], r"writer=\['x'\] is not a built-in cell writer. Give one of tensor", id="list"),
    ],
)
def test_table_writer_unknown_writer(tmp_path, writer, match):
    with pytest.raises(ValueError, match=match):
        TableWriter(tmp_path / "t.csv", writer=writer)


def test_table_writer_refuses_a_pred_key_that_names_its_own_column(tmp_path):
    config = predict_config(
        tmp_path, [table_writer(tmp_path / "t.csv")], pred_transforms="$lambda x: {'identifier': x.mean(dim=(1, 2, 3))}"
    )
    with pytest.raises(ValueError, match=r"key\(s\) \['identifier'\].*rename them"):
        engine.call_stage("predict", [str(config)])


# ---- never overwrite -----------------------------------------------------------------------------------


def _occupied_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "old.pt").write_text("old")
    return folder


def _occupied_table(tmp_path: Path) -> Path:
    path = tmp_path / "out.csv"
    path.write_text("old")
    return path


@pytest.mark.parametrize(
    ("make", "writer"),
    [
        pytest.param(_occupied_folder, file_writer, id="file-writer-non-empty-folder"),
        pytest.param(_occupied_table, table_writer, id="table-writer-existing-file"),
    ],
)
def test_writers_refuse_existing_output_before_predicting(tmp_path, make, writer):
    path = make(tmp_path)
    # The model raises when called: the writer's error coming first shows nothing was predicted.
    config = predict_config(tmp_path, [writer(path)], model="project.writing.Exploding")

    with pytest.raises(ConfigError, match=f"{path} already holds .* unless asked") as err:
        engine.call_stage("predict", [str(config)])

    assert err.value.key == "trainer::callbacks"
    assert "overwrite: true" in err.value.suggestion
    assert (path / "old.pt" if path.is_dir() else path).read_text() == "old"


@pytest.mark.parametrize(
    ("make", "writer", "written"),
    [
        pytest.param(_occupied_folder, file_writer, lambda p: (p / "case-0.pt").is_file(), id="file-writer"),
        pytest.param(_occupied_table, table_writer, lambda p: len(read_rows(p)) == N, id="table-writer"),
    ],
)
def test_writers_overwrite_when_asked(tmp_path, make, writer, written):
    path = make(tmp_path)
    config = predict_config(tmp_path, [writer(path, overwrite=True)])

    engine.call_stage("predict", [str(config)])

    assert written(path)


def test_file_writer_accepts_an_existing_empty_folder(tmp_path):
    (tmp_path / "out").mkdir()
    engine.call_stage("predict", [str(predict_config(tmp_path, [file_writer(tmp_path / "out")]))])
    assert len(list((tmp_path / "out").iterdir())) == N


# ---- splitting a batch, naming a sample, a distributed sampler's padding --------------------------------


@pytest.mark.parametrize(
    ("value", "size", "expected"),
    [
        pytest.param(torch.arange(6).view(3, 2), 3, [[0, 1], [2, 3], [4, 5]], id="tensor-dim-0"),
        pytest.param(["a", "b"], 2, ["a", "b"], id="list"),
        pytest.param(
            {"p": torch.tensor([1, 2]), "n": ["x", "y"]},
            2,
            [{"p": 1, "n": "x"}, {"p": 2, "n": "y"}],
            id="dict-of-tensor-and-list",
        ),
        pytest.param(None, 2, [None, None], id="none"),
        pytest.param("only", 1, ["only"], id="scalar-batch-of-one"),
    ],
)
def test_split(value, size, expected):
    parts = split(value, size, "prediction")
    as_lists = [
        {k: v.tolist() if isinstance(v, torch.Tensor) else v for k, v in p.items()}
        if isinstance(p, dict)
        else (p.tolist() if isinstance(p, torch.Tensor) else p)
        for p in parts
    ]
    assert as_lists == expected


@pytest.mark.parametrize(
    ("value", "size", "match"),
    [
        pytest.param(torch.zeros(3, 2), 2, "holds 3 samples but the batch has 2", id="length"),
        pytest.param((torch.zeros(4, 2), torch.zeros(4)), 4, "holds 2 samples.*dict of batched", id="tuple-of-fields"),
        pytest.param(0.5, 2, "cannot split the prediction into 2 samples: it is a float", id="scalar"),
    ],
)
def test_split_errors(value, size, match):
    with pytest.raises(ValueError, match=match):
        split(value, size, "prediction")


def test_split_gives_each_metatensor_its_own_affine():

    batch = list_data_collate([{"x": MetaTensor(torch.zeros(1, 2), affine=torch.eye(4) * (i + 1))} for i in range(3)])
    parts = split(batch["x"], 3, "prediction")
    assert [float(p.affine[0, 0]) for p in parts] == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ("identifier", "index", "expected"),
    [
        pytest.param("case-1", 5, "case-1", id="str"),
        pytest.param(torch.tensor(12), 5, "12", id="tensor"),
        pytest.param(None, 5, "5", id="index"),
        pytest.param("site/case-1", 5, "site/case-1", id="subfolder"),
    ],
)
def test_sample_name(identifier, index, expected):
    assert sample_name(identifier, index) == expected


@pytest.mark.parametrize("identifier", ["", "/data/case-1", "../case-1"], ids=["empty", "absolute", "climbs"])
def test_sample_name_refuses_unsafe_identifiers(identifier):
    with pytest.raises(ValueError, match="cannot name an output file.*identifier_accessor"):
        sample_name(identifier, 0)


@pytest.mark.parametrize(
    ("n", "replicas", "rank", "drop_last", "expected"),
    [
        pytest.param(7, 2, 0, False, 4, id="7-on-2-rank0"),
        pytest.param(7, 2, 1, False, 3, id="7-on-2-rank1-padded"),
        pytest.param(7, 3, 2, False, 2, id="7-on-3-rank2-padded"),
        pytest.param(8, 2, 1, False, 4, id="even"),
        pytest.param(7, 2, 1, True, 3, id="drop-last"),
    ],
)
def test_real_samples_of_a_distributed_sampler(n, replicas, rank, drop_last, expected):

    data = list(range(n))
    sampler = DistributedSampler(data, num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
    assert real_samples(DataLoader(data, sampler=sampler)) == expected
    assert real_samples(DataLoader(data)) is None


@pytest.mark.parametrize(("rank", "expected"), [(0, [0, 2, 4, 6]), (1, [1, 3, 5])], ids=["rank0", "rank1-padded"])
def test_writers_drop_a_distributed_samplers_repeats(tmp_path, rank, expected):
    # One process posing as a rank of two: DistributedSampler gives rank 1 the samples 1, 3, 5 and then 0 again.
    sampler = {
        "_target_": "torch.utils.data.DistributedSampler",
        "dataset": "@system::dataloaders::predict::dataset",
        "num_replicas": 2,
        "rank": rank,
        "shuffle": False,
    }
    out, table = tmp_path / "out", tmp_path / "t.csv"
    config = predict_config(
        tmp_path,
        [file_writer(out), table_writer(table)],
        loader={"sampler": sampler, "batch_size": 2},
        pred_transforms="$lambda x: x.mean(dim=(1, 2, 3))",
    )

    engine.call_stage("predict", [str(config)])

    assert sorted(p.name for p in out.iterdir()) == sorted(f"case-{i}.pt" for i in expected)
    assert [row["identifier"] for row in read_rows(table)] == [f"case-{i}" for i in expected]


@pytest.mark.parametrize("cls", [FileWriter, TableWriter], ids=["file", "table"])
def test_writer_hooks_are_lightning_hooks(cls):
    # A misspelt hook would never be called; every hook-like method must exist on Lightning's Callback.

    hooks = [n for c in (cls, SampleWriter) for n in vars(c) if n.startswith("on_") or n in ("setup", "teardown")]
    assert hooks and all(callable(getattr(pl.Callback, name, None)) for name in hooks), hooks


# ---- the real CLI, in two processes --------------------------------------------------------------------


@pytest.mark.slow
def test_cli_two_process_ddp_writes_each_sample_once(tmp_path):
    # Writers given on the command line, two processes, 7 samples: rank 0 predicts 4 of them and rank 1 three.
    config = predict_config(tmp_path, [], loader={"batch_size": 2}, pred_transforms="$lambda x: x.mean(dim=(1, 2, 3))")
    out, table = tmp_path / "out", tmp_path / "table.csv"
    writers = yaml.safe_dump([file_writer(out), table_writer(table)], default_flow_style=True, width=1000).strip()
    ddp = ["trainer::strategy=ddp", "trainer::devices=2", "trainer::accelerator=cpu"]

    done = run_cli(["predict", str(config), f"trainer::callbacks={writers}", *ddp], tmp_path, timeout=300)

    assert done.returncode == 0, done.stderr[-3000:]
    assert "GLOBAL_RANK: 1" in done.stderr + done.stdout  # really two processes
    assert sorted(p.name for p in out.iterdir()) == sorted(f"case-{i}.pt" for i in range(N))
    rows = read_rows(table)
    assert [row["identifier"] for row in rows] == [f"case-{i}" for i in range(N)]
    for i, row in enumerate(rows):
        assert float(row["pred"]) == pytest.approx(value(i))
        assert torch.load(out / f"case-{i}.pt").item() == pytest.approx(value(i))
