"""The hybrid GAN + VAE dialogue model.

Import from the modules: `config` (sizes and presets, no TensorFlow),
`layers`, the builders `encoder`, `decoder`, `generator`, `discriminator`,
the model in `hybrid`, and `io` (build, save, load). This package file stays
empty so that importing `hybrid_dialogue.models.config` does not load
TensorFlow.
"""
