"""Draws the images of the synthetic world and their class-id masks.

Every object class has its own shape and colour, and its own background
*context* (boats on water, planes in the sky, ...). The class and context
lists are module constants; a seed only changes the instances, so one small
CLIP serves every seed. ``SyntheticRenderer.render`` is the single drawing
routine: the world generator and the CLIP pre-training captions both use it.
"""
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

SYNTHETIC_CLASSES = ('boat', 'plane', 'train', 'cow', 'bird')
SYNTHETIC_CONTEXTS = ('water', 'sky', 'rails', 'grass', 'trees')
CONTEXT_OF_CLASS = dict(zip(SYNTHETIC_CLASSES, SYNTHETIC_CONTEXTS))

# The plain ground of object-only images: ImageNet's mean colour (the data
# preprocessor's mean), so a masked-out region (mean colour after
# normalisation) looks like the ground the CLIP saw in pre-training.
GREY_GROUND = (124, 116, 104)

# Reference colours (RGB) of the object classes; each instance is jittered.
_CLASS_COLOURS = {
    'boat': (205, 35, 35),
    'plane': (235, 205, 35),
    'train': (135, 55, 170),
    'cow': (235, 232, 225),
    'bird': (245, 125, 25),
}
# Contexts anchored to the top of the image; the others rise from the bottom.
_TOP_CONTEXTS = ('sky', 'trees')


class _Painter:
    """Draws the parts of one object into the image and the mask at once.

    Shapes are given in object coordinates (u, v) in [-0.5, 0.5], scaled by
    the object size and mirrored when ``flip`` is set.
    """

    def __init__(self, image, mask, mask_value, centre, size, flip):
        self.image = image
        self.mask = mask
        self.mask_value = int(mask_value)
        self.cx, self.cy = centre
        self.size = size
        self.sign = -1.0 if flip else 1.0

    def _point(self, u, v):
        return (int(round(self.cx + self.sign * u * self.size)),
                int(round(self.cy + v * self.size)))

    def polygon(self, points, colour, in_mask=True):
        pts = np.array([self._point(u, v) for u, v in points], np.int32)
        cv2.fillPoly(self.image, [pts], colour)
        if in_mask:
            cv2.fillPoly(self.mask, [pts], self.mask_value)

    def rect(self, u0, v0, u1, v1, colour, in_mask=True):
        self.polygon([(u0, v0), (u1, v0), (u1, v1), (u0, v1)], colour,
                     in_mask)

    def ellipse(self, u, v, ru, rv, colour, in_mask=True):
        centre = self._point(u, v)
        axes = (max(1, int(round(ru * self.size))),
                max(1, int(round(rv * self.size))))
        cv2.ellipse(self.image, centre, axes, 0, 0, 360, colour, -1)
        if in_mask:
            cv2.ellipse(self.mask, centre, axes, 0, 0, 360, self.mask_value,
                        -1)


def _shade(colour, factor):
    return tuple(int(np.clip(c * factor, 0, 255)) for c in colour)


def _mix(colour, other, weight):
    return tuple(int(round((1 - weight) * c + weight * o))
                 for c, o in zip(colour, other))


def _draw_boat(p: _Painter, colour, rng):
    p.polygon([(-0.5, 0.12), (0.5, 0.12), (0.3, 0.45), (-0.3, 0.45)], colour)
    p.rect(-0.04, -0.45, 0.03, 0.14, _shade(colour, 0.55))
    p.polygon([(0.07, -0.42), (0.07, 0.06), (0.42, 0.06)],
              _mix(colour, (255, 255, 255), 0.55))


def _draw_plane(p: _Painter, colour, rng):
    p.ellipse(0.0, 0.0, 0.5, 0.1, colour)
    wing = _shade(colour, 0.85)
    p.polygon([(-0.06, -0.05), (0.14, -0.05), (-0.1, -0.45), (-0.22, -0.45)],
              wing)
    p.polygon([(-0.06, 0.05), (0.14, 0.05), (-0.1, 0.45), (-0.22, 0.45)],
              wing)
    p.polygon([(-0.5, 0.0), (-0.36, 0.0), (-0.44, -0.22), (-0.5, -0.22)],
              wing)


