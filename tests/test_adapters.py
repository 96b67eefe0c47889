"""The adapters on their own: every accessor and argument form, transforms, and the errors they raise."""

from __future__ import annotations

import pytest
import torch

from lighter.adapters import (
    BatchAccessError,
    BatchAdapter,
    CriterionAdapter,
    LoggingAdapter,
    MetricsAdapter,
    describe,
)

X = torch.arange(12.0).reshape(4, 3)
Y = torch.tensor([0, 1, 2, 1])
IDS = ["a", "b", "c", "d"]
TUPLE_BATCH = (X, Y, IDS)
DICT_BATCH = {"image": X, "label": Y, "name": IDS}


@pytest.mark.parametrize(
    ("batch", "accessors", "expected"),
    [
        pytest.param(TUPLE_BATCH, (0, 1, 2), (X, Y, IDS), id="int-index"),
        pytest.param(TUPLE_BATCH, (-3, -2, -1), (X, Y, IDS), id="negative-index"),
        pytest.param(DICT_BATCH, ("image", "label", "name"), (X, Y, IDS), id="str-key"),
        pytest.param(
            DICT_BATCH, (lambda b: b["image"] * 2, lambda b: b["label"], None), (X * 2, Y, None), id="callable"
        ),
        pytest.param(TUPLE_BATCH, (0, None, None), (X, None, None), id="none-gives-none"),
        pytest.param(X, (lambda b: b, None, None), (X, None, None), id="whole-batch"),
        pytest.param({0: X, "y": Y}, (0, "y", None), (X, Y, None), id="int-key-in-dict"),
    ],
)
def test_batch_adapter_accessors(batch, accessors, expected):
    input, target, identifier = BatchAdapter(*accessors)(batch)
    for got, want in zip((input, target, identifier), expected, strict=True):
        if isinstance(want, torch.Tensor):
            assert torch.equal(got, want)
        else:
            assert got == want


def test_batch_adapter_keeps_its_arguments():
    adapter = BatchAdapter(input_accessor="image", target_accessor=1, identifier_accessor=None)
    assert (adapter.input_accessor, adapter.target_accessor, adapter.identifier_accessor) == ("image", 1, None)


@pytest.mark.parametrize(
    ("batch", "accessors", "message"),
    [
        pytest.param(
            TUPLE_BATCH,
            ("image",),
            r"input_accessor='image' \(key\) does not fit the batch, which is a tuple of 3 "
            r"\(\[0\] Tensor\(shape=\(4, 3\), dtype=float32\), \[1\] Tensor\(shape=\(4,\), dtype=int64\), "
            r"\[2\] list of 4",
            id="key-on-tuple",
        ),
        pytest.param(
            DICT_BATCH,
            (0,),
            r"input_accessor=0 \(index\) does not fit the batch, which is a dict \{'image': Tensor\(shape=\(4, 3\)",
            id="index-on-dict",
        ),
        pytest.param(TUPLE_BATCH, (0, 5), r"target_accessor=5 \(index\).*tuple of 3", id="index-out-of-range"),
        pytest.param(
            DICT_BATCH, ("image", "label", "id"), r"identifier_accessor='id' \(key\).*'name'", id="missing-key"
        ),
        pytest.param(X, (0, "label"), r"target_accessor='label' \(key\).*Tensor\(shape=\(4, 3\)", id="key-on-tensor"),
    ],
)
def test_accessor_that_does_not_fit_shows_the_batch(batch, accessors, message):
    adapter = BatchAdapter(*accessors)
    with pytest.raises(BatchAccessError, match=message) as info:
        adapter(batch)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value.__cause__, (KeyError, IndexError, TypeError))
    assert "a str key for a dict batch" in str(info.value)


@pytest.mark.parametrize(
    "accessor",
    [pytest.param(1.5, id="float"), pytest.param(True, id="bool"), pytest.param([0], id="list")],
)
def test_batch_adapter_rejects_other_accessor_types(accessor):
    with pytest.raises(TypeError, match="must be an int index, a str key or a callable"):
        BatchAdapter(accessor)


def test_describe_shortens_long_and_deep_batches():
    assert describe(list(range(10))) == (
        "list of 10 ([0] int, [1] int, [2] int, [3] int, [4] int, [5] int, [6] int, [7] int, ...)"
    )
    assert describe({"a": [[X]]}) == "dict {'a': list of 1 ([0] list)}"


def _record(*args, **kwargs):
    return args, kwargs


PRED, TARGET, INPUT = "pred", "target", "input"


@pytest.mark.parametrize("adapter_class", [CriterionAdapter, MetricsAdapter], ids=["criterion", "metrics"])
@pytest.mark.parametrize(
    ("arguments", "args", "kwargs"),
    [
        pytest.param({}, (PRED, TARGET), {}, id="default-pred-target"),
        pytest.param({"pred_argument": 0, "target_argument": 1}, (PRED, TARGET), {}, id="pred0-target1"),
        pytest.param({"pred_argument": 1, "target_argument": 0}, (TARGET, PRED), {}, id="target0-pred1"),
        pytest.param({"pred_argument": 0}, (PRED,), {}, id="pred-only"),
        pytest.param({"target_argument": 0}, (TARGET,), {}, id="target-only"),
        pytest.param({"input_argument": 0}, (INPUT,), {}, id="input-only"),
        pytest.param(
            {"pred_argument": 0, "target_argument": 1, "input_argument": 2}, (PRED, TARGET, INPUT), {}, id="p0-t1-i2"
        ),
        pytest.param(
            {"pred_argument": 2, "target_argument": 0, "input_argument": 1}, (TARGET, INPUT, PRED), {}, id="t0-i1-p2"
        ),
        pytest.param(
            {"pred_argument": 1, "target_argument": 2, "input_argument": 0}, (INPUT, PRED, TARGET), {}, id="i0-p1-t2"
        ),
        pytest.param(
            {"pred_argument": "y_pred", "target_argument": "y"}, (), {"y_pred": PRED, "y": TARGET}, id="keywords"
        ),
        pytest.param({"pred_argument": 0, "target_argument": "y"}, (PRED,), {"y": TARGET}, id="position-and-keyword"),
        pytest.param(
            {"input_argument": "x", "pred_argument": 0, "target_argument": 1},
            (PRED, TARGET),
            {"x": INPUT},
            id="input-by-keyword",
        ),
    ],
)
def test_argument_forms(adapter_class, arguments, args, kwargs):
    assert adapter_class(**arguments)(_record, INPUT, TARGET, PRED) == (args, kwargs)


