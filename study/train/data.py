"""Datasets: turn a task's options into train, validation and test arrays ready for a Keras RNN.

`load_task(task)` returns a `TaskData` for any task of `study.spec.tasks` and caches it, so a study
loads its data once per process however many trials it runs. Numeric inputs are float32 sequences
of shape (n, steps, features); IMDB reviews are int32 token ids of shape (n, maxlen). Class labels
are sparse int32 (n,); regression targets are float32 (n, 1), the shape a Dense(1) head outputs.
The validation set is always carved out of the training data (a shuffle seeded by
`task.split_seed`, or the end of the series for `sine`); the test set is never used for selection.
MNIST, Fashion-MNIST and IMDB are read from `task.path`, then from local copies (the Debian
package for Fashion-MNIST, the Keras cache), and downloaded with Keras only as a last resort;
when that fails `DataError` says how to provide the files. Keras is imported only to download or
to pad reviews, so importing this module stays fast.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import os
import pickle
import random
import socket
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from study.spec.errors import StudyError


class DataError(StudyError):
    """A dataset that cannot be loaded or has the wrong shape; the message says how to fix it."""


@dataclass(frozen=True)
class TaskData:
    """The arrays of one task and what a model needs to know about them."""

    name: str
    kind: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int | None
    vocab_size: int | None
    description: str
    warnings: tuple[str, ...] = ()  # what a sweep should say before it starts (e.g. an empty test set)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.x_train.shape[1:]


# The file names and hashes Keras' own loaders use (keras/src/datasets/*.py).
KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
IMDB_SHA256 = "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # apt-get install dataset-fashion-mnist
DOWNLOAD_TIMEOUT_S = 20

MNIST_HOW_TO = (
    "MNIST is not available offline: run once with internet (Keras caches it under "
    "~/.keras/datasets/mnist.npz) or set task.path to a mnist.npz file or a directory of the IDX .gz files"
)
FASHION_HOW_TO = (
    "Fashion-MNIST is not available offline: `apt-get install dataset-fashion-mnist` (files under "
    f"{FASHION_MNIST_SYSTEM_DIR}), run once with internet, or set task.path to a .npz file or a "
    "directory of the IDX .gz files"
)
IMDB_HOW_TO = (
    "IMDB is not available offline: run once with internet (Keras caches it under "
    "~/.keras/datasets/imdb.npz) or set task.path to a Keras-format imdb.npz file"
)


@functools.lru_cache(maxsize=8)
def load_task(task) -> TaskData:
    """Load (once per process) the data a task's options describe; raise DataError if impossible."""
    loaders = {
        "mnist": _load_mnist, "fashion_mnist": _load_fashion_mnist, "imdb": _load_imdb,
        "sine": _load_sine, "digits": _load_digits, "mnist1d": _load_mnist1d,
    }
    if task.name not in loaders:
        raise DataError(f"unknown task {task.name!r}; known tasks: {', '.join(loaders)}")
    data = loaders[task.name](task)
    # Every trial shares these cached arrays, so one that changed them in place would change the others.
    for value in vars(data).values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return data


# --------------------------------------------------------------------------- tasks


def _load_mnist(task) -> TaskData:
    if task.path:
        arrays = _read_image_source(_existing(task.path))
    elif (_keras_home() / "datasets" / "mnist.npz").exists():
        arrays = _read_image_npz(_keras_home() / "datasets" / "mnist.npz")
    else:
        arrays = _read_image_npz(_download("mnist.npz", "datasets", MNIST_SHA256, MNIST_HOW_TO))
    return _image_task(task, arrays, "28x28 digit images")


