"""The training stages `vae_pretrain`, `gan_pretrain` and `hybrid_finetune`.

Entry points, one per stage, each a function of paths and typed configs that
returns a `TrainResult`: `vae.run_vae_pretrain`, `gan.run_gan_pretrain` and
`hybrid.run_hybrid_finetune` (which other stages reuse with an extra loss).
`stage.run_training_stage` holds the steps they share, `loop.fit` the epoch
loop, and `losses`, `schedules`, `data` and `checkpoint` the parts.
"""
