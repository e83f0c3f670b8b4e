"""Kubeflow Pipelines v2 components, one per pipeline stage.

Each component is a lightweight Python component: a thin function that
imports the library inside its body and calls the stage function that
`dvc repro` also runs, with typed artifacts in and out. All of them run in
the image of `components/image.py`.
"""
