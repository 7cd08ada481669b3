"""The YOLO loss (v3-style) for a one-scale head in `detect.head`'s output layout.

The head's raw output [B, A (5 + C), H, W] is read per anchor as (tx, ty, tw, th, obj, classes),
and decoded as `detect.postprocess.decode_float` does: centre ``(sigmoid(t) + g) * stride``, size
``anchor * exp(t)``. Anchor matching: each true box goes to the cell holding its centre and to the
anchor whose shape (w, h, centres shared) overlaps it most; a later box on the same cell and anchor
replaces an earlier one. Per matched (cell, anchor):

- box: binary cross-entropy of sigmoid(tx), sigmoid(ty) against the centre's offset in the cell, and
  squared error of tw, th against ``log(size / anchor)``, weighted by ``2 - w h / S^2`` (small
  boxes count more);
- objectness: binary cross-entropy against 1;
- classes: binary cross-entropy against the one-hot class (independent sigmoids, as decoded).

Every other (cell, anchor) is a negative for objectness (target 0) unless its decoded box overlaps
a true box by more than ``ignore_iou`` (then it counts neither way). The sum is divided by the
batch size; the parts are returned for the progress display.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class YoloLossWeights:
    """Multipliers of the loss parts, and the IoU above which a negative is ignored."""

    box: float = 1.0
    objectness: float = 1.0
    no_object: float = 1.0
    classes: float = 1.0
    ignore_iou: float = 0.5


def _iou_xyxy(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU [N, M] of [N, 4] and [M, 4] corner boxes."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(dim=1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(dim=1)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-9)


def _best_anchors(sizes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Index of the anchor whose shape overlaps each (w, h) most (centres shared)."""
    inter = torch.minimum(sizes[:, None, 0], anchors[None, :, 0]) * torch.minimum(sizes[:, None, 1], anchors[None, :, 1])
    union = sizes[:, 0:1] * sizes[:, 1:2] + (anchors[:, 0] * anchors[:, 1])[None, :] - inter
    return torch.argmax(inter / union, dim=1)


def yolo_loss(raw: torch.Tensor, targets: list[tuple[torch.Tensor, torch.Tensor]], anchors: torch.Tensor,
              stride: int, num_classes: int, weights: YoloLossWeights = YoloLossWeights()
              ) -> tuple[torch.Tensor, dict[str, float]]:
    """(loss, its parts) of head output ``raw`` [B, A (5 + C), H, W] for ``targets``: per image
    (boxes [N, 4] in input pixels, labels [N]); ``anchors`` [A, 2] (w, h) in input pixels."""
    batch, _, grid_h, grid_w = raw.shape
    count = anchors.shape[0]
    fields = 5 + num_classes
    p = raw.float().view(batch, count, fields, grid_h, grid_w).permute(0, 1, 3, 4, 2)  # [B, A, H, W, F]
    gy, gx = torch.meshgrid(torch.arange(grid_h), torch.arange(grid_w), indexing="ij")
    with torch.no_grad():
        cx = (torch.sigmoid(p[..., 0]) + gx) * stride
        cy = (torch.sigmoid(p[..., 1]) + gy) * stride
        w = anchors[:, 0].view(1, count, 1, 1) * torch.exp(p[..., 2].clamp(max=10))
        h = anchors[:, 1].view(1, count, 1, 1) * torch.exp(p[..., 3].clamp(max=10))
        decoded = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)
    positive = torch.zeros(batch, count, grid_h, grid_w, dtype=torch.bool)
    ignore = torch.zeros_like(positive)
    xy_target = torch.zeros(batch, count, grid_h, grid_w, 2)
    wh_target = torch.zeros(batch, count, grid_h, grid_w, 2)
    class_target = torch.zeros(batch, count, grid_h, grid_w, num_classes)
    box_weight = torch.zeros(batch, count, grid_h, grid_w)
    area = float(grid_h * stride * grid_w * stride)
    for b, (boxes, labels) in enumerate(targets):
        if len(boxes) == 0:
            continue
        boxes = boxes.float()
        ignore[b] = (_iou_xyxy(decoded[b].reshape(-1, 4), boxes).max(dim=1).values > weights.ignore_iou
                     ).view(count, grid_h, grid_w)
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        size = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1.0)
        best = _best_anchors(size, anchors)
        cell_x = (centre[:, 0] / stride).floor().clamp(0, grid_w - 1).long()
        cell_y = (centre[:, 1] / stride).floor().clamp(0, grid_h - 1).long()
        for i in range(len(boxes)):
            at = (b, int(best[i]), int(cell_y[i]), int(cell_x[i]))
            positive[at] = True
            xy_target[at] = torch.stack([centre[i, 0] / stride - cell_x[i], centre[i, 1] / stride - cell_y[i]]).clamp(0, 1)
            wh_target[at] = torch.log(size[i] / anchors[best[i]])
            class_target[at] = F.one_hot(labels[i].long(), num_classes).float()
            box_weight[at] = 2.0 - float(size[i, 0] * size[i, 1]) / area
    objectness = p[..., 4]
    obj_target = positive.float()
    negative = ~positive & ~ignore
    loss_obj = F.binary_cross_entropy_with_logits(objectness[positive], obj_target[positive], reduction="sum")
    loss_noobj = F.binary_cross_entropy_with_logits(objectness[negative], obj_target[negative], reduction="sum")
    pos = p[positive]
    bw = box_weight[positive]
    loss_xy = (F.binary_cross_entropy_with_logits(pos[:, 0:2], xy_target[positive], reduction="none").sum(1) * bw).sum()
    loss_wh = (((pos[:, 2:4] - wh_target[positive]) ** 2).sum(1) * bw).sum()
    loss_cls = F.binary_cross_entropy_with_logits(pos[:, 5:], class_target[positive], reduction="sum")
    parts = {"box": weights.box * (loss_xy + loss_wh), "obj": weights.objectness * loss_obj,
             "noobj": weights.no_object * loss_noobj, "cls": weights.classes * loss_cls}
    total = sum(parts.values()) / batch
    return total, {name: float(value.detach()) / batch for name, value in parts.items()}
