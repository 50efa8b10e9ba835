"""CAM maps: min-max normalisation, and the one inference path that turns a
CAM network's raw maps into label-restricted CAMs at each image's original
size (validation, pseudo-mask export, visualisation and the benchmark all
use :class:`CAMInference`)."""
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from ..utils.known_keys import check_known_keys


#: The CAM inference settings a model's ``test_cfg`` may hold, with their
#: defaults: validation (``SemPLeS.predict``) reads them from there, and
#: pseudo-mask exports from there overridden by ``pseudo_label_cfg``.
CAM_TEST_DEFAULTS = dict(scales=(1.0, ), flip=False, eps=1e-5, amp=False,
                         bg_threshold=0.45)
#: The autocast dtype of each ``amp`` setting (False: none). True is bf16,
#: which keeps fp32's exponent range; 'fp16' is the authors' (their CAM
#: inference runs under torch.cuda.amp.autocast, fp16).
AMP_DTYPES = {True: torch.bfloat16, 'bf16': torch.bfloat16,
              'fp16': torch.float16}


def check_cam_settings(settings: dict, where: str) -> dict:
    """Type- and range-check CAM inference settings (any subset of
    :data:`CAM_TEST_DEFAULTS`' keys); returns them normalised (tuple of
    float scales, bool flags, float eps and threshold).

    Args:
        settings (dict): the values to check.
        where (str): the config key they came from, for the messages.
    """
    checked = dict(settings)

    def fail(key, wanted):
        raise ValueError(f'{where}.{key}={settings[key]!r}: {wanted}.')

    if 'scales' in checked:
        scales = checked['scales']
        if isinstance(scales, (int, float)) or not all(
                isinstance(s, (int, float)) and not isinstance(s, bool)
                and s > 0 for s in scales) or not len(scales):
            fail('scales', 'need a non-empty list of positive numbers, '
                 'e.g. (1.0, 1.2)')
        checked['scales'] = tuple(float(s) for s in scales)
    if 'flip' in checked and not isinstance(checked['flip'], bool):
        fail('flip', 'need True or False')
    if 'amp' in checked and checked['amp'] is not False and \
            checked['amp'] not in AMP_DTYPES:
        fail('amp', "need False, True (= 'bf16'), 'bf16' or 'fp16'")
    if 'eps' in checked:
        if isinstance(checked['eps'], bool) or not isinstance(
                checked['eps'], (int, float)) or checked['eps'] <= 0:
            fail('eps', 'need a positive number, e.g. 1e-5')
        checked['eps'] = float(checked['eps'])
    if 'bg_threshold' in checked:
        value = checked['bg_threshold']
        if isinstance(value, bool) or not isinstance(
                value, (int, float)) or not 0 <= value <= 1:
            fail('bg_threshold', 'need a number in [0, 1], e.g. 0.45')
        checked['bg_threshold'] = float(value)
    return checked


#: Every key a CAM model's ``test_cfg`` may hold: the CAM inference
#: settings, and whether the CAMs are restricted to the image labels.
CAM_TEST_KEYS = tuple(CAM_TEST_DEFAULTS) + ('use_gt_labels', )


def cam_test_settings(test_cfg: dict, where: str = 'model.test_cfg'
                      ) -> Tuple['CAMInference', float]:
    """The CAM inference and background threshold a ``test_cfg`` sets
    (defaults :data:`CAM_TEST_DEFAULTS`), checked; a key outside
    :data:`CAM_TEST_KEYS` (a typo) is refused, naming the closest known."""
    check_known_keys(test_cfg, CAM_TEST_KEYS, where)
    settings = check_cam_settings(
        {k: (test_cfg or {}).get(k, v) for k, v in CAM_TEST_DEFAULTS.items()},
        where)
    threshold = settings.pop('bg_threshold')
    return CAMInference(**settings), threshold


