"""The two TensorFlow samples in examples/ (``tf.estimator`` replaced by ``est``) run and give
sensible answers."""

import keras
import pytest

from examples import export_estimator, iris_data, premade_estimator


def test_premade_estimator_sample_classifies_iris():
    keras.utils.set_random_seed(0)  # the sample sets no seed; the test wants one outcome
    eval_result, predicted = premade_estimator.main([])  # the sample's own defaults
    assert eval_result["accuracy"] >= 0.9
    assert predicted == iris_data.SPECIES  # the sample's three flowers, one of each species


def test_export_estimator_sample_serves_both_signatures(tmp_path):
    keras.utils.set_random_seed(0)
    path, predicted, classified = export_estimator.main(["--export_dir", str(tmp_path)])
    assert path.startswith(str(tmp_path))
    assert predicted["classes"].numpy().tolist() == [[b"2"]]  # the sample flower: Virginica
    assert classified["classes"].numpy().tolist() == [[b"0", b"1", b"2"]]
    assert classified["scores"].numpy()[0] == pytest.approx(predicted["probabilities"].numpy()[0])