def _load_fashion_mnist(task) -> TaskData:
    keras_dir = _keras_home() / "datasets" / "fashion-mnist"
    if task.path:
        arrays = _read_image_source(_existing(task.path))
    elif FASHION_MNIST_SYSTEM_DIR.is_dir():
        arrays = _read_idx_dir(FASHION_MNIST_SYSTEM_DIR)
    elif all((keras_dir / f"{name}.gz").exists() for name in IDX_FILES.values()):
        arrays = _read_idx_dir(keras_dir)
    else:
        for name in IDX_FILES.values():
            _download(f"{name}.gz", "datasets/fashion-mnist", None, FASHION_HOW_TO)
        arrays = _read_idx_dir(keras_dir)
    return _image_task(task, arrays, "28x28 clothing images")


def _image_task(task, arrays: dict[str, np.ndarray], what: str) -> TaskData:
    x_test, y_test = _first(arrays["x_test"], arrays["y_test"], task.test_size, "test_size")
    x_train, y_train, x_val, y_val = _split_validation(
        arrays["x_train"], arrays["y_train"], task.val_fraction, task.split_seed, task.train_size,
    )
    steps = {"rows": "28 steps of 28 pixels", "pixels": "784 steps of 1 pixel", "single_step": "1 step of 784 pixels"}
    shown = f"{what} as {steps[task.layout]}{' (binarized)' if task.binarize else ''}"
    xs = [_image_layout(x, task) for x in (x_train, x_val, x_test)]
    return _task_data(task, xs, (y_train, y_val, y_test), shown, num_classes=10)


def _image_layout(images: np.ndarray, task) -> np.ndarray:
    x = images.astype(np.float32) / 255.0
    if task.binarize:
        x = (x > 0.5).astype(np.float32)
    shapes = {"rows": (28, 28), "pixels": (784, 1), "single_step": (1, 784)}
    return x.reshape((len(x), *shapes[task.layout]))


def _load_imdb(task) -> TaskData:
    if task.path:
        path = _existing(task.path)
    elif (_keras_home() / "datasets" / "imdb.npz").exists():
        path = _keras_home() / "datasets" / "imdb.npz"
    else:
        path = _download("imdb.npz", "datasets", IMDB_SHA256, IMDB_HOW_TO)
    # The reviews are ragged object arrays, which only a pickle stream can hold: they are read by an
    # unpickler that builds arrays, lists and numbers only, so a crafted file cannot run code.
    arrays = _read_npz(path, allow_objects=True)
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 1 or y.shape != (len(x),) or not np.isin(y, (0, 1)).all():
            raise DataError(
                f"{path}: x_{split} must hold one token list per review and y_{split} as many 0/1 labels; "
                f"found shapes {x.shape} and {y.shape}"
            )

    # Exactly what keras.datasets.imdb.load_data(num_words=...) returns with its defaults: both
    # splits shuffled by one RandomState(113), a start token 1, word ids shifted by 3 (0 is padding,
    # 2 stands for the words outside the num_words most frequent), so a local file gives the same data.
    rng = np.random.RandomState(113)
    splits = {}
    for split in ("train", "test"):
        order = np.arange(len(arrays[f"x_{split}"]))
        rng.shuffle(order)
        reviews = [_encode_review(review, task.num_words) for review in arrays[f"x_{split}"][order]]
        splits[split] = (_pad(reviews, task.maxlen), arrays[f"y_{split}"][order])

    x_test, y_test = _first(*splits["test"], task.test_size, "test_size")
    x_train, y_train, x_val, y_val = _split_validation(
        *splits["train"], task.val_fraction, task.split_seed, task.train_size,
    )
    shown = f"movie reviews as {task.maxlen} token ids ({task.num_words}-word vocabulary)"
    return _task_data(task, (x_train, x_val, x_test), (y_train, y_val, y_test), shown, vocab_size=task.num_words)


def _encode_review(review, num_words: int) -> np.ndarray:
    tokens = np.concatenate([[1], np.asarray(review, dtype=np.int64) + 3])
    tokens[tokens >= num_words] = 2
    return tokens


