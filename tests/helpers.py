"""Small helpers shared by the tests."""

import tensorflow as tf


def array_input_fn(x, y=None, batch_size=32, repeat=False, shuffle=False):
    """An input_fn over arrays; ``features = {'x': x}``."""

    def input_fn():
        features = {"x": x}
        dataset = tf.data.Dataset.from_tensor_slices((features, y) if y is not None else features)
        if shuffle:
            dataset = dataset.shuffle(256, seed=0)
        if repeat:
            dataset = dataset.repeat()
        return dataset.batch(batch_size)

    return input_fn


def write_digits_tfrecords(directory):
    """scikit-learn's digits as a prepared data set (features ``pixels``, label ``digit``,
    splits train 80 % / eval 20 %) in ``directory``."""
    from estimator_core.data import write_dataset
    from examples.digits import load_digits_arrays

    x, y, _, _ = load_digits_arrays()
    write_dataset(
        {"pixels": x, "digit": y}, directory, label="digit", splits={"train": 0.8, "eval": 0.2}
    )


def event_scalars(directory):
    """{tag: {step: value}} of the scalar summaries in a TensorBoard log directory, as
    TensorBoard reads them: ``simple_value`` scalars (tf.estimator's eval summaries) and TF2
    scalar tensors."""
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(
        str(directory), size_guidance={"tensors": 0, "scalars": 0}
    )
    acc.Reload()
    out = {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}
    for tag in acc.Tags()["tensors"]:
        values = {e.step: tf.make_ndarray(e.tensor_proto) for e in acc.Tensors(tag)}
        if all(v.ndim == 0 and v.dtype.kind == "f" for v in values.values()):
            out[tag] = {step: float(v) for step, v in values.items()}
    return out
