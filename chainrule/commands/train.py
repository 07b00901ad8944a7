"""The nn subcommand: ``chainrule train``, the main job.

``chainrule train --model digits-cnn --dataset digits --epochs 10 --optimizer adam`` trains a model
from ``nn.models`` (``--dataset mnist --data-dir PATH`` for MNIST IDX files), printing the summary,
the progress and the final test accuracy, and saves the model (``model.safetensors``: weights and
architecture in one file, written atomically) and a loss/accuracy plot (``.svg``) in ``--output``
(default ``runs/<model>``).

The choices are the registries' names: ``nn.models.MODELS``, ``nn.datasets.DATASETS``,
``nn.optim.OPTIMIZERS`` and ``kernels.BACKENDS``; a model added to ``MODELS`` is a ``--model``.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path

import kernels
import nn
from nn.plot import save_history_svg


def _shipped(name, data_dir, seed, out, title):
    """A data set shipped with the package, split 70 / 10 / 20 into train, validation and test."""
    x, y = nn.datasets.DATASETS[name]()
    return _three_way(x, y, 0.1, seed, out, how=f"{title} ({len(x):,} images)")


def _idx_folder(name, data_dir, seed, out):
    """IDX files read from --data-dir: the "train" files split 90 / 10 into train and validation, the
    "test" files the test set. With only the test files there (MNIST's 10,000), they are split
    72 / 8 / 20: 8,000 to learn from (7,200 train + 800 validation), 2,000 to test."""
    title, files = IDX_FOLDERS[name]
    load = nn.datasets.DATASETS[name]
    if not _present(data_dir, files["train"]):   # only the test set (_check_data_dir said both or neither)
        x, y = load(data_dir, "test")
        return _three_way(x, y, 0.08, seed, out,
                          how=f"the {title} test set of {data_dir} ({len(x):,} images; no training files there)")
    (x, y), (xt, yt) = load(data_dir, "train"), load(data_dir, "test")
    xtr, xv, ytr, yv = nn.data.train_test_split(x, y, test_size=0.1, seed=seed, stratify=True)
    print(f"Data: {title} from {data_dir}: {len(xtr):,} train, {len(xv):,} validation, {len(xt):,} test", file=out)
    return (xtr, ytr), (xv, yv), (xt, yt)


def _present(folder, names):
    """Which of ``names`` are in ``folder``, raw or gzip-compressed (the name plus .gz)."""
    return [n for n in names if any(os.path.isfile(os.path.join(folder, n + ext)) for ext in ("", ".gz"))]


def _check_data_dir(name, data_dir):
    """--data-dir, checked before any work (the seed set, the data read): for a data set read from IDX
    files, a folder holding its two test files, and both training files or neither. The error is one line
    whatever the folder holds: the files expected, and a count and a few names of what is there."""
    if name not in IDX_FOLDERS:
        if data_dir is not None:   # ignored, the run would train on another data set than the one meant
            raise ValueError(f"--data-dir is for the data sets read from files (--dataset "
                             f"{' or '.join(IDX_FOLDERS)}); --dataset {name} is shipped with the package, "
                             f"got --data-dir {data_dir}")
        return
    title, files = IDX_FOLDERS[name]
    if data_dir is None:
        raise ValueError(f"--dataset {name} needs --data-dir PATH (a folder with the {title} IDX files)")
    if not os.path.isdir(data_dir):
        raise ValueError(f"--data-dir must be a folder holding the {title} IDX files, got {data_dir!r} "
                         f"({'a file' if os.path.exists(data_dir) else 'no such folder'})")
    (test_images, test_labels), train = files["test"], files["train"]
    if len(_present(data_dir, files["test"])) < 2:
        found = nn.datasets.folder_contents(data_dir, [*files["test"], *train])
        raise ValueError(f"--data-dir {data_dir}: expected the {title} IDX files {test_images} and {test_labels} "
                         f"(the test set; with {train[0]} and {train[1]}, the training set too), each raw or .gz; "
                         f"found {found}")
    if len(_present(data_dir, train)) == 1:
        (there,), (missing,) = _present(data_dir, train), [n for n in train if n not in _present(data_dir, train)]
        raise ValueError(f"--data-dir {data_dir}: found {there} but not {missing} (raw or .gz): give both training "
                         f"files, or neither to learn from the test set alone")


def _three_way(x, y, val_size, seed, out, how):
    """Split one set into train, validation (``val_size``) and a held-out 20% test set, saying so."""
    xtr, xv, xt, ytr, yv, yt = nn.data.train_val_test_split(x, y, val_size=val_size, test_size=0.2, seed=seed,
                                                            stratify=True)
    print(f"Data: {how}, split (seed {seed}) into {len(xtr):,} train, {len(xv):,} validation and "
          f"{len(xt):,} held-out test images", file=out)
    return (xtr, ytr), (xv, yv), (xt, yt)


# How the command line reads and splits each data set of nn.datasets.DATASETS (a test holds the two
# to the same names): (name, data_dir, seed, out) -> (train, validation, test) pairs.
SPLITS = {"digits": functools.partial(_shipped, title="the 8x8 digits"), "mnist": _idx_folder}

#: The data sets read from IDX files in --data-dir: their title and file names ("train" and "test" pairs).
IDX_FOLDERS = {"mnist": ("MNIST", nn.datasets.MNIST_FILES)}


#: The image shape (C, H, W) of each data set, known before it is read, so that a model too deep for
#: it is refused before any work (a test holds it to the loaders).
SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28)}


def _fits(build, shape) -> bool:
    """Whether ``build(input_shape=shape)`` builds: inside ``shapes_only`` nothing is allocated and no
    random number is drawn, so nn's generator is left as it was when the check refuses."""
    try:
        with nn.models.shapes_only():
            build(input_shape=shape)
        return True
    except ValueError:
        return False


def _check_fits(model_name, dataset):
    """Build ``model_name`` for ``dataset``'s images; if it cannot take them, say which models can."""
    shape = SHAPES[dataset]
    if not _fits(nn.models.MODELS[model_name], shape):
        fitting = [name for name, build in nn.models.MODELS.items() if _fits(build, shape)]
        raise ValueError(f"--model {model_name} cannot take --dataset {dataset}'s {shape[1]}x{shape[2]} images "
                         f"(its layers would shrink them to nothing); models that fit {dataset}: "
                         f"{', '.join(fitting)}") from None


def _output_folder(args) -> Path:
    """--output (default runs/MODEL), checked before any work: a folder, or a path where one can be made."""
    folder = Path(args.output or Path("runs") / args.model)
    for parent in (folder, *folder.parents):
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"--output must be a folder, but {parent} is a file")
            if not os.access(parent, os.W_OK):
                raise ValueError(f"--output: cannot write in {parent} (permission denied)")
            return folder
    return folder