def _pad(reviews: list[np.ndarray], maxlen: int) -> np.ndarray:
    from study.train.backend import keras  # lazy: importing Keras takes seconds

    # Defaults as in the lab notebooks: pad and truncate at the front, so the end of a review is kept.
    return keras.utils.pad_sequences(reviews, maxlen=maxlen, dtype="int32")


def _load_sine(task) -> TaskData:
    t = np.linspace(0.0, task.t_max, task.length)
    rng = np.random.default_rng(task.data_seed)
    series = (np.sin(t) + task.noise * rng.standard_normal(task.length)).astype(np.float32)
    x = np.lib.stride_tricks.sliding_window_view(series[:-1], task.window)[..., None].copy()
    y = series[task.window:, None].copy()
    # Chronological: the model is always scored on times after those it was trained on.
    n_test = max(round(len(x) * task.test_fraction), 1)
    n_train = len(x) - n_test
    n_val = max(round(n_train * task.val_fraction), 1)
    cut = n_train - n_val
    shown = f"next value of sin(t) + {task.noise} noise from {task.window} past values"
    return _task_data(task, (x[:cut], x[cut:n_train], x[n_train:]), (y[:cut], y[cut:n_train], y[n_train:]), shown)


def _load_digits(task) -> TaskData:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=task.test_fraction, random_state=task.split_seed, stratify=digits.target,
    )
    x_train, y_train, x_val, y_val = _split_validation(x_train, y_train, task.val_fraction, task.split_seed)
    shown = "8x8 scikit-learn digits as 8 steps of 8"
    return _task_data(task, (x_train, x_val, x_test), (y_train, y_val, y_test), shown, num_classes=10)


def _load_mnist1d(task) -> TaskData:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = task.num_samples
    args.seed = task.data_seed
    # make_dataset generates locally (get_dataset would download a pickle); it takes about 3 s for the
    # default 5000 samples. It reseeds the global `random` and NumPy generators, so they are restored.
    saved = random.getstate(), np.random.get_state()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            dataset = make_dataset(args)
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
    x = dataset["x"].astype(np.float32)[..., None]
    x_test = dataset["x_test"].astype(np.float32)[..., None]
    x_train, y_train, x_val, y_val = _split_validation(x, dataset["y"], task.val_fraction, task.split_seed)
    shown = f"40-step 1-D digit signals (generator seed {task.data_seed})"
    return _task_data(task, (x_train, x_val, x_test), (y_train, y_val, dataset["y_test"]), shown, num_classes=10)


# --------------------------------------------------------------------------- shared helpers


def _task_data(task, xs, ys, shown: str, num_classes: int | None = None, vocab_size: int | None = None) -> TaskData:
    label_type = np.float32 if task.kind == "regression" else np.int32
    (x_train, x_val, x_test), (y_train, y_val, y_test) = xs, [y.astype(label_type) for y in ys]
    counts = f"{len(x_train)} train / {len(x_val)} val / {len(x_test)} test"
    classes = num_classes or (2 if task.kind == "binary" else None)
    for split, y in (("train", y_train), ("validation", y_val), ("test", y_test)):
        # Checked here, once, for every task: out of range, Keras fails every trial mid-training
        # with "Graph execution error".
        if classes is not None and len(y) and (y.min() < 0 or y.max() >= classes):
            raise DataError(f"task {task.name}: {split} labels must be 0..{classes - 1}; found {y.min()}..{y.max()}")
    for split, x in (("train", x_train), ("validation", x_val)):
        if not len(x):
            raise DataError(f"task {task.name}: the {split} set is empty ({counts}); give it more examples")
    warnings = () if len(x_test) else (
        f"task {task.name}: the test set is empty ({counts}), so trials have no test metrics",)
    return TaskData(
        name=task.name, kind=task.kind, x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
        x_test=x_test, y_test=y_test, num_classes=num_classes, vocab_size=vocab_size,
        description=f"{task.name}: {shown}; {counts}", warnings=warnings,
    )


