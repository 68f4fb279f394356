"""Robust sparse Levenberg-Marquardt used by the fit's bundle adjustment (``fit_core``).

The problems are block-arrowhead: a few dense columns (camera, link offsets, axes) and
per-frame joint angles coupled only within a frame and to the neighbouring frames (the
smoothness term). Each step eliminates the angles with a banded Cholesky and solves the
small Schur complement; this is several times faster than
``scipy.optimize.least_squares(jac_sparsity=..., tr_solver="lsmr")`` on these problems.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import diags


def _solve_arrowhead(A, g: np.ndarray, n_dense: int, band: int) -> np.ndarray:
    """Solve A x = g for SPD sparse A whose trailing block is banded (half-bandwidth ``band``).

    Schur complement on the leading ``n_dense`` (camera and structure) parameters; the
    per-frame angle block is factorised as a banded Cholesky.
    """
    from scipy.linalg import cho_factor, cho_solve, solveh_banded

    A = A.tocsr()
    n = A.shape[0]
    nb = n - n_dense
    if nb == 0:
        return cho_solve(cho_factor(A.toarray()), g)
    Add = A[:n_dense, :n_dense].toarray()
    Adb = A[:n_dense, n_dense:].toarray()
    Abb = A[n_dense:, n_dense:].todia()
    ab = np.zeros((band + 1, nb))
    for off, data in zip(Abb.offsets, Abb.data, strict=True):
        if 0 <= off <= band:
            ab[band - off, off:] = data[off:]
    rhs = np.hstack([Adb.T, g[n_dense:, None]])
    sol = solveh_banded(ab, rhs, lower=False, check_finite=False)
    BinvE, Binvg = sol[:, :n_dense], sol[:, n_dense]
    if n_dense:
        S = Add - Adb @ BinvE
        xd = np.linalg.solve(S, g[:n_dense] - Adb @ Binvg)
    else:
        xd = np.zeros(0)
    xb = Binvg - BinvE @ xd
    return np.r_[xd, xb]


def levenberg_marquardt(
    fun, jac, x0: np.ndarray, f_scale: float, max_iter: int, n_dense: int, band: int
) -> tuple[np.ndarray, float]:
    """Robust (soft-L1 via IRLS) Levenberg-Marquardt for the fit's sparse problems.

    Same objective as ``scipy.optimize.least_squares(loss="soft_l1")``; much faster here
    because each step is a Schur complement on the few structure parameters plus a banded
    Cholesky of the per-frame angles (``_solve_arrowhead``).
    """

    def rho(r: np.ndarray) -> float:
        return float(np.sum(f_scale**2 * (np.sqrt(1 + (r / f_scale) ** 2) - 1)))

    x = np.asarray(x0, float).copy()
    r = fun(x)
    cost = rho(r)
    mu = 1e-3
    for _ in range(max_iter):
        J = jac(x)
        w = 1.0 / np.sqrt(1 + (r / f_scale) ** 2)
        JW = diags(w) @ J
        A = (J.T @ JW).tocsr()
        g = -(JW.T @ r)
        d = A.diagonal()
        improved, rel, dx = False, 0.0, np.zeros_like(x)
        for _ in range(10):
            try:
                dx = _solve_arrowhead(A + diags(mu * d + 1e-9 * (1 + d.max())), g, n_dense, band)
            except (np.linalg.LinAlgError, ValueError):
                mu *= 10
                continue
            r2 = fun(x + dx)
            c2 = rho(r2)
            if np.isfinite(c2) and c2 < cost:
                rel = (cost - c2) / max(cost, 1e-12)
                x, r, cost = x + dx, r2, c2
                mu = max(mu / 3, 1e-7)
                improved = True
                break
            mu *= 4
        if not improved or rel < 1e-5:
            break
    return x, cost
