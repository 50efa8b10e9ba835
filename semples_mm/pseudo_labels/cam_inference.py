"""Multi-scale + flip CAM inference."""
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
