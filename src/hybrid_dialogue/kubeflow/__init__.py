"""Kubeflow Pipelines support: locate, compile, run locally and submit the pipeline.

The components and the pipeline DAG live in the top-level `components/` and
`pipelines/` folders of the repository, not in this package, so that they read
as the Kubeflow Pipelines samples do. The modules here find that repository,
and `component_io` contains the small helpers that component bodies call inside
the container image.
"""


class KubeflowError(RuntimeError):
    """A Kubeflow Pipelines operation failed; the message names the value and the fix."""
