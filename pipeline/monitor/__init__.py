"""The model monitor: data drift and model quality from the captured traffic (`python -m pipeline.monitor`).

`baseline` computes a data set's reference statistics for a model version's inputs and predictions; `report` reads
one window of captures (a local folder or the exported objects in S3), compares each variant's features and
predictions with the baseline of the version that answered, joins ground truth by `inferenceId`, and writes a JSON
and a self-contained HTML report; the scheduled task does the same in AWS and publishes CloudWatch metrics.

Its libraries (SciPy, scikit-learn, matplotlib, Jinja2, pyarrow; Pipfile's `monitor` category) are its own: nothing
of the model server imports them.
"""