def _draw_train(p: _Painter, colour, rng):
    p.rect(-0.5, -0.28, 0.5, 0.24, colour)
    p.rect(0.18, -0.45, 0.5, -0.27, _shade(colour, 0.8))
    window = _mix(colour, (250, 250, 200), 0.6)
    for u in (-0.4, -0.18, 0.04, 0.26):
        p.rect(u, -0.18, u + 0.14, -0.02, window, in_mask=False)
    wheel = (30, 30, 30)
    for u in (-0.36, -0.12, 0.12, 0.36):
        p.ellipse(u, 0.32, 0.1, 0.1, wheel)


def _draw_cow(p: _Painter, colour, rng):
    leg = _shade(colour, 0.7)
    for u in (-0.27, -0.15, 0.13, 0.25):
        p.rect(u, 0.05, u + 0.07, 0.42, leg)
    p.ellipse(0.0, 0.0, 0.36, 0.2, colour)
    p.ellipse(0.38, -0.14, 0.12, 0.1, colour)
    spot = (35, 30, 30)
    for _ in range(int(rng.integers(2, 5))):
        u = float(rng.uniform(-0.25, 0.22))
        v = float(rng.uniform(-0.1, 0.08))
        p.ellipse(u, v, float(rng.uniform(0.05, 0.09)),
                  float(rng.uniform(0.04, 0.07)), spot, in_mask=False)


def _draw_bird(p: _Painter, colour, rng):
    wing = _shade(colour, 0.8)
    p.polygon([(-0.12, 0.02), (0.1, 0.02), (-0.05, -0.45)], wing)
    p.polygon([(-0.2, 0.06), (-0.46, -0.06), (-0.46, 0.18)], wing)
    p.ellipse(0.0, 0.08, 0.24, 0.13, colour)
    p.ellipse(0.24, -0.04, 0.1, 0.1, colour)
    p.polygon([(0.32, -0.07), (0.46, -0.02), (0.32, 0.02)], (60, 50, 30))


_DRAW_CLASS = {
    'boat': _draw_boat,
    'plane': _draw_plane,
    'train': _draw_train,
    'cow': _draw_cow,
    'bird': _draw_bird,
}