def normalize_cams(cams: Tensor,
                   labels: Optional[Tensor] = None,
                   size: Optional[Sequence[int]] = None,
                   eps: float = 1e-5,
                   align_corners: bool = False) -> Tensor:
    """Turn raw CAMs into per-class maps in [0, 1].

    ReLU, bilinear upsampling to ``size``, per-map min-max normalisation
    ``(M - min) / (max - min + eps)``, and zero maps for classes absent from
    ``labels``. Differentiable (the matching phases backpropagate through
    it).

    Args:
        cams (Tensor): raw CAMs, (B, K, h, w), K foreground classes.
        labels (Tensor, optional): multi-hot image labels, (B, K). None keeps
            every class.
        size (Sequence[int], optional): output (H, W); None keeps (h, w).
        eps (float): keeps the division finite for flat maps; SemPLeS uses
            0.1 when training masks and 1e-4 when learning prompts.
        align_corners (bool): of the bilinear upsampling (the SemPLeS
            authors' training masks use True). Defaults to False.

    Returns:
        Tensor: (B, K, H, W) in [0, 1).
    """
    if cams.dim() != 4:
        raise ValueError(f'normalize_cams: cams must be (B, K, h, w), got '
                         f'shape {tuple(cams.shape)}')
    cams = F.relu(cams)
    if size is not None and tuple(size) != tuple(cams.shape[-2:]):
        cams = F.interpolate(
            cams, size=tuple(size), mode='bilinear',
            align_corners=align_corners)
    flat = cams.flatten(2)
    cam_min = flat.min(dim=2)[0][..., None, None]
    cam_max = flat.max(dim=2)[0][..., None, None]
    cams = (cams - cam_min) / (cam_max - cam_min + eps)
    if labels is not None:
        if labels.shape != cams.shape[:2]:
            raise ValueError(
                f'normalize_cams: labels shape {tuple(labels.shape)} does not '
                f'match the CAMs (B, K) = {tuple(cams.shape[:2])}')
        cams = cams * (labels > 0).to(cams.dtype)[..., None, None]
    return cams


def with_background(norm_cams: Tensor, bg_threshold: float) -> Tensor:
    """Put a constant background score in front of the class maps.

    Args:
        norm_cams (Tensor): (B, K, H, W) normalised CAMs.
        bg_threshold (float): the background score t.

    Returns:
        Tensor: (B, K + 1, H, W); its argmax is background (0) unless some
        class scores above t (ties go to background), else class k + 1.
    """
    background = norm_cams.new_full(
        (norm_cams.shape[0], 1, *norm_cams.shape[2:]), bg_threshold)
    return torch.cat([background, norm_cams], dim=1)


def multi_scale_flip_cams(predict_cams: Callable[[Tensor], Tensor],
                          inputs: Tensor,
                          scales: Sequence[float] = (1.0, ),
                          flip: bool = True,
                          out_size: Optional[Sequence[int]] = None) -> Tensor:
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
        Tensor: (B, K, H_out, W_out) float32, non-negative.
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


def unpad(inputs: Tensor, metainfo: dict) -> Tensor:
    """Crop the padding a data preprocessor added (``padding_size`` =
    left, right, top, bottom in the metainfo): (N, 3, H_pad, W_pad) ->
    (N, 3, H, W)."""
    padding = metainfo.get('padding_size')
    if not padding:
        return inputs
    left, right, top, bottom = padding
    height, width = inputs.shape[-2:]
    return inputs[..., top:height - bottom, left:width - right]


