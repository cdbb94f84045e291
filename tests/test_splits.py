"""Equal terms: one scoring split, the same for every method, that no step or choice reads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nasbench_suite.methods import list_methods

import nasbench_suite.training.loop as search_module
from nasbench_suite.data.datasets import Splits
from nasbench_suite.store.runfolder import RunFolder
from nasbench_suite.training.loop import prepare, run_search

#: settings that keep each method's tiny search tiny (its searches score architectures)
FAST_HP = {"padnas": {"population": 4, "generations": 1, "stages": 2}, "nse": {"samples": 2}}


def _indices(split) -> set[int]:  # type: ignore[no-untyped-def]
    return set(split.index.tolist())


@pytest.mark.parametrize("seed", [0, 3])
def test_the_scoring_split_is_disjoint_and_the_same_for_every_method(tiny_config,
                                                                     seed: int) -> None:
    scores = {}
    for method in list_methods():
        search = prepare(tiny_config(method=method, seed=seed, max_train_images=None, epochs=2,
                                     **FAST_HP.get(method, {})))
        splits = search.splits
        score, train = _indices(splits.score), _indices(splits.train)
        assert score and not score & train
        if splits.val is not None:
            val = _indices(splits.val)
            assert not score & val and not train & val
        # every split but test comes from the training images; test is its own array
        assert splits.test is search.data.test
        assert max(score | train) < len(search.data.train)
        assert len(score) == round(0.1 * len(search.data.train))
        scores[method] = sorted(score)
    assert len({tuple(s) for s in scores.values()}) == 1


def _poisoned(make):  # type: ignore[no-untyped-def]
    """make_splits whose scoring images are NaN: any step or choice that read them would
    change the search (NaN losses, NaN comparisons)."""

    def make_poisoned(*args, **kwargs) -> Splits:  # type: ignore[no-untyped-def]
        splits = make(*args, **kwargs)
        splits.score.x = torch.full_like(splits.score.x, float("nan"))
        return splits

    return make_poisoned


@pytest.mark.parametrize("method", list_methods())
def test_no_step_or_choice_reads_the_scoring_split(tiny_config, method: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    space = "relaxed" if method == "gold" else "restricted"
    cfg = tiny_config(method=method, space=space, epochs=2, score_every=1,
                      **FAST_HP.get(method, {}))
    clean = RunFolder(run_search(cfg, progress=False, log=lambda _: None))
    monkeypatch.setattr(search_module, "make_splits", _poisoned(search_module.make_splits))
    poisoned = RunFolder(run_search(cfg, progress=False, log=lambda _: None))
    assert poisoned.genotype() == clean.genotype()
    assert [a.weights for a in poisoned.arch()] == [a.weights for a in clean.arch()]
    assert [m["train_loss"] for m in poisoned.metrics()] == [
        m["train_loss"] for m in clean.metrics()]
    # ... while what is reported on the scoring split did see the poison
    import math

    assert math.isnan(poisoned.metrics()[-1]["supernet_raw_loss_score"])
    assert math.isfinite(clean.metrics()[-1]["supernet_raw_loss_score"])


def test_digits_are_scikit_learns_without_importing_it() -> None:
    """The digits come from the CSV scikit-learn ships, read without importing it (1.6 s
    per process), and equal ``load_digits()`` image for image."""
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    from nasbench_suite.data.datasets import _digits_arrays

    images, targets = _digits_arrays()
    digits = load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.float32
    assert np.array_equal(images, digits.images.astype(np.float32))
    assert np.array_equal(targets, digits.target)
    probe = ("import sys; from nasbench_suite.data.datasets import load_dataset; "
             "load_dataset('digits', None); print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
