"""The reward-model students of chapter 5: every pipeline (the direct weak-to-strong one and each
mitigation) in every conflict setting, saved through :mod:`w2s_helpers.core.results`.

A pipeline is named by its training data: (pool, indices, soft labels P(chosen preferred)), and
optionally a fit of its own (the auxiliary confidence loss). The direct pipeline's runs are
chapters 2-3's exactly (same indices, helpful pairs and keys), so they are read, not retrained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from w2s_helpers.core import results
from w2s_helpers.mitigations import filtering

Data = tuple[str, torch.Tensor, torch.Tensor]  # (pool, indices into it, soft labels [n])


@dataclass(frozen=True)
class Setting:
    """One conflict setting: ``kind`` "no_conflict", "explicit" or "implicit"."""

    kind: str
    alpha: float = 0.0
    helpful_share: float = 0.0

    @property
    def name(self) -> str:
        return {"explicit": f"explicit α={self.alpha:g}", "implicit": f"implicit {self.helpful_share:.0%}"}.get(
            self.kind, self.kind)


@dataclass
class RewardPipelines:
    """Students of one reward lab, saved and reloaded (``lab``: a :class:`w2s_helpers.rewards.lab.Lab`)."""

    lab: object
    weak_n: int
    settings: Sequence[Setting]
    _weak: dict = field(default_factory=dict)

    def common(self) -> dict[str, object]:
        lab = self.lab
        return dict(regime=lab.regime, optimizer="adam", profile=lab.profile.name, precision=lab.precision,
                    data_hash=lab.data_hash, fit=lab.fit_hash)

    def weak_model(self, rung: str, seed: int):
        """The weak ceiling W: ``rung`` on the seed's first ``weak_n`` D_gt pairs (fitted once)."""
        if (rung, seed) not in self._weak:
            self._weak[rung, seed] = self.lab.ceiling(rung, seed, self.weak_n)
        return self._weak[rung, seed]

    def ceiling(self, rung: str, seed: int, weak: bool) -> dict[str, np.ndarray]:
        """A ceiling's saved test vectors (chapters 1-3's keys): the weak one on ``weak_n`` GT pairs."""
        lab = self.lab
        n = self.weak_n if weak else 0
        cfg = results.RunConfig(role="weak" if weak else "strong", model=rung, regime=lab.regime, weak_n=n,
                                seed=seed, profile=lab.profile.name, precision=lab.precision,
                                data_hash=lab.data_hash, fit=lab.fit_hash)
        model = (lambda: self.weak_model(rung, seed)) if weak else (lambda: lab.ceiling(rung, seed))
        return results.load_or_run(cfg, lambda: lab.margins(model()).numpy())

    def parts(self, data: Data, setting: Setting, seed: int) -> list:
        """The student's training parts: the data, plus ground-truth helpful pairs in the implicit
        setting (as many as keep its helpful share, chosen as chapter 2 chooses them)."""
        out = [data]
        if setting.kind == "implicit":
            n_pool = len(self.lab.pools["helpful"])
            n_help = filtering.helpful_count(len(data[1]), setting.helpful_share, available=n_pool)
            h_idx = torch.randperm(n_pool, generator=torch.Generator().manual_seed(seed))[:n_help]
            out.append(("helpful", h_idx, 1.0))
        return out

    def student(self, weak: str, strong: str, seed: int, setting: Setting, data: Data, mitigation: str = "",
                fit: Callable | None = None, kind: str | None = None) -> dict[str, np.ndarray]:
        """One student's saved test vectors (``delta``, ``correct``), trained if missing.

        mitigation: "" for the direct pipeline (chapter 2's runs), else the pipeline's name.
        fit:        fit(parts, alpha) -> fitted model; default ``lab.fit`` with chapter 2's settings.
        kind:       the saved ``setting`` field (default ``setting.kind``; "twin" for the floor)."""
        lab = self.lab
        cfg = results.RunConfig(role="student", model=strong, weak=weak, setting=kind or setting.kind,
                                alpha=setting.alpha, helpful_share=setting.helpful_share, weak_n=self.weak_n,
                                seed=seed, mitigation=mitigation, **self.common())
        fit = fit or (lambda parts, alpha: lab.fit(strong, parts, seed=seed, alpha=alpha, solver="adam",
                                                   score=("test",)))
        train = lambda: lab.margins(fit(self.parts(data, setting, seed), setting.alpha)).numpy()
        return results.load_or_run(cfg, train)

    def pipeline(self, weak: str, strong: str, seed: int, data: Data, mitigation: str = "",
                 fit: Callable | None = None) -> dict[str, dict[str, np.ndarray]]:
        """{setting name: saved vectors} for every setting of one pipeline (empty data: {})."""
        if len(data[1]) == 0:
            return {}
        return {s.name: self.student(weak, strong, seed, s, data, mitigation, fit) for s in self.settings}

    def twin(self, weak: str, strong: str, seed: int) -> dict[str, np.ndarray]:
        """The floor: chapter 3's second no-conflict student, on another draw of D_w2s."""
        idx = self.lab.train_idx("w2s", seed + 200)
        labels = torch.sigmoid(self.lab.margins(self.weak_model(weak, seed), "w2s")[idx])
        return self.student(weak, strong, seed, Setting("no_conflict"), ("w2s", idx, labels), kind="twin")