def _positive_int(text):
    """argparse's type for --epochs and --batch-size: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {value}")
    return value


def _check_backend(name):
    """--backend, refused before any output when it cannot run here, with the command line's advice."""
    if name == "cuda" and (why := kernels.backend.cuda_unavailable_reason()) is not None:
        raise kernels.BackendUnavailable(f"--backend cuda: {why}; use --backend cpu, or set NUMBA_ENABLE_CUDASIM=1 "
                                         f"to run the CUDA kernels in Numba's simulator (slow)")


def train(args, out=None) -> int:
    """Train a model from nn.models, report the held-out test accuracy, save weights and a plot. With
    ``--backend cuda`` the model is moved to the device once, before the first step (``nn.fit``)."""
    out = out or sys.stdout
    _check_backend(args.backend)
    folder = _output_folder(args)   # refused now, not after the training
    _check_fits(args.model, args.dataset)
    _check_data_dir(args.dataset, args.data_dir)
    nn.set_seed(args.seed)
    train_set, val_set, test_set = SPLITS[args.dataset](args.dataset, args.data_dir, args.seed, out)
    model = nn.models.MODELS[args.model](input_shape=train_set[0].shape[1:])
    model.summary(file=out)
    optimizer = nn.optim.get(args.optimizer, model.parameters(), **({} if args.lr is None else {"lr": args.lr}))
    print(f"Training {args.model} with {optimizer} for {args.epochs} epoch{'s' if args.epochs != 1 else ''}, "
          f"batch {args.batch_size}, backend {args.backend}", file=out)
    history = nn.fit(model, train_set, loss="sparse_categorical_crossentropy", optimizer=optimizer,
                     epochs=args.epochs, batch_size=args.batch_size, validation=val_set, backend=args.backend,
                     seed=args.seed, verbose=1, file=out)
    test = nn.evaluate(model, test_set, loss="sparse_categorical_crossentropy", backend=args.backend)
    print(f"Test accuracy: {test['accuracy']:.4f} ({len(test_set[0]):,} held-out images), "
          f"test loss {test['loss']:.4f}", file=out)
    path = nn.save(model, folder / "model", metadata={"model": args.model, "dataset": args.dataset,
                                                        "epochs": args.epochs, "test_accuracy": test["accuracy"],
                                                        "seed": args.seed})
    plot = save_history_svg(history, folder / "history.svg")
    print(f"Saved {path} and {plot}", file=out)
    return 0


class _ShowDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """--help with each default shown, except None (those options say what their absence means)."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def add_to(sub) -> None:
    """Add ``train`` to the subparsers ``sub``, its choices read from the registries."""
    p = sub.add_parser("train", help="train a CNN (the main job): summary, progress, test accuracy, saved weights",
                       formatter_class=_ShowDefaults)
    p.add_argument("--model", default="digits-cnn", choices=sorted(nn.models.MODELS),
                   help="a model of nn.models (one that fits the data set's images)")
    p.add_argument("--dataset", choices=list(nn.datasets.DATASETS), default="digits", help="the data set")
    p.add_argument("--data-dir", help="folder with the MNIST IDX files (gzip or raw), for --dataset mnist")
    p.add_argument("--epochs", type=_positive_int, default=10, help="passes over the training set (>= 1)")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="samples per step (>= 1)")
    p.add_argument("--optimizer", default="adam", choices=list(nn.optim.OPTIMIZERS), help="an nn.optim optimiser")
    p.add_argument("--lr", type=float, help="learning rate (default: the optimiser's, as torch.optim)")
    p.add_argument("--backend", choices=list(kernels.BACKENDS), default="cpu",
                   help="where the training runs (cuda: the model moves to the GPU once and stays there)")
    p.add_argument("--seed", type=int, default=0, help="the seed of the split, initialisation and shuffling")
    p.add_argument("--output", help="folder for model.safetensors and history.svg (default runs/MODEL)")
    p.set_defaults(run=train)
