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
        self._g8_stack = np.empty((3, sh, sw), np.uint8)
        self._g8_planes = list(self._g8_stack)
        self._p = [np.empty((ph, pw), np.float32) for pw, ph in sizes[1:-1]]
        # Planes at the inner size: guide (3), source, the products I_c·p (3) and I_c·I_d (6);
        # then the coefficients (4). Each set is box-filtered in one call, laid side by side.
        r = self.radius
        self._planes = np.empty((13, sh, sw), np.float32)
        self._means = np.empty_like(self._planes)
        self._coef = np.empty((4, sh, sw), np.float32)
        self._wide = {n: (_wide(n, sh, sw, r), _wide(n, sh, sw, r)) for n in (13, 4)}
        self._var = np.empty((6, sh, sw), np.float32)
        self._inv = np.empty((6, sh, sw), np.float32)
        self._cov = np.empty((3, sh, sw), np.float32)
        self._det = np.empty((sh, sw), np.float32)
        self._ops = np.empty((24, sh, sw), np.float32)
        self._eps_diagonal = np.zeros((6, 1, 1), np.float32)
        self._eps_diagonal[_DIAGONAL] = self.eps
        self._full8 = [np.empty((h, w), np.uint8) for _ in range(3)]
        self._full = np.empty((h, w), np.float32)
        self._up = np.empty((h, w), np.float32)

    def _box(self, planes: _F32) -> _F32:
        """Each plane of ``planes`` (n, h, w) box-filtered (borders reflected: … b a | a b …);
        a view (n, h, w) into a buffer of the filter's, valid until the next call.

        The planes are laid side by side, each with ``radius`` columns of border left and
        right, into one wide image (rows of n·(w + 2r) values) and filtered in one call: OpenCV's
        box filter costs per row, so this is several times cheaper than the same planes stacked
        into a tall, narrow image, and gives the same sums.
        """
        r = self.radius
        n, rows = planes.shape[:2]
        wide, out = self._wide[n]
        np.copyto(wide[:, :, r:-r], planes.transpose(1, 0, 2))
        for i in range(r):
            wide[:, :, r - 1 - i] = wide[:, :, r + i]
            wide[:, :, -r + i] = wide[:, :, -r - 1 - i]
        cv2.boxFilter(
            wide.reshape(rows, -1),
            -1,
            self._ksize,
            dst=out.reshape(rows, -1),
            borderType=cv2.BORDER_REFLECT,
        )
        means: _F32 = out.transpose(1, 0, 2)[:, :, r:-r]
        return means

    def filter(self, guide: Image, src: _F32, dst: _F32) -> _F32:
        inner, coef = self._planes, self._coef
        g8 = _halve(guide, self._g8)
        cv2.split(g8, self._g8_planes)
        np.multiply(self._g8_stack, np.float32(1.0 / 255.0), out=inner[0:3])
        if self.subsample > 1:
            _halve(src, [*self._p, inner[3]])
        else:
            np.copyto(inner[3], src)
        # The products I_c·p, then I_c·I_d (c ≤ d) in the order 00 01 02 11 12 22.
        guide_i, src_p = inner[0:3], inner[3]
        np.multiply(guide_i, src_p, out=inner[4:7])
        np.multiply(guide_i, guide_i[0], out=inner[7:10])
        np.multiply(guide_i[1:3], guide_i[1], out=inner[10:12])
        np.multiply(guide_i[2], guide_i[2], out=inner[12])
        m = self._means
        np.copyto(m, self._box(inner))  # (contiguous: the arithmetic below runs faster)
        mean_i, mean_p = m[0:3], m[3]
        # cov(I_c, p) = mean(I_c p) − mean(I_c) mean(p); var(I) the same, eps on the diagonal.
        cov = np.multiply(mean_i, mean_p, out=self._cov)
        np.subtract(m[4:7], cov, out=cov)
        var = self._var
        np.multiply(mean_i, mean_i[0], out=var[0:3])
        np.multiply(mean_i[1:3], mean_i[1], out=var[3:5])
        np.multiply(mean_i[2], mean_i[2], out=var[5])
        np.subtract(m[7:13], var, out=var)
        var += self._eps_diagonal
        # The inverse of var, by cofactors (A·B − C·D, all six in three calls) over the
        # determinant; then a = var⁻¹ cov and b = mean(p) − a · mean(I).
        inv, ops = self._inv, self._ops
        np.take(var, _COF_OPERANDS, axis=0, out=ops, mode="clip")  # (clip: no buffering)
        np.multiply(ops[0:12], ops[12:24], out=ops[0:12])
        np.subtract(ops[0:6], ops[6:12], out=inv)
        det = np.einsum("kij,kij->ij", var[0:3], inv[0:3], out=self._det)
        inv /= det
        a = coef[0:3]
        rows = ops[0:9]
        np.take(inv, _INVERSE, axis=0, out=rows, mode="clip")
        np.einsum("ckij,kij->cij", rows.reshape(3, 3, *det.shape), cov, out=a)
        b = coef[3]
        np.einsum("cij,cij->ij", a, mean_i, out=b)
        np.subtract(mean_p, b, out=b)
        # Upsample the box-averaged coefficients and apply them: dst = b + Σ_c a_c · I_c.
        cm = self._box(coef)
        np.multiply(cm[0:3], np.float32(1.0 / 255.0), out=cm[0:3])  # a for the 0–255 guide
        cv2.resize(cm[3], self.size, dst=dst, interpolation=cv2.INTER_LINEAR)
        cv2.split(guide, self._full8)
        for c in range(3):
            cv2.resize(cm[c], self.size, dst=self._up, interpolation=cv2.INTER_LINEAR)
            np.copyto(self._full, self._full8[c])
            cv2.accumulateProduct(self._up, self._full, dst)
        return dst


def _wide(n: int, rows: int, cols: int, r: int) -> _F32:
    """A buffer for ``n`` planes of (rows, cols) side by side, ``r`` border columns each."""
    return np.empty((rows, n, cols + 2 * r), np.float32)


# Index tables of GuidedFilter.filter. The six entries of the symmetric var are stored in the
# order 00 01 02 11 12 22; the diagonal is at:
_DIAGONAL = [0, 3, 5]
# Cofactors of the symmetric [[v00 v01 v02] [v01 v11 v12] [v02 v12 v22]] (var indices
# 0 1 2 / 3 4 / 5): n_k = A_k B_k − C_k D_k for n00 n01 n02 n11 n12 n22.
_COF_A = [3, 4, 1, 0, 2, 0]
_COF_B = [5, 2, 4, 5, 1, 3]
_COF_C = [4, 1, 3, 2, 0, 1]
_COF_D = [4, 5, 2, 2, 4, 1]
_COF_OPERANDS = np.array([*_COF_A, *_COF_C, *_COF_B, *_COF_D], np.intp)
# The full inverse's rows from the six cofactors.
_INVERSE = np.array([0, 1, 2, 1, 3, 4, 2, 4, 5], np.intp)
