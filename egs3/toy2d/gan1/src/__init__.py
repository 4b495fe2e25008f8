"""A GAN on a 2-D mixture of Gaussians: two named optimizers, updated by name."""
