"""Loss recipes of the architecture families.

``compute_loss(recipe, out, batch)`` dispatches on the model's ``loss_recipe``:

- ``seg`` (most families): BCE (optionally weighted up near the outline) + soft dice on the
  logits, optionally + the Lovasz hinge (a convex surrogate of 1 - IoU); BCE on
  ``aux_logits`` (truth resized to their size, weight 0.4); focal loss on
  ``boundary_logits`` against edges of the truth (PortraitNet); all at the model's output
  resolution.
- ``matting`` (MMNet): mean of alpha L1, compositional L1 (image x alpha vs image x truth),
  gradient L1 (Sobel of alpha vs Sobel of truth), plus cross-entropy on ``aux_logits``.
- ``modnet`` (MODNet): semantic MSE of the 1/8 matte against the blurred, downsampled truth
  (x10), detail L1 inside the transition band of a trimap made by dilating/eroding the truth
  (x10), and matte L1 + compositional L1 with the band weighted 4x higher (x1).

``consistency_loss`` is PortraitNet's: KL divergence between the heat map of an image and
that of its texture/colour-augmented copy, the original's prediction as a fixed soft target.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

AUX_WEIGHT = 0.4
BOUNDARY_WEIGHT = 0.3  # PortraitNet's edge-loss weight is small: edges are a hint, not the task


def resize_to(t: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Resize a [B, 1, H, W] map to ``ref``'s spatial size (area when shrinking)."""
    if t.shape[-2:] == ref.shape[-2:]:
        return t
    if t.shape[-1] > ref.shape[-1]:
        return F.adaptive_avg_pool2d(t, ref.shape[-2:])
    return F.interpolate(t, size=ref.shape[-2:], mode="bilinear", align_corners=False)


def dice_loss(prob: torch.Tensor, truth: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - soft dice per image, averaged; prob and truth [B, 1, H, W] in [0, 1]."""
    inter = (prob * truth).sum((1, 2, 3))
    total = prob.sum((1, 2, 3)) + truth.sum((1, 2, 3))
    return (1 - (2 * inter + eps) / (total + eps)).mean()


def lovasz_hinge(logits: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Lovasz hinge (Berman et al. 2018) per image, averaged: the Lovasz extension of the
    foreground's Jaccard loss evaluated at the hinge errors, so it optimises IoU itself.

    Args:
        logits: [B, 1, H, W] logits.
        truth: [B, 1, H, W] in [0, 1], binarised at 0.5 (soft pseudo-labels included).

    At hinge errors of 0 or 1 (margins of 1 and 0) it equals 1 - IoU of the mask the
    logits give; its gradient weighs each pixel by how much it moves that IoU.
    """
    b = logits.shape[0]
    logits = logits.reshape(b, -1).float()
    labels = (truth.reshape(b, -1) > 0.5).float()
    errors = 1 - logits * (2 * labels - 1)
    errors, order = torch.sort(errors, dim=1, descending=True)
    labels = torch.gather(labels, 1, order)
    n_fg = labels.sum(1, keepdim=True)
    # Jaccard loss of the k worst pixels predicted wrong, k = 1..N; its increments are the
    # Lovasz extension's gradient (no union is ever empty: each prefix holds a pixel)
    jaccard = 1 - (n_fg - labels.cumsum(1)) / (n_fg + (1 - labels).cumsum(1))
    grad = torch.cat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], 1)
    return (F.relu(errors) * grad).sum(1).mean()


def mask_edges(truth: torch.Tensor, width: int = 3) -> torch.Tensor:
    """Binary edge band of a [B, 1, H, W] mask: dilation minus erosion with a width x width box."""
    pad = width // 2
    dil = F.max_pool2d(truth, width, 1, pad)
    ero = -F.max_pool2d(-truth, width, 1, pad)
    return ((dil - ero) > 0.5).float()


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Binary focal loss (Lin et al. 2017): BCE down-weighted where already confident."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = torch.exp(-bce)
    return ((1 - p_t) ** gamma * bce).mean()


def sobel(x: torch.Tensor) -> torch.Tensor:
    """Gradient magnitude of a [B, 1, H, W] map with 3x3 Sobel filters."""
    k = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device)
    kernels = torch.stack([k, k.t()])[:, None]  # [2, 1, 3, 3]
    g = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernels)
    return torch.sqrt(g.pow(2).sum(1, keepdim=True) + 1e-6)


