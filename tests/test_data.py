"""load_task: every task's shapes, dtypes, splits and caching, local MNIST/IMDB files, and clear errors."""

from __future__ import annotations

import gzip
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from study.spec.tasks import DigitsTask, FashionMnistTask, ImdbTask, Mnist1dTask, MnistTask, SineTask
from study.train.data import FASHION_MNIST_SYSTEM_DIR, DataError, TaskData, load_task

SPLITS = ("train", "val", "test")


def sizes(data: TaskData) -> tuple[int, int, int]:
    return tuple(len(getattr(data, f"x_{split}")) for split in SPLITS)


def assert_consistent(data: TaskData, x_dtype=np.float32, y_dtype=np.int32) -> None:
    for split in SPLITS:
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        assert x.dtype == x_dtype and y.dtype == y_dtype
        assert x.shape[1:] == data.input_shape and len(x) == len(y) > 0
        assert not x.flags.writeable  # cached arrays are shared by every trial
    assert data.description.startswith(f"{data.name}: ")
    assert data.description.endswith("{} train / {} val / {} test".format(*sizes(data)))


@pytest.fixture
def offline(monkeypatch):
    """No network, the way this machine fails: name resolution errors at once."""

    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)


@pytest.fixture
def empty_keras_home(tmp_path, monkeypatch):
    """No Keras cache: HOME and KERAS_HOME point at empty directories."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path / "keras"


# --------------------------------------------------------------------------- generated tasks


def test_digits_shapes_and_stratified_test_split():
    data = load_task(DigitsTask(name="digits"))
    assert_consistent(data)
    assert data.kind == "multiclass" and data.num_classes == 10 and data.vocab_size is None
    assert data.input_shape == (8, 8)
    assert sum(sizes(data)) == 1797 and len(data.x_test) == 360
    assert len(data.x_val) == round(1437 * 0.2)
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert set(np.unique(data.y_test)) == set(range(10))


def test_load_task_is_cached_and_deterministic():
    task = DigitsTask(name="digits", split_seed=3)
    first = load_task(task)
    assert load_task(DigitsTask(name="digits", split_seed=3)) is first  # equal options share one load
    load_task.cache_clear()
    again = load_task(task)
    assert again is not first
    for split in SPLITS:
        np.testing.assert_array_equal(getattr(again, f"x_{split}"), getattr(first, f"x_{split}"))
        np.testing.assert_array_equal(getattr(again, f"y_{split}"), getattr(first, f"y_{split}"))
    other = load_task(DigitsTask(name="digits", split_seed=4))
    assert not np.array_equal(other.y_val, first.y_val)  # the seed does choose the split


def test_mnist1d_generates_locally_without_touching_global_seeds():
    np.random.seed(123)
    expected_next = np.random.rand()
    np.random.seed(123)
    data = load_task(Mnist1dTask(name="mnist1d", num_samples=200))
    assert np.random.rand() == expected_next  # make_dataset reseeds NumPy; the loader restores it
    assert_consistent(data)
    assert data.input_shape == (40, 1) and data.num_classes == 10
    assert sizes(data) == (128, 32, 40)  # 80% train, then 20% of it for validation
    again = load_task(Mnist1dTask(name="mnist1d", num_samples=200, split_seed=1))
    np.testing.assert_array_equal(again.x_test, data.x_test)  # the generator, not split_seed, makes the data


def test_sine_windows_split_chronologically():
    task = SineTask(name="sine", length=200, window=5, noise=0.0)
    data = load_task(task)
    assert_consistent(data, y_dtype=np.float32)
    assert data.kind == "regression" and data.num_classes is None
    assert data.input_shape == (5, 1) and data.y_train.shape[1:] == (1,)
    assert sizes(data) == (125, 31, 39) and sum(sizes(data)) == 200 - 5
    series = np.sin(np.linspace(0, task.t_max, task.length)).astype(np.float32)
    np.testing.assert_allclose(data.x_train[0, :, 0], series[:5], rtol=1e-6)
    np.testing.assert_allclose(data.y_train[0, 0], series[5], rtol=1e-6)
    # No shuffling: validation follows training, and the test set comes last.
    np.testing.assert_allclose(data.y_val[0, 0], series[5 + 125], rtol=1e-6)
    np.testing.assert_allclose(data.y_test[-1, 0], series[-1], rtol=1e-6)
    np.testing.assert_allclose(data.x_test[-1, 1:, 0], series[-5:-1], rtol=1e-6)


def test_sine_noise_depends_on_data_seed():
    a = load_task(SineTask(name="sine", length=100, data_seed=1))
    b = load_task(SineTask(name="sine", length=100, data_seed=2))
    assert not np.array_equal(a.y_train, b.y_train)


# --------------------------------------------------------------------------- MNIST from local files


def fake_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


def write_mnist_npz(path: Path, n_train: int = 50, n_test: int = 20) -> dict[str, np.ndarray]:
    (x_train, y_train), (x_test, y_test) = fake_images(n_train, 0), fake_images(n_test, 1)
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    np.savez(path, **arrays)
    return arrays


def idx_bytes(array: np.ndarray) -> bytes:
    magic = 0x0800 | array.ndim  # unsigned bytes, then the number of dimensions
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_dir(directory: Path, arrays: dict[str, np.ndarray], compress: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    names = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
    for key, name in names.items():
        if compress:
            with gzip.open(directory / f"{name}.gz", "wb") as f:
                f.write(idx_bytes(arrays[key]))
        else:
            (directory / name).write_bytes(idx_bytes(arrays[key]))
    return directory


@pytest.mark.parametrize("layout, shape", [("rows", (28, 28)), ("pixels", (784, 1)), ("single_step", (1, 784))])
def test_mnist_npz_in_every_layout(tmp_path, layout, shape):
    arrays = write_mnist_npz(tmp_path / "mnist.npz")
    data = load_task(MnistTask(name="mnist", path=str(tmp_path / "mnist.npz"), layout=layout))
    assert_consistent(data)
    assert data.input_shape == shape and data.num_classes == 10
    assert sizes(data) == (45, 5, 20)
    # Layouts are reshapes of the same pixels, scaled to [0, 1]; test images keep their order.
    np.testing.assert_allclose(data.x_test.reshape(20, 784), arrays["x_test"].reshape(20, 784) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(data.y_test, arrays["y_test"])
    # Validation and training images together are exactly the training file, each once.
    seen = np.rint(np.concatenate([data.x_train, data.x_val]).reshape(50, 784) * 255).astype(np.uint8)
    assert sorted(map(bytes, seen)) == sorted(map(bytes, arrays["x_train"].reshape(50, 784)))


def test_mnist_binarize_train_size_and_test_size(tmp_path):
    arrays = write_mnist_npz(tmp_path / "mnist.npz")
    task = MnistTask(name="mnist", path=str(tmp_path / "mnist.npz"), binarize=True, train_size=40, test_size=10)
    data = load_task(task)
    assert_consistent(data)
    assert sizes(data) == (36, 4, 10)
    assert set(np.unique(data.x_train)) == {0.0, 1.0}
    np.testing.assert_array_equal(data.x_test, (arrays["x_test"][:10] / 255.0 > 0.5).astype(np.float32))
    other = load_task(task.model_copy(update={"split_seed": 1}))
    assert not np.array_equal(other.y_train, data.y_train)  # the subset is a seeded random draw


def test_mnist_and_fashion_from_idx_directories(tmp_path):
    arrays = write_mnist_npz(tmp_path / "mnist.npz")
    gz_dir = write_idx_dir(tmp_path / "gz", arrays)
    raw_dir = write_idx_dir(tmp_path / "raw", arrays, compress=False)
    from_npz = load_task(MnistTask(name="mnist", path=str(tmp_path / "mnist.npz")))
    for directory in (gz_dir, raw_dir):
        data = load_task(MnistTask(name="mnist", path=str(directory)))
        for split in SPLITS:  # same arrays and same split, whatever the file format
            np.testing.assert_array_equal(getattr(data, f"x_{split}"), getattr(from_npz, f"x_{split}"))
            np.testing.assert_array_equal(getattr(data, f"y_{split}"), getattr(from_npz, f"y_{split}"))
    fashion = load_task(FashionMnistTask(name="fashion_mnist", path=str(gz_dir), layout="pixels"))
    assert fashion.name == "fashion_mnist" and fashion.input_shape == (784, 1)
    assert fashion.description.startswith("fashion_mnist: 28x28 clothing images")
    np.testing.assert_array_equal(fashion.y_test, arrays["y_test"])


@pytest.mark.skipif(not FASHION_MNIST_SYSTEM_DIR.is_dir(), reason="apt package dataset-fashion-mnist not installed")
def test_real_fashion_mnist_from_the_debian_package():
    data = load_task(FashionMnistTask(name="fashion_mnist", train_size=500, test_size=100))
    assert_consistent(data)
    assert sizes(data) == (450, 50, 100) and data.input_shape == (28, 28)
    assert set(np.unique(data.y_train)) == set(range(10))
    assert 0.2 < data.x_train.mean() < 0.4  # real clothing images on a dark background (mean about 0.29)


# --------------------------------------------------------------------------- IMDB from a local file


def write_imdb_npz(path: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)

    def reviews(n):
        ragged = np.empty(n, dtype=object)
        for i in range(n):
            ragged[i] = list(rng.integers(1, 40, rng.integers(3, 15)).tolist())
        return ragged

    arrays = {"x_train": reviews(30), "y_train": rng.integers(0, 2, 30),
              "x_test": reviews(12), "y_test": rng.integers(0, 2, 12)}
    np.savez(path, **arrays)
    return arrays


def test_imdb_pads_filters_and_marks_start(tmp_path):
    write_imdb_npz(tmp_path / "imdb.npz")
    data = load_task(ImdbTask(name="imdb", path=str(tmp_path / "imdb.npz"), num_words=20, maxlen=8))
    assert_consistent(data, x_dtype=np.int32)
    assert data.kind == "binary" and data.vocab_size == 20 and data.num_classes is None
    assert data.input_shape == (8,) and sizes(data) == (24, 6, 12)
    tokens = np.concatenate([data.x_train, data.x_val, data.x_test])
    assert tokens.max() < 20 and (tokens == 2).any()  # rare words became the out-of-vocabulary id
    assert set(np.unique(data.y_train)) <= {0, 1}
    for row in tokens:  # padding (0) comes first; a short review keeps its start token 1
        nonzero = np.flatnonzero(row)
        assert (row[: nonzero[0]] == 0).all() and (row[nonzero[0]:] > 0).all()
        if len(nonzero) < 8:
            assert row[nonzero[0]] == 1


def test_imdb_local_file_matches_keras_loader(tmp_path, monkeypatch):
    imdb_module = pytest.importorskip("keras.src.datasets.imdb")
    from keras.utils import pad_sequences

    path = tmp_path / "imdb.npz"
    write_imdb_npz(path)
    monkeypatch.setattr(imdb_module, "get_file", lambda **kwargs: str(path))  # Keras' own loader, our file
    (x_train, y_train), (x_test, y_test) = imdb_module.load_data(num_words=20)
    data = load_task(ImdbTask(name="imdb", path=str(path), num_words=20, maxlen=8, test_size=10))
    np.testing.assert_array_equal(data.x_test, pad_sequences(x_test, maxlen=8)[:10])
    np.testing.assert_array_equal(data.y_test, y_test[:10])
    train = {bytes(row) for row in pad_sequences(x_train, maxlen=8).astype(np.int32)}
    assert {bytes(row) for row in np.concatenate([data.x_train, data.x_val])} == train


# --------------------------------------------------------------------------- errors


def test_missing_path_names_it(tmp_path):
    missing = tmp_path / "nowhere" / "mnist.npz"
    with pytest.raises(DataError, match="nowhere/mnist.npz: no such file"):
        load_task(MnistTask(name="mnist", path=str(missing)))
    with pytest.raises(DataError, match="nowhere/mnist.npz: no such file"):
        load_task(ImdbTask(name="imdb", path=str(missing)))


def test_corrupt_or_wrong_files_are_refused(tmp_path):
    arrays = write_mnist_npz(tmp_path / "mnist.npz")
    truncated = write_idx_dir(tmp_path / "truncated", arrays, compress=False)
    labels = truncated / "train-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-3])
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: .*truncated or corrupt"):
        load_task(MnistTask(name="mnist", path=str(truncated)))

    broken_gz = write_idx_dir(tmp_path / "broken_gz", arrays)
    images = broken_gz / "t10k-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:100])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: cannot read"):
        load_task(MnistTask(name="mnist", path=str(broken_gz)))

    swapped = write_idx_dir(tmp_path / "swapped", arrays, compress=False)
    (swapped / "train-images-idx3-ubyte").write_bytes((swapped / "train-labels-idx1-ubyte").read_bytes())
    with pytest.raises(DataError, match="magic number 2049, expected 2051"):
        load_task(MnistTask(name="mnist", path=str(swapped)))

    flat = tmp_path / "flat.npz"
    np.savez(flat, x_train=arrays["x_train"].reshape(50, 784), y_train=arrays["y_train"],
             x_test=arrays["x_test"], y_test=arrays["y_test"])
    with pytest.raises(DataError, match=r"flat.npz \(x_train, y_train\): .*found shape \(50, 784\)"):
        load_task(MnistTask(name="mnist", path=str(flat)))

    (tmp_path / "text.npz").write_text("not a zip file")
    with pytest.raises(DataError, match="text.npz: not a readable"):
        load_task(MnistTask(name="mnist", path=str(tmp_path / "text.npz")))

    with pytest.raises(DataError, match="train_size 100 is larger than the 50"):
        load_task(MnistTask(name="mnist", path=str(tmp_path / "mnist.npz"), train_size=100))


def test_mnist_offline_without_cache_says_how_to_fix(offline, empty_keras_home):
    started = time.monotonic()
    with pytest.raises(DataError) as raised:
        load_task(MnistTask(name="mnist"))
    message = str(raised.value)
    assert message.startswith("MNIST is not available offline: run once with internet")
    assert "set task.path to a mnist.npz file or a directory of the IDX .gz files" in message
    assert time.monotonic() - started < 30  # Keras' import included; the download itself fails at once
    assert not (empty_keras_home / "datasets" / "mnist.npz").exists()  # no partial download left behind


def test_mnist_uses_the_keras_cache(tmp_path, empty_keras_home, offline):
    (empty_keras_home / "datasets").mkdir(parents=True)
    arrays = write_mnist_npz(empty_keras_home / "datasets" / "mnist.npz")
    data = load_task(MnistTask(name="mnist", split_seed=7))
    np.testing.assert_array_equal(data.y_test, arrays["y_test"])


def test_imdb_offline_without_cache_says_how_to_fix(offline, empty_keras_home):
    with pytest.raises(DataError, match="IMDB is not available offline"):
        load_task(ImdbTask(name="imdb", maxlen=7))


def test_a_crafted_imdb_pickle_never_runs_and_garbage_is_one_data_error(tmp_path):
    # imdb.npz holds ragged object arrays (a pickle stream): nothing but plain data may come out.
    import io
    import os
    import zipfile

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    stream = io.BytesIO()
    np.lib.format.write_array(stream, np.array([Payload()], dtype=object), allow_pickle=True)
    crafted = tmp_path / "crafted.npz"
    with zipfile.ZipFile(crafted, "w") as archive:
        for key in ("x_train", "y_train", "x_test", "y_test"):
            archive.writestr(f"{key}.npy", stream.getvalue())
    with pytest.raises(DataError, match=r"crafted.npz: not a readable .* refused to load posix.system"):
        load_task(ImdbTask(name="imdb", path=str(crafted)))
    assert not marker.exists()

    garbage = tmp_path / "garbage.npz"
    with zipfile.ZipFile(garbage, "w") as archive:
        archive.writestr("x_train.npy", stream.getvalue()[:90] + bytes(range(256)))
    with pytest.raises(DataError, match="garbage.npz: not a readable Keras-format .npz file") as refused:
        load_task(ImdbTask(name="imdb", path=str(garbage)))
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 500

    # A real imdb.npz reads as NumPy's own pickle loader reads it.
    from study.train.data import _read_npz

    write_imdb_npz(tmp_path / "imdb.npz")
    mine = _read_npz(tmp_path / "imdb.npz", allow_objects=True)
    theirs = np.load(tmp_path / "imdb.npz", allow_pickle=True)
    for key in theirs.files:
        assert [list(x) if isinstance(x, list) else x for x in mine[key]] == list(theirs[key]), key


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_dataset_path_that_is_not_a_plain_file_is_refused_at_once(kind, tmp_path):
    import os

    if kind == "fifo":
        path = tmp_path / "data.npz"
        os.mkfifo(path)  # opening it would block forever
    else:
        path = Path("/dev/zero")  # reading it would never end
    started = time.monotonic()
    for task in (MnistTask(name="mnist", path=str(path)), ImdbTask(name="imdb", path=str(path))):
        with pytest.raises(DataError, match=r"is a (FIFO \(named pipe\)|character device); a dataset is a plain file"):
            load_task(task)
    assert time.monotonic() - started < 5


def test_labels_out_of_range_are_refused_when_the_data_loads_and_an_empty_test_set_is_warned(tmp_path):
    # Labels of -1 used to train and then fail every trial with "Graph execution error".
    arrays = write_mnist_npz(tmp_path / "mnist.npz")
    np.savez(tmp_path / "negative.npz", **{**arrays, "y_train": arrays["y_train"].astype(np.int8) - 1})
    with pytest.raises(DataError, match=r"task mnist: (train|validation) labels must be 0..9; found -1..8"):
        load_task(MnistTask(name="mnist", path=str(tmp_path / "negative.npz")))

    np.savez(tmp_path / "no-test.npz", **{**arrays, "x_test": arrays["x_test"][:0], "y_test": arrays["y_test"][:0]})
    data = load_task(MnistTask(name="mnist", path=str(tmp_path / "no-test.npz")))
    assert data.warnings == ("task mnist: the test set is empty (45 train / 5 val / 0 test), so trials have no "
                             "test metrics",)
