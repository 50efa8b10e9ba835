"""Multi-scale + flip CAM inference and the CAM -> class-id conversion."""
import torch
import torch.nn.functional as F


def multi_scale_flip_cams(predict_cams, inputs, scales=(1.0, ), flip=True,
                          out_size=None):
    """Sum of ReLU'd CAMs over input scales and horizontal flips.

    For each scale the normalised input is resized (bilinear), stacked with
    its horizontal flip into one batch, and passed to ``predict_cams``; the
    CAMs are ReLU'd, upsampled (bilinear) to ``out_size``, the flipped half
    is flipped back, and everything is summed.

    Args:
        predict_cams (callable): (N, 3, h_in, w_in) -> (N, K, h, w) raw CAMs.
        inputs (Tensor): (B, 3, H, W) normalised images.
        scales (Sequence[float]): input scales; 1.0 keeps the input as is.
        flip (bool): add the horizontal flip of every scale.
        out_size (tuple[int, int], optional): (H_out, W_out) of the result;
            defaults to (H, W).

    Returns:
        Tensor: (B, K, H_out, W_out) float, non-negative.
    """
    if not scales:
        raise ValueError('scales must name at least one input scale, got '
                         f'{scales!r}')
    batch_size, _, height, width = inputs.shape
    out_size = tuple(out_size) if out_size is not None else (height, width)
    total = None
    for scale in scales:
        if scale <= 0:
            raise ValueError(f'scales must be positive, got {scale} in '
                             f'{tuple(scales)}')
        if scale == 1.0:
            scaled = inputs
        else:
            size = (max(1, round(height * scale)),
                    max(1, round(width * scale)))
            scaled = F.interpolate(
                inputs, size=size, mode='bilinear', align_corners=False)
        if flip:
            scaled = torch.cat([scaled, scaled.flip(-1)], dim=0)
        cams = F.interpolate(
            predict_cams(scaled).float().relu(), size=out_size,
            mode='bilinear', align_corners=False)
        if flip:
            cams = cams[:batch_size] + cams[batch_size:].flip(-1)
        total = cams if total is None else total + cams
    return total


def normalize_cams(cams, class_labels, eps=1e-5):
    """Zero absent classes, then min-max normalise every map to [0, 1).

    ``(M - min) / (max - min + eps)`` per (image, class) map; absent classes
    stay zero.

    Args:
        cams (Tensor): (B, K, H, W) CAMs.
        class_labels (Tensor): (B, K) multi-hot image labels.
        eps (float): keeps flat maps finite.

    Returns:
        Tensor: (B, K, H, W) normalised CAMs.
    """
    if eps <= 0:
        raise ValueError(f'eps must be positive (a flat map divides by it), '
                         f'got {eps}')
    present = (class_labels > 0)[:, :, None, None]
    flat = cams.flatten(2)
    low = flat.min(dim=2).values[:, :, None, None]
    high = flat.max(dim=2).values[:, :, None, None]
    return torch.where(present, (cams - low) / (high - low + eps),
                       torch.zeros_like(cams))


def cams_to_labels(norm_cams, bg_threshold):
    """Argmax over [background score, class CAMs].

    Args:
        norm_cams (Tensor): (B, K, H, W) normalised CAMs.
        bg_threshold (float): the constant background score ``t``; a pixel
            whose best class score does not exceed ``t`` is background.

    Returns:
        Tensor: (B, H, W) int64 class ids in 0..K (0 background, k+1 for
        CAM channel k).
    """
    background = norm_cams.new_full(
        (norm_cams.shape[0], 1) + tuple(norm_cams.shape[2:]), bg_threshold)
    return torch.cat([background, norm_cams], dim=1).argmax(dim=1)
