"""Theory of guided diffusion on Gaussian mixtures (SPEC §5): infinite-class limit, class-resolution transition, DMFT."""