def _split_validation(x, y, fraction: float, seed: int, size: int | None = None):
    """Shuffle with `seed`, keep the first `size` examples, and hold out `fraction` of them for validation."""
    if size is not None and size > len(x):
        raise DataError(f"train_size {size} is larger than the {len(x)} training examples; lower it or remove it")
    order = np.random.default_rng(seed).permutation(len(x))[:size]
    if len(order) < 2:
        raise DataError(f"{len(order)} training example(s) cannot be split into train and validation")
    n_val = min(max(round(len(order) * fraction), 1), len(order) - 1)
    return x[order[n_val:]], y[order[n_val:]], x[order[:n_val]], y[order[:n_val]]


def _first(x, y, size: int | None, option: str):
    if size is not None and size > len(x):
        raise DataError(f"{option} {size} is larger than the {len(x)} test examples; lower it or remove it")
    return x[:size], y[:size]


def _existing(path: str) -> Path:
    """`task.path` checked without opening it: a plain file, or a folder (of IDX files)."""
    found = Path(path).expanduser()
    try:
        mode = found.stat().st_mode
    except OSError:
        raise DataError(f"task.path {path}: no such file or directory") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise DataError(f"task.path {path}: is {_file_kind(mode)}; a dataset is a plain file (or a folder of IDX files)")
    return found


def _file_kind(mode: int) -> str:
    from study.spec.files import file_kind

    return file_kind(mode)


def _keras_home() -> Path:
    # Keras reads KERAS_HOME once, when it is imported; reading it here, at each call, keeps the
    # cache we look in and the one _download writes to the same directory.
    if os.environ.get("KERAS_HOME"):
        return Path(os.environ["KERAS_HOME"]).expanduser()
    home = Path.home()
    return (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras"


def _download(fname: str, cache_subdir: str, sha256: str | None, how_to: str) -> Path:
    """Fetch one file of Keras' dataset bucket into the Keras cache, as keras.datasets loaders do."""
    from study.train.backend import keras  # lazy: importing Keras takes seconds

    cache_dir = _keras_home()
    cache_dir.mkdir(parents=True, exist_ok=True)  # get_file falls back to /tmp/.keras if it is missing
    # urlretrieve has no timeout of its own: without one, a network that drops packets stalls the
    # load for minutes. Offline with no DNS it fails at once. The default applies to each socket
    # operation, not the whole download, so a slow but live download still completes.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return Path(keras.utils.get_file(
            fname, origin=KERAS_ORIGIN + fname, file_hash=sha256, cache_dir=str(cache_dir), cache_subdir=cache_subdir,
        ))
    except Exception as err:  # get_file raises a bare Exception for network errors
        raise DataError(f"{how_to} (download failed: {err})") from None
    finally:
        socket.setdefaulttimeout(previous)


def _read_npz(path: Path, allow_objects: bool = False) -> dict[str, np.ndarray]:
    """The arrays of a Keras-format .npz file, never unpickling anything but plain data.

    Object arrays (IMDB's ragged reviews) are stored as a pickle stream, which can run any code
    when loaded. With `allow_objects` they are read by `_SafeUnpickler`, which builds only NumPy
    arrays, lists and numbers and refuses everything else; without it they are refused.
    """
    if path.is_dir():
        raise DataError(f"{path}: is a directory; expected a Keras-format .npz file")
    try:
        with zipfile.ZipFile(path) as archive:
            arrays = {}
            for member in archive.namelist():
                if member.endswith(".npy"):
                    with archive.open(member) as handle:
                        arrays[member[:-4]] = _read_npy(handle, allow_objects)
    except Exception as err:  # noqa: BLE001 - garbage can break a zip, header or pickle reader in any way
        detail = "".join(c if c.isprintable() else "?" for c in " ".join(str(err).split()))[:200]
        raise DataError(f"{path}: not a readable Keras-format .npz file ({type(err).__name__}: {detail})") from None
    missing = [key for key in ("x_train", "y_train", "x_test", "y_test") if key not in arrays]
    if missing:
        raise DataError(f"{path}: missing array(s) {', '.join(missing)}; found {', '.join(arrays) or 'none'}")
    return arrays