def trimap_band(truth: torch.Tensor, width: int) -> torch.Tensor:
    """Transition band of a trimap (dilated minus eroded truth), [B, 1, H, W] in {0, 1}."""
    return mask_edges((truth > 0.5).float(), 2 * (width // 2) + 1)


def edge_band_width(truth: torch.Tensor) -> int:
    """Odd band width of about 2% of the diagonal: the band boundary IoU is scored in."""
    h, w = truth.shape[-2:]
    return 2 * max(1, round(0.02 * (h * h + w * w) ** 0.5 / 2)) + 1


def _seg_loss(out: dict, truth: torch.Tensor, edge_weight: float = 0.0,
              lovasz: float = 0.0) -> dict[str, torch.Tensor]:
    logits = out["logits"]
    weight = None
    if edge_weight > 0:  # pixels near the person's outline are the ones a mask gets wrong
        band = mask_edges((truth > 0.5).float(), edge_band_width(truth))
        weight = (1 + edge_weight * band) / (1 + edge_weight * band.mean())
    parts = {
        "bce": F.binary_cross_entropy_with_logits(logits, truth, weight=weight),
        "dice": dice_loss(torch.sigmoid(logits), truth),
    }
    if lovasz > 0:
        parts["lovasz"] = lovasz * lovasz_hinge(logits, truth)
    if "aux_logits" in out:
        t = resize_to(truth, out["aux_logits"])
        parts["aux"] = AUX_WEIGHT * F.binary_cross_entropy_with_logits(out["aux_logits"], t)
    if "boundary_logits" in out:
        t = mask_edges((resize_to(truth, out["boundary_logits"]) > 0.5).float())
        parts["boundary"] = BOUNDARY_WEIGHT * focal_loss(out["boundary_logits"], t)
    return parts


def _matting_loss(out: dict, truth: torch.Tensor, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
    alpha = torch.sigmoid(out["logits"])
    terms = [
        (alpha - truth).abs().mean(),
        (rgb * alpha - rgb * truth).abs().mean(),
        (sobel(alpha) - sobel(truth)).abs().mean(),
    ]
    parts = {"alpha": terms[0], "comp": terms[1], "grad": terms[2]}
    if "aux_logits" in out:
        t = resize_to(truth, out["aux_logits"])
        parts["aux"] = F.binary_cross_entropy_with_logits(out["aux_logits"], t)
    n = len(parts)
    return {k: v / n for k, v in parts.items()}  # the paper averages its terms


def _modnet_loss(out: dict, truth: torch.Tensor, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
    alpha = torch.sigmoid(out["logits"])
    band = trimap_band(truth, max(3, truth.shape[-1] // 32))
    parts = {}
    if "semantic_logits" in out:
        sem_t = F.avg_pool2d(resize_to(truth, out["semantic_logits"]), 3, 1, 1,
                             count_include_pad=False)  # a blurred, downsampled truth
        parts["semantic"] = 10 * F.mse_loss(torch.sigmoid(out["semantic_logits"]), sem_t)
    if "detail_logits" in out:
        d = torch.sigmoid(resize_to(out["detail_logits"], truth))
        parts["detail"] = 10 * ((d - truth).abs() * band).sum() / band.sum().clamp(min=1)
    weight = 1 + 3 * band  # the transition band counts 4x
    l1 = ((alpha - truth).abs() * weight).mean()
    comp = ((rgb * alpha - rgb * truth).abs() * weight).mean()
    parts["matte"] = l1 + comp
    return parts


def compute_loss(
    recipe: str, out: dict[str, torch.Tensor], truth: torch.Tensor, rgb: torch.Tensor | None = None,
    edge_weight: float = 0.0, lovasz: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and its named parts.

    Args:
        recipe: ``seg`` | ``matting`` | ``modnet`` (the model's ``loss_recipe``).
        out: the model's ``forward_train`` dict.
        truth: float32 [B, 1, H, W] alpha/mask in [0, 1] at the input size.
        rgb: float32 [B, 3, H, W] image in [0, 1] (needed by compositional terms).
        edge_weight: ``seg`` only: BCE weight added inside a band of 2% of the diagonal
            around the truth's outline (weights renormalised to mean 1); 0 = plain BCE.
        lovasz: ``seg`` only: weight of the Lovasz hinge term; 0 = off.
    """
    if recipe == "seg":
        parts = _seg_loss(out, truth, edge_weight, lovasz)
    elif recipe in ("matting", "modnet"):
        if rgb is None:
            raise ValueError(f"the {recipe!r} loss needs the RGB image")
        parts = (_matting_loss if recipe == "matting" else _modnet_loss)(out, truth, rgb)
    else:
        raise ValueError(f"unknown loss recipe {recipe!r}; expected seg, matting or modnet")
    total = sum(parts.values())
    return total, {k: float(v.detach()) for k, v in parts.items()}


def consistency_loss(
    logits: torch.Tensor, logits_aug: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """KL(p || q) per pixel between two-class heat maps of an image (p, a fixed target) and of
    its texture-augmented copy (q), averaged. Both inputs [B, 1, H, W] logits."""
    p = torch.sigmoid(logits.detach() / temperature).clamp(1e-6, 1 - 1e-6)
    logq = F.logsigmoid(logits_aug / temperature)
    log1mq = F.logsigmoid(-logits_aug / temperature)
    kl = p * (torch.log(p) - logq) + (1 - p) * (torch.log(1 - p) - log1mq)
    return kl.mean() * temperature**2
