"""Trains, checkpoints and exports, then runs out of disk (RLIMIT_FSIZE) and tries again.

python -m tests.disk_full_worker MODEL_DIR EXPORT_BASE
"""

import os
import resource
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf

import estimator_core as est
from examples import digits
from tests.helpers import array_input_fn


def attempt(label, action):
    try:
        action()
        print(f"{label}: ok", flush=True)
    except Exception as err:  # the disk-full error, whichever layer reports it
        print(f"{label}: failed ({type(err).__name__})", flush=True)


def main(model_dir, export_base):
    x, y, _, _ = digits.load_digits_arrays()
    config = est.RunConfig(
        model_dir=model_dir, save_checkpoints_steps=None, save_summary_steps=None
    )
    estimator = est.Estimator(digits.model_fn, config=config, params={})
    train = array_input_fn(x, y, batch_size=32, repeat=True)
    receiver = est.export.build_raw_serving_input_receiver_fn(
        {"x": tf.TensorSpec([None, digits.NUM_FEATURES], tf.float32)}
    )
    estimator.train(train, max_steps=10)
    estimator.export_saved_model(export_base, receiver)
    # From here on no file may grow past 2 kB: the disk is "full" for checkpoints and exports.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write (EFBIG), do not kill us
    resource.setrlimit(resource.RLIMIT_FSIZE, (2048, resource.RLIM_INFINITY))
    attempt("checkpoint", lambda: estimator.train(train, max_steps=20))
    attempt("export", lambda: estimator.export_saved_model(export_base, receiver))


if __name__ == "__main__":
    main(*sys.argv[1:3])
