"""The colour-guided filter the refiner aligns masks with (He, Sun, Tang 2013; fast variant: He,
Sun 2015), on preallocated float32 buffers of one size."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from bgcam.frame import Image

__all__ = ["GuidedFilter"]

_F32 = npt.NDArray[np.float32]


def _halve(image: npt.NDArray[Any], dsts: list[npt.NDArray[Any]]) -> npt.NDArray[Any]:
    """``image`` halved into each of ``dsts`` in turn (2x2 averages); the last one, or ``image``."""
    for dst in dsts:
        h, w = dst.shape[:2]
        cv2.resize(image[: 2 * h, : 2 * w], (w, h), dst=dst, interpolation=cv2.INTER_AREA)
        image = dst
    return image


class GuidedFilter:
    """A colour-guided filter (He, Sun, Tang 2013) on preallocated float32 buffers of one size.

    ``filter(guide, src, dst)`` aligns ``src`` ((h, w) float32) with the edges of ``guide``
    ((h, w, 3) BGR uint8): per window, ``src`` is fitted as a linear function of the three colour
    channels, ``a·I + b``, so an edge between two colours of the same brightness (skin against
    a brick wall, a red shirt against green leaves) is kept where a grey guide cannot see it.
    ``radius`` is the box radius, ``eps`` the regularisation in the guide's units (0–1) squared:
    colour edges with a contrast well below ``sqrt(eps)`` are smoothed away.

    It is the *fast* guided filter (He, Sun 2015) with ``subsample`` s (a power of two): the
    coefficients are found on guide and source shrunk s times (each halving an exact 2x2
    average, the odd last row or column dropped: OpenCV's fast path), with box radius
    ``radius`` there, upsampled (bilinear), and applied to the full-size guide: edges stay where
    the full-size guide has them, at about 1/s² of the work. Each window's 3x3 colour covariance
    is inverted in closed form (cofactors), all windows at once; nothing is allocated per call.
    """

    def __init__(self, size: tuple[int, int], radius: int, eps: float, subsample: int = 1) -> None:
        w, h = size
        self.size = (w, h)
        levels = max(0, int(subsample).bit_length() - 1)
        self.subsample = s = 1 << levels
        if subsample != s:
            raise ValueError(f"subsample: expected a power of two, got {subsample}")
        # Each halving: (w, h) -> (w // 2, h // 2), from the even-sized top-left part.
        sizes = [(w, h)]
        for _ in range(levels):
            pw, ph = sizes[-1]
            sizes.append((max(1, pw // 2), max(1, ph // 2)))
        self.inner_size = (sw, sh) = sizes[-1]
        self.radius = max(1, int(radius))
        self.eps = float(eps)
        self._ksize = (2 * self.radius + 1, 2 * self.radius + 1)
        self._g8 = [np.empty((ph, pw, 3), np.uint8) for pw, ph in sizes[1:]]
        self._p = [np.empty((ph, pw), np.float32) for pw, ph in sizes[1:-1]]
        # Planes at the inner size, each with `radius` rows of border above and below, so that
        # one box filter over the planes stacked into a tall image filters each plane alone:
        # guide (3), source, the products I_c·p (3) and I_c·I_d (6), then the coefficients.
        r = self.radius
        self._planes = np.empty((13, sh + 2 * r, sw), np.float32)
        self._means = np.empty_like(self._planes)
        self._coef = np.empty((4, sh + 2 * r, sw), np.float32)
        self._coef_means = np.empty_like(self._coef)
        self._var = np.empty((6, sh, sw), np.float32)
        self._inv = np.empty((6, sh, sw), np.float32)
        self._cov = np.empty((3, sh, sw), np.float32)
        self._det = np.empty((sh, sw), np.float32)
        self._left, self._right = (np.empty((9, sh, sw), np.float32) for _ in range(2))
        self._full8 = [np.empty((h, w), np.uint8) for _ in range(3)]
        self._full = np.empty((h, w), np.float32)
        self._up = np.empty((h, w), np.float32)

    def _box(self, planes: _F32, dst: _F32) -> None:
        """Box-filter each plane of ``planes`` (n, rows + 2r, w) into ``dst`` in one call."""
        r = self.radius
        for i in range(r):  # BORDER_REFLECT rows: … b a | a b …
            planes[:, r - 1 - i] = planes[:, r + i]
            planes[:, -r + i] = planes[:, -r - 1 - i]
        n, rows, cols = planes.shape
        cv2.boxFilter(
            planes.reshape(n * rows, cols),
            -1,
            self._ksize,
            dst=dst.reshape(n * rows, cols),
            borderType=cv2.BORDER_REFLECT,
        )

    def filter(self, guide: Image, src: _F32, dst: _F32) -> _F32:
        r = self.radius
        planes, means, coef = self._planes, self._means, self._coef
        inner = planes[:, r:-r]
        g8 = _halve(guide, self._g8)
        np.multiply(g8.transpose(2, 0, 1), np.float32(1.0 / 255.0), out=inner[0:3])
        if self.subsample > 1:
            _halve(src, [*self._p, planes[3, r:-r]])
        else:
            np.copyto(inner[3], src)
        left, right = self._left, self._right
        np.take(inner, _PROD_LEFT, axis=0, out=left)
        np.take(inner, _PROD_RIGHT, axis=0, out=right)
        np.multiply(left, right, out=inner[4:13])
        self._box(planes, means)
        m = means[:, r:-r]
        mean_i, mean_p = m[0:3], m[3]
        # cov(I_c, p) = mean(I_c p) − mean(I_c) mean(p); var(I) the same, eps on the diagonal.
        cov = np.multiply(mean_i, mean_p, out=self._cov)
        np.subtract(m[4:7], cov, out=cov)
        var = self._var
        np.take(mean_i, _PAIR_LEFT, axis=0, out=left[:6])
        np.take(mean_i, _PAIR_RIGHT, axis=0, out=right[:6])
        np.multiply(left[:6], right[:6], out=var)
        np.subtract(m[7:13], var, out=var)
        eps = np.float32(self.eps)
        for i in _DIAGONAL:
            var[i] += eps
        # The inverse of var, by cofactors over the determinant; then a = var⁻¹ cov and
        # b = mean(p) − a · mean(I).
        inv = self._inv
        np.take(var, _COF_A, axis=0, out=left[:6])
        np.take(var, _COF_B, axis=0, out=right[:6])
        np.multiply(left[:6], right[:6], out=inv)
        np.take(var, _COF_C, axis=0, out=left[:6])
        np.take(var, _COF_D, axis=0, out=right[:6])
        np.multiply(left[:6], right[:6], out=left[:6])
        inv -= left[:6]
        det = np.einsum("kij,kij->ij", var[0:3], inv[0:3], out=self._det)
        inv /= det
        a = coef[0:3, r:-r]
        np.take(inv, _INVERSE, axis=0, out=left)
        np.einsum("ckij,kij->cij", left.reshape(3, 3, *det.shape), cov, out=a)
        b = coef[3, r:-r]
        np.einsum("cij,cij->ij", a, mean_i, out=b)
        np.subtract(mean_p, b, out=b)
        self._box(coef, self._coef_means)
        # Upsample the box-averaged coefficients and apply them: dst = b + Σ_c a_c · I_c.
        cm = self._coef_means[:, r:-r]
        np.multiply(cm[0:3], np.float32(1.0 / 255.0), out=cm[0:3])  # a for the 0–255 guide
        cv2.resize(cm[3], self.size, dst=dst, interpolation=cv2.INTER_LINEAR)
        cv2.split(guide, self._full8)
        for c in range(3):
            cv2.resize(cm[c], self.size, dst=self._up, interpolation=cv2.INTER_LINEAR)
            np.copyto(self._full, self._full8[c])
            cv2.accumulateProduct(self._up, self._full, dst)
        return dst


# Index tables of GuidedFilter.filter. Products: I_c·p (c = 0..2), then the six I_c·I_d (c ≤ d)
# in the order of _PAIR_LEFT/_PAIR_RIGHT: 00 01 02 11 12 22.
_PAIR_LEFT = [0, 0, 0, 1, 1, 2]
_PAIR_RIGHT = [0, 1, 2, 1, 2, 2]
_PROD_LEFT = [0, 1, 2, *_PAIR_LEFT]
_PROD_RIGHT = [3, 3, 3, *_PAIR_RIGHT]
_DIAGONAL = [0, 3, 5]
# Cofactors of the symmetric [[v00 v01 v02] [v01 v11 v12] [v02 v12 v22]] (var indices
# 0 1 2 / 3 4 / 5): n_k = A_k B_k − C_k D_k for n00 n01 n02 n11 n12 n22.
_COF_A = [3, 4, 1, 0, 2, 0]
_COF_B = [5, 2, 4, 5, 1, 3]
_COF_C = [4, 1, 3, 2, 0, 1]
_COF_D = [4, 5, 2, 2, 4, 1]
# The full inverse's rows from the six cofactors.
_INVERSE = [0, 1, 2, 1, 3, 4, 2, 4, 5]
