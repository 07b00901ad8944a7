"""Trainings in threads side by side give the bits they give one after the other: no rule keeps state
between calls (conv2d's joint reverse rule), each training's seed is its own (``nn.utils.seeded``),
and the kernels' threading layer takes launches from several Python threads (TBB)."""
from __future__ import annotations

import concurrent.futures
import functools

import numpy as np
import pytest
from _requires import DEFAULT_LAYER  # tests/_requires.py

import autodiff as ad
import nn

pytestmark = pytest.mark.skipif(DEFAULT_LAYER != "tbb", reason="Numba's workqueue layer takes one launching thread")

X, Y = nn.load_digits()
DATA = (X[:160], Y[:160])


def small_cnn():
    return nn.Sequential([nn.Input((1, 8, 8)), nn.Conv2D(6, 3, padding="same", activation="relu"), nn.MaxPool2D(2),
                          nn.Conv2D(8, 3, activation="relu"), nn.Flatten(), nn.Dropout(0.25), nn.Dense(10)])


def train(seed, steps=12):
    """A plain loop: conv2d+ReLU, dropout and a shuffle that draw from nn's generator, Adam."""
    with nn.utils.seeded(seed):
        model = small_cnn()
        opt = nn.optim.Adam(model.parameters(), lr=0.01)
        x, y = DATA
        for _ in range(steps):
            batch = nn.utils.rng().permutation(len(x))[:32]
            opt.zero_grad()
            loss = nn.functional.softmax_cross_entropy(model(ad.Tensor(x[batch])), y[batch])
            loss.backward()
            opt.step()
        return [p.value.copy() for p in model.parameters()]


def _identical(a, b):
    assert len(a) == len(b)
    for p, q in zip(a, b):
        assert p.dtype == q.dtype and p.tobytes() == q.tobytes()


def test_two_trainings_in_a_thread_pool_give_the_sequential_bits():
    sequential = [train(1), train(2)]
    assert any(p.tobytes() != q.tobytes() for p, q in zip(*sequential))      # two seeds, two trainings
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        threaded = list(pool.map(train, [1, 2]))
    for s, t in zip(sequential, threaded):
        _identical(s, t)


def test_cross_validate_on_a_thread_pool_gives_the_sequential_models():
    build = functools.partial(small_cnn)
    options = dict(folds=2, seed=5, epochs=2, batch_size=32, lr=0.01)
    before = nn.utils.rng().bit_generator.state
    sequential = nn.cross_validate(build, DATA, **options)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        threaded = nn.cross_validate(build, DATA, executor=pool, **options)
    assert nn.utils.rng().bit_generator.state == before          # the caller's generator is left alone
    for s, t in zip(sequential.runs, threaded.runs):
        assert s.seed == t.seed
        _identical([s.state[k] for k in sorted(s.state)], [t.state[k] for k in sorted(t.state)])
