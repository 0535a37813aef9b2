import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from examples import digits
from tests.helpers import array_input_fn


@pytest.fixture(scope="session")
def digits_arrays():
    return digits.load_digits_arrays(seed=0)


@pytest.fixture
def train_input(digits_arrays):
    x, y, _, _ = digits_arrays
    return array_input_fn(x, y, batch_size=32, repeat=True, shuffle=True)


@pytest.fixture
def eval_input(digits_arrays):
    _, _, x, y = digits_arrays
    return array_input_fn(x, y, batch_size=64)


np.set_printoptions(precision=4)
