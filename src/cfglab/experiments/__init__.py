"""Experiments: everything that combines the layers below (see ``docs/design.md``).

* :mod:`~cfglab.experiments.calibrate` — the negative window calibrated from theory;
* :mod:`~cfglab.experiments.compare` — guidance rules compared on one exact-score ensemble;
* :mod:`~cfglab.experiments.shrinkage` — the shrinkage theorem on random w ≥ 0 schedules;
* :mod:`~cfglab.experiments.validate`, :mod:`~cfglab.experiments.regimes` — theory against
  simulation and the paper's three regime claims;
* :mod:`~cfglab.experiments.latent_study`, :mod:`~cfglab.experiments.latent_calibration` —
  the schedule study on the trained latent model;
* :mod:`~cfglab.experiments.latent_regime_measure`, :mod:`~cfglab.experiments.latent_predict`,
  :mod:`~cfglab.experiments.latent_regimes` — the regime study: each model's measured α/α_c,
  the theory's forecast written before sampling, the schedule sweep and its statistics
  (:mod:`~cfglab.experiments.stats`);
* :mod:`~cfglab.experiments.tasks` — the functions every built-in sweep task kind points to
  (the registry itself is :data:`cfglab.sweep.tasks.TASKS`).

Importing this package imports none of them (they pull in the lab, the theory and, for the
latent study, the ``latent`` extra).
"""
