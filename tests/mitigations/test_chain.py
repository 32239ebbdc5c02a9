from dataclasses import dataclass

import torch

from w2s_helpers.mitigations import chain


@dataclass
class Head:
    rung: str
    w: torch.Tensor


class LineLab:
    """A stand-in lab: pools of 1-D features per rung, a 'fit' that records its inputs and returns
    a head whose margin is w * x."""

    def __init__(self):
        self.x = {"weak": {"w2s": torch.tensor([1.0, -2.0, 0.5, 3.0]), "gt": torch.tensor([2.0, -1.0, 0.0])},
                  "mid": {"w2s": torch.tensor([0.5, 1.0, -1.0, 2.0]), "gt": torch.tensor([1.0, -3.0, 2.0])}}
        self.calls = []

    def fit(self, rung, parts, seed, alpha=0.0, **kw):
        self.calls.append((rung, parts, seed, alpha, kw))
        return Head(rung, torch.tensor(2.0))

    def margins(self, fitted, pool="test"):
        return fitted.w * self.x[fitted.rung][pool]


def test_the_chain_labels_d_gt_with_an_intermediate_trained_on_the_weak_labels_of_d_w2s():
    lab = LineLab()
    weak = Head("weak", torch.tensor(1.0))
    w2s_idx, gt_idx = torch.tensor([3, 0]), torch.tensor([2, 0])
    mid, labels = chain.chain_labels(lab, weak, "mid", seed=7, w2s_idx=w2s_idx, gt_idx=gt_idx)
    (rung, parts, seed, alpha, kw), = lab.calls
    assert rung == "mid" and seed == 7 and alpha == 0.0 and kw["solver"] == "adam"
    pool, idx, soft = parts[0]
    assert pool == "w2s" and torch.equal(idx, w2s_idx)
    assert torch.allclose(soft, torch.sigmoid(torch.tensor([3.0, 1.0])))       # W's labels of D_w2s
    assert torch.allclose(labels, torch.sigmoid(2.0 * torch.tensor([2.0, 1.0])))  # I's labels of D_gt
    # the input-matched control: W's own labels of the same D_gt pairs
    assert torch.allclose(chain.direct_labels(lab, weak, gt_idx), torch.sigmoid(torch.tensor([0.0, 2.0])))