class SyntheticRenderer:
    """Renders images of the synthetic world and their class-id masks.

    Args:
        image_size (int): Side of the square images. Object sizes and texture
            frequencies scale with it (objects 12-28 px wide at 64 px).

    Example:
        >>> renderer = SyntheticRenderer(64)
        >>> rng = np.random.default_rng(0)
        >>> image, mask = renderer.render(rng, objects=[0], context=0)
        >>> image.shape, mask.shape  # (64, 64, 3) uint8, (64, 64) uint8
    """

    classes = SYNTHETIC_CLASSES
    contexts = SYNTHETIC_CONTEXTS

    def __init__(self, image_size: int = 64):
        if image_size < 16:
            raise ValueError(f'image_size={image_size} is too small to draw '
                             'the objects; use 16 or more (64 is the default).')
        self.image_size = int(image_size)
        self.scale = self.image_size / 64.0

    # -- backgrounds -------------------------------------------------------
    def _plain_ground(self, rng, grey_background):
        size = self.image_size
        if grey_background:
            colour = np.array(GREY_GROUND, np.float32)
        else:
            # Low-saturation ground: never mistakable for a context.
            grey = rng.uniform(95.0, 195.0)
            colour = grey + rng.uniform(-8.0, 8.0, size=3)
        return np.broadcast_to(colour, (size, size, 3)).astype(np.float32)

    def _band_mask(self, rng, context_name):
        """Bool (H, W): where the context lies; 40-100 % of the rows."""
        size = self.image_size
        fraction = rng.uniform(0.4, 1.0)
        x = np.arange(size, dtype=np.float32)
        wobble = rng.uniform(0.0, 2.0 * self.scale) * np.sin(
            2 * np.pi * x / rng.uniform(20, 40) / self.scale +
            rng.uniform(0, 2 * np.pi))
        y = np.arange(size, dtype=np.float32)[:, None]
        if context_name in _TOP_CONTEXTS:
            return y < fraction * size + wobble[None, :]
        return y >= (1.0 - fraction) * size + wobble[None, :]

    def _texture(self, rng, context_name, band):
        """Float (H, W, 3) RGB texture of one context (valid inside band)."""
        size, scale = self.image_size, self.scale
        y = np.arange(size, dtype=np.float32)[:, None]
        x = np.arange(size, dtype=np.float32)[None, :]
        jitter = rng.uniform(-12, 12, size=3)
        if context_name == 'water':
            base = np.array((30, 90, 170)) + jitter
            phase = 1.5 * np.sin(2 * np.pi * x / (rng.uniform(14, 24) * scale)
                                 + rng.uniform(0, 2 * np.pi))
            wave = np.sin(2 * np.pi * y / (rng.uniform(4, 7) * scale) + phase)
            tex = base + wave[..., None] * np.array((22, 30, 38))
        elif context_name == 'sky':
            base = np.array((130, 185, 235)) + jitter
            tex = base + (y / size)[..., None] * np.array((40, 30, 12))
            tex = np.ascontiguousarray(np.broadcast_to(tex, (size, size, 3)))
            rows = np.flatnonzero(band.any(axis=1))
            for _ in range(int(rng.integers(2, 5))):
                centre = (int(rng.integers(0, size)),
                          int(rng.integers(rows.min(), rows.max() + 1)))
                axes = (int(rng.uniform(5, 11) * scale),
                        int(rng.uniform(2, 4) * scale))
                cv2.ellipse(tex, centre, axes, 0, 0, 360, (245, 245, 250), -1)
        elif context_name == 'rails':
            base = np.array((128, 116, 100)) + jitter
            tex = base + rng.normal(0, 12, size=(size, size, 1))
            rows = np.flatnonzero(band.any(axis=1))
            top, height = rows.min(), rows.max() + 1 - rows.min()
            rail_a = int(top + 0.3 * height)
            rail_b = int(top + 0.7 * height)
            period = max(4, int(round(rng.uniform(6, 9) * scale)))
            offset = int(rng.integers(0, period))
            sleeper = (x.astype(int) + offset) % period < max(2, int(2 * scale))
            between = (y >= rail_a - 2 * scale) & (y <= rail_b + 2 * scale)
            tex = np.where((sleeper & between)[..., None],
                           np.array((105, 72, 40)), tex)
            thick = max(1, int(round(1.5 * scale)))
            for row in (rail_a, rail_b):
                tex[max(0, row - thick):row + thick] = (70, 70, 78)
        elif context_name == 'grass':
            base = np.array((62, 145, 45)) + jitter
            streak = max(2, int(4 * scale))
            coarse = rng.normal(0, 1, size=(size // streak + 1, size, 1))
            blades = np.repeat(coarse, streak, axis=0)[:size]
            tex = base + blades * np.array((14, 26, 10))
            tex = tex + rng.normal(0, 5, size=(size, size, 1))
        elif context_name == 'trees':
            base = np.array((25, 75, 32)) + jitter
            tex = np.ascontiguousarray(
                np.broadcast_to(base, (size, size, 3)), np.float32)
            rows = np.flatnonzero(band.any(axis=1))
            bottom = rows.max()
            for _ in range(int(rng.integers(2, 4))):
                u = int(rng.integers(0, size))
                half = max(1, int(1.5 * scale))
                tex[:bottom + 1, max(0, u - half):u + half] = (90, 60, 30)
            for _ in range(int(14 * scale * scale) + 6):
                centre = (int(rng.integers(0, size)),
                          int(rng.integers(0, max(1, bottom - 3 * scale))))
                radius = int(rng.uniform(3, 8) * scale)
                green = (float(rng.uniform(30, 70)), float(rng.uniform(95, 140)),
                         float(rng.uniform(30, 55)))
                cv2.circle(tex, centre, radius, green, -1)
        else:
            raise KeyError(f'unknown context {context_name!r}; expected one '
                           f'of {SYNTHETIC_CONTEXTS}')
        return np.broadcast_to(tex, (size, size, 3)).astype(np.float32)

    # -- objects -------------------------------------------------------------
    def _object_colour(self, rng, class_name):
        colour = np.array(_CLASS_COLOURS[class_name], np.float32)
        colour = colour * rng.uniform(0.88, 1.1) + rng.uniform(-15, 15, 3)
        return tuple(float(c) for c in np.clip(colour, 0, 255))

    def _place(self, rng, sizes):
        """Centres for objects of the given sizes, avoiding overlap."""
        size = self.image_size
        boxes, centres = [], []
        for obj_size in sizes:
            half = obj_size / 2.0
            for _attempt in range(30):
                cx = rng.uniform(half, size - half)
                cy = rng.uniform(half, size - half)
                box = (cx - half, cy - half, cx + half, cy + half)
                if all(box[0] >= b[2] or box[2] <= b[0] or box[1] >= b[3]
                       or box[3] <= b[1] for b in boxes):
                    break
            boxes.append(box)
            centres.append((cx, cy))
        return centres

    def render(self,
               rng: np.random.Generator,
               objects: Sequence[int],
               context: Optional[int],
               grey_background: bool = False
               ) -> Tuple[np.ndarray, np.ndarray]:
        """Draw one image.

        Args:
            rng (np.random.Generator): The only source of randomness; the
                same generator state gives the same image.
            objects (Sequence[int]): Class indices 0..K-1 of the objects to
                draw, in drawing order (later ones cover earlier ones).
            context (int | None): Context index 0..K-1 for the background
                band, or None for a plain ground.
            grey_background (bool): Use the fixed mean-colour ground
                ``GREY_GROUND`` instead of a random low-saturation one.

        Returns:
            tuple: ``image`` uint8 (H, W, 3) RGB and ``mask`` uint8 (H, W)
            with class index + 1 on object pixels, 0 elsewhere.
        """
        size = self.image_size
        for index in objects:
            if not 0 <= int(index) < len(SYNTHETIC_CLASSES):
                raise ValueError(f'object class index {index} is outside '
                                 f'0..{len(SYNTHETIC_CLASSES) - 1}')
        canvas = self._plain_ground(rng, grey_background)
        if context is not None:
            if not 0 <= int(context) < len(SYNTHETIC_CONTEXTS):
                raise ValueError(f'context index {context} is outside '
                                 f'0..{len(SYNTHETIC_CONTEXTS) - 1}')
            name = SYNTHETIC_CONTEXTS[int(context)]
            band = self._band_mask(rng, name)
            texture = self._texture(rng, name, band)
            canvas = np.where(band[..., None], texture, canvas)
        canvas = np.clip(canvas, 0, 255).astype(np.uint8)
        canvas = np.ascontiguousarray(canvas)
        mask = np.zeros((size, size), np.uint8)

        sizes = [rng.uniform(12, 28) * self.scale for _ in objects]
        centres = self._place(rng, sizes)
        for index, obj_size, centre in zip(objects, sizes, centres):
            name = SYNTHETIC_CLASSES[int(index)]
            painter = _Painter(canvas, mask, int(index) + 1, centre, obj_size,
                               flip=bool(rng.integers(0, 2)))
            _DRAW_CLASS[name](painter, self._object_colour(rng, name), rng)

        # Mild sensor noise so flat regions are not exactly flat.
        noise = rng.normal(0, 3, size=canvas.shape)
        image = np.clip(canvas + noise, 0, 255).astype(np.uint8)
        return image, mask