class CAMInference:
    """Label-restricted CAMs at each image's original size.

    Per image: CAMs over ``scales`` x (image, and its flip if ``flip``),
    ReLU'd, upsampled to the original size and summed
    (:func:`multi_scale_flip_cams`), then min-max normalised per class with
    ``eps`` and zeroed for the classes absent from the labels
    (:func:`normalize_cams`); the maps of absent classes, zero in the end,
    are left out of that full-size work. Images that share their input and
    original sizes go through the network together; an image's CAMs do not
    depend on its companions mathematically, but kernels may round
    differently for another batch shape.

    Args:
        scales (Sequence[float]): input scales (the authors: 1.0 and 1.2
            for VOC, 1.0, 0.8 and 1.2 for COCO).
        flip (bool): add horizontal flips.
        eps (float): normalisation epsilon.
        amp (bool | str): run the network under autocast: True or 'bf16'
            bfloat16, 'fp16' float16 (the authors' precision); the maps are
            summed and normalised in float32. bf16 keeps fp32's exponent
            range, so large activations cannot overflow as in fp16.
    """

    def __init__(self, scales: Sequence[float] = (1.0, ), flip: bool = False,
                 eps: float = 1e-5, amp: Union[bool, str] = False):
        self.scales = tuple(float(s) for s in scales)
        self.flip = bool(flip)
        self.eps = float(eps)
        if amp is not False and amp not in AMP_DTYPES:
            raise ValueError(f"CAMInference: amp={amp!r}; use False, True "
                             "(= 'bf16'), 'bf16' or 'fp16'.")
        self.amp = amp
        if not self.scales or min(self.scales) <= 0:
            raise ValueError('CAMInference: scales must be positive, got '
                             f'{scales!r}')
        if self.eps <= 0:
            raise ValueError(f'CAMInference: eps must be > 0, got {eps!r}')

    def _network(self, predict_cams):
        if not self.amp:
            return predict_cams

        def predict(inputs, classes):
            with torch.autocast(inputs.device.type,
                                dtype=AMP_DTYPES[self.amp]):
                return predict_cams(inputs, classes)

        return predict

    def __call__(self, predict_cams: Callable[[Tensor, Tensor], Tensor],
                 images: Sequence[Tensor],
                 out_sizes: Sequence[Tuple[int, int]],
                 labels: Tensor) -> List[Tensor]:
        """Infer the CAMs of several images.

        Args:
            predict_cams (callable): ``(inputs (N, 3, h, w), classes (K,)
                bool mask) -> (N, K', h', w')`` raw CAMs of the K' classes
                of the mask (the images' present classes), as
                ``CAMSegmentor.predict_cams``.
            images (Sequence[Tensor]): per image (1, 3, H_i, W_i), normalised
                and without padding.
            out_sizes (Sequence[tuple]): per image its original (H, W).
            labels (Tensor): (B, K) multi-hot labels restricting the maps.

        Returns:
            list[Tensor]: per image (K, H_ori, W_ori) in [0, 1).
        """
        network = self._network(predict_cams)
        groups = {}  # (input size, output size) -> image indices
        for index, (image, out_size) in enumerate(zip(images, out_sizes)):
            key = (tuple(image.shape[-2:]), tuple(out_size))
            groups.setdefault(key, []).append(index)
        results: List[Optional[Tensor]] = [None] * len(images)
        num_classes = labels.shape[1]
        for (_, out_size), indices in groups.items():
            group_labels = labels[indices].to(images[indices[0]].device)
            # absent classes' maps are zero in the end: the network (as far
            # as it can) and the full-size work (upsampling, normalising)
            # compute the present ones only
            is_present = (group_labels > 0).any(0)
            present = is_present.nonzero()[:, 0]
            if not len(present):  # no class at all: zero maps
                for i in indices:
                    results[i] = images[i].new_zeros(num_classes, *out_size)
                continue

            def present_maps(inputs):
                cams = network(inputs, is_present)
                if cams.shape[1] != len(present):
                    raise ValueError(
                        f'the CAM network gave {cams.shape[1]} class maps '
                        f'for the {len(present)} present classes of a '
                        f'{num_classes}-class label mask')
                return cams

            cams = multi_scale_flip_cams(
                present_maps, torch.cat([images[i] for i in indices]),
                scales=self.scales, flip=self.flip, out_size=out_size)
            norms = normalize_cams(cams, group_labels[:, present],
                                   eps=self.eps)
            for i, norm in zip(indices, norms):
                results[i] = norm.new_zeros(num_classes, *out_size)
                results[i][present] = norm
        return results

    def __repr__(self) -> str:
        return (f'CAMInference(scales={self.scales}, flip={self.flip}, '
                f'eps={self.eps}, amp={self.amp})')
