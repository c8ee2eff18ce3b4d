"""The zero-cost proxies: one score of an architecture at initialisation, higher = better.

Each proxy is a function of a `Probe` set to the architecture and a `Sample` (a batch of data or
none, a seeded generator, the loss), after the definitions of NASLib
(`naslib/predictors/utils/pruners/measures/`) and the papers cited in each docstring. BatchNorm
runs in training mode (statistics of the batch), as NASLib's measures do, except where a
docstring says otherwise; the executor's own statistics are never touched. "Layers" are the
weights of convolutions and linear layers (`probe.is_layer_weight`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional

import numpy as np
import torch

from ops import Relu
from supernet import Op, Tensor, lazy
from supernet.cost import architecture_cost

from .probe import Probe, is_layer_weight, normalises

JACOV_K = 1e-5  # NASLib's (and BayesWatch's) regulariser of the correlation eigenvalues
ZEN_ALPHA = 1e-2  # Zen-NAS's perturbation size (mixup_gamma)


@dataclasses.dataclass
class Sample:
    """What a proxy may use: inputs `x` and labels `y` (None for the data-free proxies), the batch
    size, a generator seeded for this architecture, and the loss of (logits, labels)."""

    x: Optional[torch.Tensor]
    y: Optional[torch.Tensor]
    batch_size: int
    generator: torch.Generator
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def params(probe: Probe, sample: Sample) -> float:
    """Trainable parameters of the architecture (every weight its active ops own, normalisation
    affines included; `supernet.cost`, as NASLib's `params`). A baseline, not a trained score."""
    return architecture_cost(probe.space, "params")


def flops(probe: Probe, sample: Sample) -> float:
    """Multiply-accumulates of one sample's forward pass (`supernet.cost`, as NASLib's `flops`)."""
    return architecture_cost(probe.space, "flops")


def _layer_leaves(weights: dict[Tensor, torch.Tensor]) -> list[Tensor]:
    layers = [t for t in weights if is_layer_weight(t)]
    for t in layers:
        weights[t].requires_grad_(True)
    return layers


def _gradients(out: torch.Tensor, leaves: list[torch.Tensor]) -> list[Optional[torch.Tensor]]:
    if not out.requires_grad or not leaves:  # nothing on the path depends on a layer
        return [None] * len(leaves)
    return list(torch.autograd.grad(out, leaves, allow_unused=True))


def synflow(probe: Probe, sample: Sample) -> float:
    """SynFlow (Tanaka et al. 2020, "Pruning neural networks without any data by iteratively
    conserving synaptic flow"; as a NAS proxy Abdelfattah et al. 2021, "Zero-Cost Proxies for
    Lightweight NAS"): with every weight replaced by its absolute value and an all-ones input of
    batch 1, R = sum of the outputs; the score is sum over layers of |theta * dR/dtheta|. Data-free.
    Run in double precision (R is a product over the depth and overflows float32 in deep
    networks) with BatchNorm removed (passed through), as NASLib's `synflow` (`bn=False`)."""
    weights = {t: v.abs().double() for t, v in probe.weights().items()}
    layers = _layer_leaves(weights)
    out = probe.run(torch.ones(probe.input_shape(1), dtype=torch.float64), weights, normalise=False)
    grads = _gradients(out.sum(), [weights[t] for t in layers])
    return float(sum(float((weights[t].detach() * g).abs().sum()) for t, g in zip(layers, grads) if g is not None))


def _loss_gradients(probe: Probe, sample: Sample) -> tuple[dict[Tensor, torch.Tensor], list[Tensor], list]:
    weights = probe.weights()
    layers = _layer_leaves(weights)
    loss = sample.loss(probe.run(sample.x, weights), sample.y)
    return weights, layers, _gradients(loss, [weights[t] for t in layers])


def snip(probe: Probe, sample: Sample) -> float:
    """SNIP (Lee et al. 2019, "SNIP: Single-shot network pruning based on connection
    sensitivity"; as a proxy Abdelfattah et al. 2021): sum over layers of |theta * dL/dtheta|, L the
    loss of one batch (|dL/dmask| of a multiplicative mask of ones, as NASLib computes it)."""
    weights, layers, grads = _loss_gradients(probe, sample)
    return float(sum(float((weights[t].detach() * g).abs().sum()) for t, g in zip(layers, grads) if g is not None))


def grad_norm(probe: Probe, sample: Sample) -> float:
    """Gradient norm (Abdelfattah et al. 2021): sum over layers of the Euclidean norm of dL/dW,
    L the loss of one batch (NASLib's `grad_norm`)."""
    _, _, grads = _loss_gradients(probe, sample)
    return float(sum(float(g.norm()) for g in grads if g is not None))


def fisher(probe: Probe, sample: Sample) -> float:
    """Fisher (Theis et al. 2018, "Faster gaze prediction with dense networks and Fisher
    pruning"; as a proxy Turner et al. 2020 "BlockSwap" and Abdelfattah et al. 2021): for every
    output channel c of every layer (a convolution's or linear op's output a, its loss gradient
    g), 0.5 * mean over the batch of (sum over positions of a * g)^2, summed over channels and
    layers. NASLib broadcasts each channel's value to the channel's weights before summing (so a
    channel counts fan-in times); this sums each channel once, the definition of the papers."""
    weights = probe.weights()
    layers = set(_layer_leaves(weights))
    outputs: list[torch.Tensor] = []

    def tap(op: Op, args: list, out: torch.Tensor) -> None:
        if any(isinstance(o, Tensor) and o in layers and o.owner is op for o in op.operands) and out.requires_grad:
            outputs.append(out)

    loss = sample.loss(probe.run(sample.x, weights, tap=tap), sample.y)
    total = 0.0
    for a, g in zip(outputs, _gradients(loss, outputs)):
        if g is not None:
            per_channel = (a.detach() * g).sum(dim=tuple(range(2, a.dim()))) if a.dim() > 2 else a.detach() * g
            total += float(per_channel.pow(2).mean(0).mul(0.5).sum())
    return total


def jacov(probe: Probe, sample: Sample) -> float:
    """Jacobian covariance (Mellor et al. 2021, "Neural Architecture Search without Training",
    first version; NASLib's `jacov`): J the gradient of the summed outputs with respect to each
    input of the batch, C the correlation matrix of the rows of J, v its eigenvalues; the score is
    -sum(log(v + k) + 1 / (v + k)), k = 1e-5. A network whose Jacobian rows are constant (no
    path from the input) has no correlations: it scores -inf, the worst."""
    x = sample.x.detach().clone().requires_grad_(True)
    out = probe.run(x, probe.weights())
    if not out.requires_grad:
        return -math.inf
    jacobian = torch.autograd.grad(out.sum(), x, allow_unused=True)[0]
    if jacobian is None:
        return -math.inf
    rows = jacobian.reshape(len(x), -1).double().numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = np.corrcoef(rows)
    if not np.all(np.isfinite(correlation)):
        return -math.inf
    v = np.clip(np.linalg.eigvalsh(correlation), 0.0, None)  # symmetric: real eigenvalues, rounding below 0 clipped
    return float(-np.sum(np.log(v + JACOV_K) + 1.0 / (v + JACOV_K)))


@torch.no_grad()
def nwot(probe: Probe, sample: Sample) -> float:
    """NASWOT (Mellor et al. 2021, "Neural Architecture Search without Training", ICML version;
    NASLib's `nwot`): each input of the batch gets a binary code, the signs (> 0) of the inputs of
    every ReLU; K[i, j] = number of units where the codes of i and j agree (N_A minus their Hamming
    distance); the score is log |det K|. -inf where K is singular (e.g. no ReLU on the path)."""
    kernel = torch.zeros(len(sample.x), len(sample.x), dtype=torch.float64)

    def tap(op: Op, args: list, out: torch.Tensor) -> None:
        if isinstance(op, Relu):
            code = (args[0].reshape(len(args[0]), -1) > 0).double()
            kernel.add_(code @ code.T).add_((1.0 - code) @ (1.0 - code).T)

    probe.run(sample.x, probe.weights(), tap=tap)
    return float(torch.linalg.slogdet(kernel)[1])


def _feature_map(probe: Probe) -> Optional[Op]:
    """The last op whose output has a spatial extent (an axis past N, C longer than 1): the
    features before the global pooling."""
    found = None
    for node in probe.nodes():
        if isinstance(node, Op):
            shape = lazy(node.shape())
            if len(shape) > 2 and any(s > 1 for s in shape[2:]):
                found = node
    return found


def _gaussian_weights(probe: Probe, generator: torch.Generator) -> dict[Tensor, torch.Tensor]:
    """Zen-NAS's initialisation: layers N(0, 1), normalisation affines weight 1 and bias 0 (the
    operands an op's `affine_axis` trait names), every other trainable weight (biases) 0."""
    weights = probe.weights()
    for t, v in weights.items():
        if not t.trainable:
            continue
        if is_layer_weight(t):
            weights[t] = torch.randn(v.shape, generator=generator)
        elif t.owner is not None and t.owner.traits.affine_axis is not None and t.name == "weight":
            weights[t] = torch.ones_like(v)
        else:
            weights[t] = torch.zeros_like(v)
    return weights


@torch.no_grad()
def zen(probe: Probe, sample: Sample) -> float:
    """Zen-score (Lin et al. 2021, "Zen-NAS: A Zero-Shot NAS for High-Performance Image
    Recognition"; NASLib's `zen`): with Gaussian weights (`_gaussian_weights`) and Gaussian
    inputs x, e of the batch size, f the feature map before the global pooling, the score is
    log(mean over the batch of sum |f(x) - f(x + 0.01 e)|) + sum over BatchNorm ops of
    log sqrt(mean over channels of the variance BatchNorm normalises x's batch by). BatchNorm in
    training mode; NASLib reads that variance from running_var after its two forwards at
    momentum 0.1 instead of from the batch. Data-free. -inf if f does not depend on the input."""
    weights = _gaussian_weights(probe, sample.generator)
    shape = probe.input_shape(sample.batch_size)
    x = torch.randn(shape, generator=sample.generator)
    mixed = x + ZEN_ALPHA * torch.randn(shape, generator=sample.generator)
    target = _feature_map(probe)
    features: list[torch.Tensor] = []
    log_scale: list[float] = []

    def tap(op: Op, args: list, out: torch.Tensor) -> None:
        if op is target:
            features.append(out)
        if normalises(op) and not features_of_mixed:
            axes = (0, *range(2, args[0].dim()))  # per channel, over the batch and positions
            variance = float(args[0].var(dim=axes, unbiased=False).mean())
            log_scale.append(0.5 * math.log(variance) if variance > 0 else -math.inf)

    features_of_mixed = False
    clean = probe.run(x, weights, tap=tap)
    features_of_mixed = True
    perturbed = probe.run(mixed, weights, tap=tap)
    if target is None:
        features = [clean, perturbed]
    distance = float((features[0] - features[1]).abs().reshape(len(x), -1).sum(1).mean())
    return (math.log(distance) if distance > 0 else -math.inf) + sum(log_scale)
