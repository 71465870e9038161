"""Tasks: the schema of each dataset a sweep file can name, with its options and what kind of problem it is."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Union

from pydantic import Field, model_validator

from study.spec.base import StrictModel


Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]


class TaskBase(StrictModel):
    kind: ClassVar[Literal["multiclass", "binary", "regression"]]
    is_text: ClassVar[bool] = False
    split_seed: int = Field(0, description="seed of the train/validation split (fixed for the whole study)")


class ImageRowsTask(TaskBase):
    """MNIST-shaped images read as sequences (shared by `mnist` and `fashion_mnist`)."""

    kind: ClassVar = "multiclass"
    layout: Literal["rows", "pixels", "single_step"] = Field(
        "rows", description="rows: 28 steps of 28 pixels; pixels: 784 steps of 1; single_step: 1 step of 784",
    )
    binarize: bool = Field(False, description="threshold pixels at 0.5 after scaling to [0, 1]")
    train_size: int | None = Field(None, ge=10, description="use only this many training images (before the validation split)")
    test_size: int | None = Field(None, ge=10, description="use only this many test images")
    val_fraction: Fraction = 0.1
    path: str | None = Field(None, description="a Keras-format .npz file or a directory of the original IDX .gz files")


class MnistTask(ImageRowsTask):
    name: Literal["mnist"]


class FashionMnistTask(ImageRowsTask):
    name: Literal["fashion_mnist"]


class ImdbTask(TaskBase):
    name: Literal["imdb"]
    kind: ClassVar = "binary"
    is_text: ClassVar = True
    num_words: int = Field(10000, ge=10, le=100000, description="vocabulary size (most frequent words)")
    maxlen: int = Field(100, ge=1, le=5000, description="reviews are padded/truncated to this many tokens")
    train_size: int | None = Field(None, ge=10)
    test_size: int | None = Field(None, ge=10)
    val_fraction: Fraction = 0.2
    path: str | None = Field(None, description="a Keras-format imdb.npz file")


class SineTask(TaskBase):
    name: Literal["sine"]
    kind: ClassVar = "regression"
    length: int = Field(1000, ge=50, le=10_000_000, description="number of points of sin(t)")
    t_max: float = Field(10.0, gt=0, description="t runs over [0, t_max]")
    window: int = Field(10, ge=1, le=10000, description="past values fed to the model")
    noise: float = Field(0.1, ge=0, description="standard deviation of the Gaussian noise added to sin(t)")
    test_fraction: Fraction = 0.2
    val_fraction: Fraction = 0.2
    data_seed: int = 0

    @model_validator(mode="after")
    def _enough_points(self) -> SineTask:
        if self.length * (1 - self.test_fraction) * (1 - self.val_fraction) <= self.window + 1:
            raise ValueError(f"length {self.length} leaves no training windows of size {self.window}")
        return self


class DigitsTask(TaskBase):
    name: Literal["digits"]
    kind: ClassVar = "multiclass"
    test_fraction: Fraction = 0.2
    val_fraction: Fraction = 0.2


class Mnist1dTask(TaskBase):
    name: Literal["mnist1d"]
    kind: ClassVar = "multiclass"
    num_samples: int = Field(5000, ge=100, le=1_000_000, description="samples generated (80% train, 20% test)")
    val_fraction: Fraction = 0.2
    data_seed: int = Field(42, description="seed of the generator (42 is the published benchmark)")


TaskConfig = Annotated[
    Union[MnistTask, FashionMnistTask, ImdbTask, SineTask, DigitsTask, Mnist1dTask],
    Field(discriminator="name"),
]
TASK_NAMES = ("mnist", "fashion_mnist", "imdb", "sine", "digits", "mnist1d")