def _tag(tag):
    return lambda value: f"{tag}({value})"


@pytest.mark.parametrize("adapter_class", [CriterionAdapter, MetricsAdapter], ids=["criterion", "metrics"])
@pytest.mark.parametrize(
    ("transforms", "args"),
    [
        pytest.param({"pred_transforms": _tag("f")}, ("f(pred)", TARGET, INPUT), id="pred-one-callable"),
        pytest.param(
            {"pred_transforms": [_tag("f"), _tag("g")]}, ("g(f(pred))", TARGET, INPUT), id="pred-list-in-order"
        ),
        pytest.param({"target_transforms": (_tag("t"),)}, (PRED, "t(target)", INPUT), id="target-tuple-of-one"),
        pytest.param({"input_transforms": _tag("i")}, (PRED, TARGET, "i(input)"), id="input-one-callable"),
        pytest.param(
            {
                "input_transforms": [_tag("i")],
                "target_transforms": _tag("t"),
                "pred_transforms": [_tag("p"), _tag("q")],
            },
            ("q(p(pred))", "t(target)", "i(input)"),
            id="all-three",
        ),
        pytest.param({"pred_transforms": []}, (PRED, TARGET, INPUT), id="empty-list-is-identity"),
    ],
)
def test_argument_transforms(adapter_class, transforms, args):
    adapter = adapter_class(pred_argument=0, target_argument=1, input_argument=2, **transforms)
    assert adapter(_record, INPUT, TARGET, PRED) == (args, {})


def test_transforms_apply_to_tensors():
    adapter = MetricsAdapter(pred_argument="preds", target_argument="target", pred_transforms=torch.sigmoid)
    _, kwargs = adapter(_record, None, Y, torch.zeros(4))
    assert torch.equal(kwargs["preds"], torch.full((4,), 0.5))
    assert kwargs["target"] is Y


@pytest.mark.parametrize(
    ("transforms", "expected"),
    [
        pytest.param({}, (INPUT, TARGET, PRED), id="none"),
        pytest.param({"pred_transforms": _tag("p")}, (INPUT, TARGET, "p(pred)"), id="pred-one-callable"),
        pytest.param({"target_transforms": [_tag("a"), _tag("b")]}, (INPUT, "b(a(target))", PRED), id="target-list"),
        pytest.param(
            {"input_transforms": _tag("i"), "target_transforms": _tag("t"), "pred_transforms": [_tag("p")]},
            ("i(input)", "t(target)", "p(pred)"),
            id="all-three",
        ),
    ],
)
def test_logging_adapter_transforms(transforms, expected):
    assert LoggingAdapter(**transforms)(INPUT, TARGET, PRED) == expected


@pytest.mark.parametrize("adapter_class", [CriterionAdapter, MetricsAdapter], ids=["criterion", "metrics"])
@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        pytest.param(
            {"pred_argument": 0, "target_argument": 2}, ValueError, r"positions \[0, 2\] leave a gap", id="gap"
        ),
        pytest.param({"pred_argument": 1}, ValueError, r"positions \[1\] leave a gap", id="no-zero"),
        pytest.param(
            {"pred_argument": 0, "target_argument": 0}, ValueError, "two arguments share position 0", id="same-position"
        ),
        pytest.param(
            {"pred_argument": 0, "target_transforms": _tag("t")},
            ValueError,
            "has target_transforms but no target_argument",
            id="transform-without-argument",
        ),
        pytest.param(
            {"pred_argument": 0, "input_transforms": [_tag("i")]},
            ValueError,
            "has input_transforms but no input_argument",
            id="input-transform-without-argument",
        ),
        pytest.param(
            {"pred_argument": 0, "pred_transforms": "argmax"},
            TypeError,
            r"pred_transforms\[0\] is a str, not a callable.*_mode_: callable",
            id="non-callable-transform",
        ),
        pytest.param(
            {"pred_argument": 0, "pred_transforms": [_tag("p"), 3]},
            TypeError,
            r"pred_transforms\[1\] is a int, not a callable",
            id="non-callable-in-list",
        ),
        pytest.param({"pred_argument": 0.5}, TypeError, "must be a position", id="float-argument"),
        pytest.param({"pred_argument": True}, TypeError, "must be a position", id="bool-argument"),
    ],
)
def test_argument_adapter_errors(adapter_class, arguments, error, message):
    with pytest.raises(error, match=message) as info:
        adapter_class(**arguments)
    if error is ValueError:
        assert adapter_class.__name__ in str(info.value)


def test_logging_adapter_rejects_non_callable_transform():
    with pytest.raises(TypeError, match=r"input_transforms\[0\] is a dict, not a callable"):
        LoggingAdapter(input_transforms={"_target_": "torch.argmax"})
