"""nk.train: channels-last training and map_runs (independent runs in worker processes)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import nucleikit as nk
from nucleikit import ki67


def _train(tmp_path, monkeypatch, *, channels_last, seed=0, name="t"):
    monkeypatch.setenv("NUCLEIKIT_CHECKPOINTS", str(tmp_path))
    data = ki67.make_ki67_set(2, (48, 48), mpp=1.0, d=5.0, rng=4)
    torch.manual_seed(seed)
    net = nk.models.KiNet(base_width=2, dropout=0.0)
    cfg = nk.train.TrainConfig(
        steps=3, lr=1e-2, optimizer="sgd", log_every=1, seed=seed, channels_last=channels_last
    )  # SGD: updates linear in the gradients (Adam would amplify rounding in near-zero gradients)
    hist = ki67.train_kinet(net, data, cfg, name=name, crop=32, batch_size=2, progress=False)
    return net, hist


def test_channels_last_trains_the_same_network_up_to_rounding(tmp_path, monkeypatch):
    plain, h_plain = _train(tmp_path, monkeypatch, channels_last=False)
    fast, h_fast = _train(tmp_path, monkeypatch, channels_last=True)
    assert fast.head.weight.is_contiguous(memory_format=torch.channels_last)
    assert not plain.head.weight.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(h_plain.logs["loss"], h_fast.logs["loss"], rtol=1e-4)
    for (name, a), b in zip(plain.state_dict().items(), fast.state_dict().values(), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-5, err_msg=name)
    # two cache entries (the flag is part of the key); loading converts the model again
    assert len(list(tmp_path.glob("t-*.pt"))) == 2
    again, h_again = _train(tmp_path, monkeypatch, channels_last=True)
    assert h_again.from_cache
    assert again.head.weight.is_contiguous(memory_format=torch.channels_last)


def _square_pid(x, offset=0):
    return x * x + offset, os.getpid()


def test_map_runs_keeps_the_order_and_equals_the_sequential_results():
    jobs = [{"x": x, "offset": 1} for x in range(7)]
    seq = nk.train.map_runs(_square_pid, jobs, workers=1)
    par = nk.train.map_runs(_square_pid, jobs, workers=2)
    assert [v for v, _ in seq] == [v for v, _ in par] == [x * x + 1 for x in range(7)]
    assert {p for _, p in seq} == {os.getpid()}
    if nk.train.can_fork():
        assert os.getpid() not in {p for _, p in par}  # the work happened in other processes
    assert nk.train.map_runs(_square_pid, [], workers=2) == []


def test_map_runs_takes_closures_and_unpicklable_arguments_and_returns_models():
    lock_like = (lambda: None,)  # not picklable: reaches the worker by fork

    def make(seed, unused):
        torch.manual_seed(seed)
        return torch.nn.Linear(2, 1)

    nets = nk.train.map_runs(
        make, [{"seed": 3, "unused": lock_like}, {"seed": 4, "unused": lock_like}], workers=2
    )
    torch.manual_seed(3)
    ref = torch.nn.Linear(2, 1)
    assert torch.equal(nets[0].weight, ref.weight)
    assert not torch.equal(nets[1].weight, ref.weight)


def _fail_on_two(x):
    if x == 2:
        raise FloatingPointError("job two failed")
    return x


def test_map_runs_reraises_a_failing_job_and_checks_its_arguments():
    for workers in (1, 2):
        with pytest.raises(FloatingPointError, match="job two failed"):
            nk.train.map_runs(_fail_on_two, [{"x": x} for x in range(4)], workers=workers)
    with pytest.raises(ValueError, match="workers: expected an integer >= 1, got 0"):
        nk.train.map_runs(_fail_on_two, [{"x": 1}], workers=0)
    with pytest.raises(ValueError, match=r"threads: expected an integer >= 1, got 1\.5"):
        nk.train.map_runs(_fail_on_two, [{"x": 1}], threads=1.5)
    with pytest.raises(ValueError, match=r"jobs\[1\]: expected a dict of keyword arguments, got int"):
        nk.train.map_runs(_fail_on_two, [{"x": 1}, 2])


def _die(x):
    if x == 1:
        os._exit(3)  # a worker killed (e.g. for memory): the call must fail, not hang
    return x


@pytest.mark.skipif(not nk.train.can_fork(), reason="needs fork")
def test_map_runs_fails_when_a_worker_dies():
    from concurrent.futures.process import BrokenProcessPool

    with pytest.raises(BrokenProcessPool):
        nk.train.map_runs(_die, [{"x": x} for x in range(3)], workers=2)
    assert nk.train.map_runs(_die, [{"x": 0}, {"x": 2}], workers=2) == [0, 2]  # usable again


# ---------------------------------------------------------------------------------------- step_flops
def test_step_flops_counts_a_convolution_and_a_linear_layer_by_hand():
    # forward 2 * C_in * C_out * k^2 * H * W * B, and the same again for the weight gradient (the input
    # needs no gradient)
    conv = 2 * 3 * 8 * 9 * 16 * 16 * 2
    assert nk.train.step_flops(lambda: torch.nn.Conv2d(3, 8, 3, padding=1), (2, 3, 16, 16)) == 2 * conv
    # a layer with 10^10 weights (40 GB in float32): counted on the meta device, nothing is allocated
    assert (
        nk.train.step_flops(lambda: torch.nn.Linear(100_000, 100_000, bias=False), (1, 100_000)) == 4 * 10**10
    )


def test_step_flops_scales_with_width_and_input_area():
    base = nk.train.step_flops(lambda: nk.models.KiNet(base_width=8), (2, 3, 64, 64))
    wide = nk.train.step_flops(lambda: nk.models.KiNet(base_width=16), (2, 3, 64, 64))
    big = nk.train.step_flops(lambda: nk.models.KiNet(base_width=8), (2, 3, 128, 128))
    assert 3.5 < wide / base < 4.1  # convolutions dominate: channels in x channels out
    assert 3.9 < big / base < 4.1
    no_roi = nk.train.step_flops(lambda: nk.models.KiNet(base_width=8, roi_branch=False), (2, 3, 64, 64))
    assert no_roi < base


def test_step_flops_rejects_bad_arguments():
    with pytest.raises(ValueError, match="input_shape"):
        nk.train.step_flops(lambda: torch.nn.Conv2d(3, 8, 3), (0, 3, 16, 16))
    with pytest.raises(ValueError, match="input_shape"):
        nk.train.step_flops(lambda: torch.nn.Conv2d(3, 8, 3), "2x3x16x16")
    with pytest.raises(TypeError, match="build"):
        nk.train.step_flops(torch.nn.Conv2d(3, 8, 3), (2, 3, 16, 16))
    with pytest.raises(TypeError, match=r"torch\.nn\.Module, got int"):
        nk.train.step_flops(lambda: 3, (2, 3, 16, 16))
