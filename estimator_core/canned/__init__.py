"""The premade (canned) estimators, module by module as in tf.estimator.

``dnn`` (DNNClassifier, DNNRegressor, DNNEstimator), ``linear`` (LinearClassifier,
LinearRegressor, LinearEstimator), ``dnn_linear_combined`` (the wide-and-deep estimators),
``baseline`` (BaselineClassifier, BaselineRegressor, BaselineEstimator), ``optimizers`` (the
``optimizer`` argument), ``metric_keys`` and ``prediction_keys``; the heads are in
:mod:`estimator_core.head`. The estimators are also ``est.DNNClassifier`` etc.
"""