def _read_npy(handle, allow_objects: bool) -> np.ndarray:
    version = np.lib.format.read_magic(handle)
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    if version not in readers:
        raise ValueError(f"an array in .npy format {version}, which Keras datasets never use")
    shape, fortran, dtype = readers[version](handle)
    if not dtype.hasobject:
        count = int(np.prod(shape))
        data = handle.read(count * dtype.itemsize)
        if len(data) != count * dtype.itemsize:
            raise ValueError(f"an array of shape {shape} is truncated")
        array = np.frombuffer(data, dtype=dtype, count=count)
        return array.reshape(shape[::-1]).transpose() if fortran else array.reshape(shape)
    if not allow_objects:
        raise ValueError("holds Python objects (a pickle), which this task never needs")
    array = _SafeUnpickler(handle).load()
    if not isinstance(array, np.ndarray):
        raise pickle.UnpicklingError(f"holds a {type(array).__name__}, not an array")
    return array


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles NumPy arrays of lists and numbers only: a crafted file cannot name a function to run."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module[:60]}.{name[:60]}: a dataset never needs it")
        return super().find_class(module, name)


def _read_image_source(path: Path) -> dict[str, np.ndarray]:
    return _read_idx_dir(path) if path.is_dir() else _read_image_npz(path)


def _read_image_npz(path: Path) -> dict[str, np.ndarray]:
    arrays = _read_npz(path)
    for split in ("train", "test"):
        _check_images(arrays[f"x_{split}"], arrays[f"y_{split}"], f"{path} (x_{split}, y_{split})")
    return arrays


def _read_idx_dir(directory: Path) -> dict[str, np.ndarray]:
    arrays = {}
    for key, name in IDX_FILES.items():
        candidates = [directory / f"{name}.gz", directory / name]
        path = next((p for p in candidates if p.exists()), None)
        if path is None:
            raise DataError(f"{directory}: missing {name}.gz (or {name}); expected the four MNIST IDX files")
        if not path.is_file():  # a FIFO or a device would block or never end
            raise DataError(f"{path}: is {_file_kind(path.stat().st_mode)}; the IDX files must be plain files")
        arrays[key] = _read_idx(path, 2051 if key.startswith("x") else 2049)
    for split in ("train", "test"):
        _check_images(arrays[f"x_{split}"], arrays[f"y_{split}"], f"{directory} ({split} files)")
    return arrays


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes (magic 2051: images, 2049: labels), gzipped or not."""
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: cannot read the IDX file, it is corrupt or truncated ({err})") from None
    found = int.from_bytes(data[:4], "big")
    if len(data) < 4 or found != magic:
        raise DataError(f"{path}: not an IDX {'image' if magic == 2051 else 'label'} file "
                        f"(magic number {found}, expected {magic})")
    ndim = magic & 0xFF  # the low byte of the magic number counts the dimensions
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    if len(data) != header + int(np.prod(dims)):
        raise DataError(f"{path}: {len(data)} bytes, but its header announces shape {dims}; "
                        "the file is truncated or corrupt")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _check_images(x: np.ndarray, y: np.ndarray, source: str) -> None:
    if x.ndim != 3 or x.shape[1:] != (28, 28) or x.dtype.kind not in "ui":
        raise DataError(f"{source}: images must be (n, 28, 28) integers 0..255; found shape {x.shape}, dtype {x.dtype}")
    if y.shape != (len(x),) or y.dtype.kind not in "ui":
        raise DataError(f"{source}: labels must be {len(x)} integers 0..9; found shape {y.shape}, dtype {y.dtype}")
    if len(x) and (x.max() > 255 or y.max() > 9):
        raise DataError(f"{source}: pixel values must be 0..255 and labels 0..9; found up to {x.max()} and {y.max()}")
