"""Theory of guided diffusion on Gaussian mixtures (docs/theory.md).

* :mod:`~cfglab.theory.gaussian` — infinite-class limit: exact moment ODEs and closed forms;
* :mod:`~cfglab.theory.rem`, :mod:`~cfglab.theory.transition` — Random-Energy-Model free energy
  of the non-target classes, class-resolution time t_c and critical rate α_c;
* :mod:`~cfglab.theory.dmft` — mean-field order parameters of the guided dynamics;
  :mod:`~cfglab.theory.dmft_spectral` — the same with per-direction spectra;
* :mod:`~cfglab.theory.potential` — the effective potential.

Pure analysis: nothing here runs a simulation.  Theory against simulation and the paper's
three regime claims are experiments (:mod:`cfglab.experiments.validate`,
:mod:`cfglab.experiments.regimes`).
"""

from cfglab._lazy import lazy_exports

# name -> defining module, imported on first use (PEP 562; docs/performance.md, start-up)
__getattr__, __dir__ = lazy_exports(__name__, {
    "cfglab.theory.dmft": ("DMFTPrediction", "solve_dmft"),
    "cfglab.theory.dmft_spectral": ("SpectralDMFTPrediction", "solve_dmft_spectral"),
    "cfglab.theory.gaussian": ("GaussianPrediction", "closed_form_constant", "solve_discrete", "solve_gaussian"),
    "cfglab.theory.transition": ("TransitionResult", "alpha_critical", "crossing_time", "transition"),
})

__all__ = [
    "DMFTPrediction", "solve_dmft", "SpectralDMFTPrediction", "solve_dmft_spectral",
    "GaussianPrediction", "closed_form_constant", "solve_discrete", "solve_gaussian",
    "TransitionResult", "alpha_critical", "crossing_time", "transition",
]
