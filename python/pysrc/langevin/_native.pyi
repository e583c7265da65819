"""Type stubs of the native module (the API is langevin/__init__.py)."""
from typing import Any, Callable, Optional, Sequence, Tuple

import numpy as np

__version__: str

class Target:
    """A target density: its score ∇log p (and log p where known)."""
    @property
    def dim(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def warnings(self) -> list[str]: ...
    def score(self, x: np.ndarray) -> np.ndarray:
        """∇log p at the rows of x (n, d), float32."""

def target(spec: str) -> Target: ...
def gmm(weights: Sequence[float], means: Sequence[Sequence[float]], covs: Any) -> Target: ...
def potential(energy: str, variables: Sequence[str], temperature: float = 1.0) -> Target: ...
def score_function(f: Callable[[np.ndarray], np.ndarray], dim: int,
                   log_density: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> Target: ...
def sample(target: Target, sampler: str = "ula", particles: Optional[int] = None, steps: Optional[int] = None,
           warmup: Optional[int] = None, step_size: Any = None, init: Any = None, seed: int = 0,
           thin: Optional[int] = None, adapt: Any = None, noise: bool = True, friction: Optional[float] = None,
           mass: Optional[Sequence[float]] = None, threads: Optional[int] = None,
           options: Optional[dict] = None) -> Tuple[np.ndarray, str]: ...
def evaluate(x: np.ndarray, target: Optional[Target] = None, reference: Optional[np.ndarray] = None,
             max_points: int = 2000, projections: int = 128, seed: int = 0) -> str: ...
def analyze(target: Target, starts: int = 64, seed: int = 0, samples: Optional[np.ndarray] = None) -> str: ...
def train(data: Any, out: str, objective: Optional[str] = None, steps: Optional[int] = None,
          batch: Optional[int] = None, lr: Optional[float] = None, width: Optional[int] = None,
          depth: Optional[int] = None, seed: Optional[int] = None, heldout_fraction: float = 0.1,
          resume: bool = False, threads: Optional[int] = None, labels: Optional[Sequence[int]] = None,
          conditional: bool = False, cond_drop: Optional[float] = None) -> str: ...
def generate(run: str, n: int = 10000, sampler: Optional[str] = None, steps: Optional[int] = None, seed: int = 0,
             class_: Optional[str] = None, guidance: float = 0.0, threads: Optional[int] = None) -> Tuple[np.ndarray, str]: ...
def posterior(x: np.ndarray, y: Sequence[float], model: str = "logistic", sampler: str = "sgld", chains: int = 4,
              steps: int = 10000, warmup: Optional[int] = None, thin: Optional[int] = None,
              step_size: Optional[float] = None, batch: int = 128, decay: Optional[float] = None,
              prior_std: float = 10.0, noise_std: float = 1.0, standardize: bool = False, seed: int = 0,
              threads: Optional[int] = None) -> Tuple[np.ndarray, str]: ...
def likelihood(of: Any, data: np.ndarray, schedule: Optional[str] = None, sigma_min: Optional[float] = None,
               sigma_max: Optional[float] = None, t_eps: Optional[float] = None, solver: Optional[str] = None,
               rtol: Optional[float] = None, atol: Optional[float] = None, max_steps: Optional[int] = None,
               probes: Optional[int] = None, seed: int = 0, dequantize: bool = False,
               threads: Optional[int] = None) -> str: ...
