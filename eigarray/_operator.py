"""The linear-operator protocol every solver consumes.

:func:`aslinearoperator` adapts dense arrays of any supported namespace, scipy
and cupyx sparse matrices, torch sparse tensors, scipy ``LinearOperator``\\ s,
duck-typed operators (``shape``, ``dtype``, ``matvec`` and optionally
``matmat``, ``rmatvec``, ``rmatmat``) and plain callables to one small
interface: :class:`LinearOperator`.  Its products are counted (``n_matvec``
counts every column a product is applied to), and it knows the namespace
(``xp``) and device its vectors live in.  Products that are the caller's
code have their results checked (array, namespace, shape, kind) and copied.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from . import _namespace as ns
from ._dispatch import csr_product
from ._validate import check_bool

__all__ = ["LinearOperator", "aslinearoperator", "host_view_operator"]


class LinearOperator:
    """A linear map with counted products, in a known array namespace.

    Parameters
    ----------
    shape : tuple of int
        ``(m, n)``.
    dtype
        Dtype of ``xp`` the products are computed in (for an unbound
        operator, the dtype it declares; see :meth:`bind`).
    xp : namespace or None
        Array namespace of the vectors the operator takes and returns; None
        for an operator not yet bound to one (see :meth:`bind`).
    matvec : callable
        ``x (n,) -> A x (m,)``.
    matmat, rmatvec, rmatmat : callable, optional
        ``X (n, p) -> A X``, ``y (m,) -> Aᴴ y`` and ``Y (m, p) -> Aᴴ Y``.
        A missing ``matmat`` is served column by column.
    normal, rnormal : callable, optional
        ``X (n, p) -> (A X, Aᴴ A X)`` and ``Y (m, p) -> (Aᴴ Y, A Aᴴ Y)``
        computed in one read of ``A`` (see :meth:`normal_matmat`; ``rnormal``
        is the adjoint operator's ``normal``); when missing, two products.
    device : optional
        Device of the vectors (``None``: the namespace's default).
    rows_into : callable, optional
        ``(V (p, n), out (p, m)) -> None``: writes ``(A Vᵀ)ᵀ`` into the
        NumPy rows ``out`` (see :meth:`matmat_rows`); when missing, a
        product and a copy.
    user_products : bool, default=False
        True when the products are the caller's code (a callable, a
        duck-typed or a scipy operator): each result is checked to be an
        array of the namespace of the vectors, and copied (JAX and Dask
        arrays aside, which cannot change), since such code may hand back
        one buffer that it overwrites on its next call (``out=``).

    Attributes
    ----------
    n_matvec : int
        Products applied so far (one per column).  The solvers apply an
        unbound operator through a bound copy (see :meth:`bind`), which
        counts instead; a bound operator counts across calls.
        ``result.info.n_matvec`` is the count of one solve.
    n_rmatvec : int
        Adjoint products applied so far (one per column).
    """

    def __init__(self, shape: tuple[int, int], dtype: Any, xp: Any, *, matvec: Callable,
                 matmat: Callable | None = None, rmatvec: Callable | None = None,
                 rmatmat: Callable | None = None, device: Any = None,
                 normal: Callable | None = None, rnormal: Callable | None = None,
                 rows_into: Callable | None = None, user_products: bool = False):
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = dtype
        self.xp = xp
        self.device = device
        self._matvec = matvec
        self._matmat = matmat
        self._rmatvec = rmatvec
        self._rmatmat = rmatmat
        self._normal = normal
        self._rnormal = rnormal
        self._rows_into = rows_into
        self._user_products = user_products
        self._argument_type: type | None = None      # last argument type found valid
        self.n_matvec = 0
        self.n_rmatvec = 0

    @property
    def kernel_products(self) -> bool:
        """Whether the products run in eigarray's Numba CSR kernel (no BLAS call)."""
        return self._rows_into is not None

    def bind(self, xp: Any, device: Any = None) -> LinearOperator:
        """This operator with its vectors in namespace ``xp`` on ``device``.

        Operators built from callables or duck-typed objects without an
        explicit namespace take any; a solver binds them to the namespace
        and device of its starting vector (NumPy by default).  The declared
        dtype is translated by name into ``xp`` and promoted to the working
        dtype.  Bound operators return themselves.

        Raises
        ------
        TypeError
            For an operator whose dtype belongs to a framework that NumPy
            does not read (``torch.float64``) bound to another namespace.
        """
        if self.xp is not None:
            return self
        framework = ns.dtype_framework(self.dtype)
        if framework is not None and framework not in xp.__name__.split("."):
            raise TypeError(
                f"`A` has the {framework} dtype {self.dtype}, so its products take {framework} "
                f"arrays, but the vectors would be arrays of {_namespace_name(xp)}: pass a "
                f"{framework} `v0` (or `xp=` to aslinearoperator).")
        dtype = ns.working_dtype(xp, _dtype_in(xp, self.dtype, name="A"), name="A")
        op = LinearOperator(self.shape, dtype, xp, matvec=self._matvec, matmat=self._matmat,
                            rmatvec=self._rmatvec, rmatmat=self._rmatmat,
                            device=self.device if device is None else device,
                            normal=self._normal, rnormal=self._rnormal,
                            rows_into=self._rows_into, user_products=self._user_products)
        op.n_matvec, op.n_rmatvec = self.n_matvec, self.n_rmatvec
        return op

    @property
    def has_adjoint(self) -> bool:
        """True when ``rmatvec`` or ``rmatmat`` was given."""
        return self._rmatvec is not None or self._rmatmat is not None

    def _checked(self, y: Any, x: Any, expected: tuple, method: str) -> Any:
        """The result ``y`` of a product of ``x``, checked (and copied, see ``user_products``).

        As scipy's operators do, user code may answer with a ``numpy.matrix``
        or an ``(n, 1)`` column for a vector, and with a NumPy array for the
        vectors of another namespace (moved there, as ``hessian_eigsh``
        does); a real product of another precision is cast to the working
        dtype.
        """
        if self._user_products and type(y) is not type(x):
            xp = self.xp if self.xp is not None else ns.array_namespace(x)
            if isinstance(y, np.matrix):
                y = np.asarray(y)
            if len(expected) == 1 and tuple(getattr(y, "shape", ())) in (expected + (1,),
                                                                          (1,) + expected):
                y = y.reshape(expected)
            if isinstance(y, np.ndarray) and not ns.is_numpy_namespace(xp):
                y = ns.from_host_numpy(y, xp, like=x)
            if not ns.is_array_api_obj(y) or not ns.same_namespace(ns.array_namespace(y), xp):
                raise TypeError(
                    f"the operator `A` returned {_describe(y)} from `{method}`; its products "
                    f"must return arrays of {_namespace_name(xp)}, the namespace of the "
                    f"vectors it is applied to (that of `v0`, or `xp=` of aslinearoperator).")
        if tuple(y.shape) != expected:
            raise ValueError(
                f"the operator `A` of shape {self.shape} returned an array of shape "
                f"{tuple(y.shape)} from `{method}` of one of shape {tuple(x.shape)}; "
                f"expected {expected}.")
        if "complex" in str(y.dtype) and "complex" not in str(self.dtype):
            # Casting to the real working dtype would drop the imaginary part.
            raise TypeError(f"the operator `A` returned complex values ({y.dtype}) from "
                            f"`{method}` but its dtype is {self.dtype}; pass dtype=complex128 "
                            f"(or complex64) to aslinearoperator.")
        if self._user_products:
            xp = self.xp if self.xp is not None else ns.array_namespace(y)
            if self.xp is not None and y.dtype != self.dtype:
                y = xp.astype(y, self.dtype)              # a new array: the copy
            elif not (ns.is_jax_array(y) or ns.is_dask_array(y)):
                y = xp.asarray(y, copy=True)
        return y

    def _argument(self, x: Any, ndim: int, length: int, method: str) -> Any:
        """The namespace of ``x`` once checked as the argument of ``method``."""
        xp = self.xp
        if type(x) is not self._argument_type:
            if not ns.is_array_api_obj(x):
                raise TypeError(f"{method} of the {self.shape[0]}x{self.shape[1]} operator "
                                f"takes an array; got {type(x).__name__}.")
            # Dask operators also take NumPy vectors (the solvers keep a few on
            # the host, computed at once), which Dask's products read.
            if (xp is not None and not ns.same_namespace(ns.array_namespace(x), xp)
                    and not (ns.is_dask_namespace(xp) and ns.is_numpy_array(x))):
                raise TypeError(f"{method} of the {self.shape[0]}x{self.shape[1]} operator "
                                f"takes arrays of {_namespace_name(xp)}; got {_describe(x)}: "
                                f"convert it first.")
            self._argument_type = type(x)
        if x.ndim != ndim or x.shape[0] != length:
            want = f"({length},)" if ndim == 1 else f"({length}, p)"
            raise ValueError(f"{method} of the {self.shape[0]}x{self.shape[1]} operator takes "
                             f"an array of shape {want}; got shape {tuple(x.shape)}.")
        return xp if xp is not None else ns.array_namespace(x)

    def matvec(self, x: Any) -> Any:
        """``A x`` for ``x`` of shape ``(n,)``; counted once."""
        self._argument(x, 1, self.shape[1], "matvec")
        self.n_matvec += 1
        return self._checked(self._matvec(x), x, (self.shape[0],), "matvec")

    def matmat(self, X: Any) -> Any:
        """``A X`` for ``X`` of shape ``(n, p)``; counted ``p`` times."""
        xp = self._argument(X, 2, self.shape[1], "matmat")
        self.n_matvec += X.shape[1]
        if self._matmat is not None:
            return self._checked(self._matmat(X), X, (self.shape[0], X.shape[1]), "matmat")
        return xp.stack([self._checked(self._matvec(X[:, j]), X[:, j], (self.shape[0],),
                                       "matvec")
                         for j in range(X.shape[1])], axis=1)

    def matmat_rows(self, V: Any, out: Any) -> Any:
        """``out[...] = (A Vᵀ)ᵀ`` for the rows ``V`` (``(p, n)``); counted ``p`` times.

        ``out`` is a NumPy ``(p, m)`` block (of a basis, say) that the
        product is written into without a temporary where the operator can
        (a host CSR matrix); returns ``out``.
        """
        if self._rows_into is not None:
            self.n_matvec += V.shape[0]
            self._rows_into(V, out)
            return out
        out[...] = self.matmat(V.T).T if V.shape[0] > 1 else self.matvec(V[0, ...])[None, :]
        return out

    def rmatvec(self, y: Any) -> Any:
        """``Aᴴ y`` for ``y`` of shape ``(m,)``."""
        self._argument(y, 1, self.shape[0], "rmatvec")
        if self._rmatvec is None:
            if self._rmatmat is None:
                raise TypeError("this operator has no adjoint product (`rmatvec`/`rmatmat`).")
            self.n_rmatvec += 1
            Y = y[:, None]
            return self._checked(self._rmatmat(Y), Y, (self.shape[1], 1), "rmatmat")[:, 0]
        self.n_rmatvec += 1
        return self._checked(self._rmatvec(y), y, (self.shape[1],), "rmatvec")

    def rmatmat(self, Y: Any) -> Any:
        """``Aᴴ Y`` for ``Y`` of shape ``(m, p)``."""
        xp = self._argument(Y, 2, self.shape[0], "rmatmat")
        if self._rmatmat is None:
            if self._rmatvec is None:
                raise TypeError("this operator has no adjoint product (`rmatvec`/`rmatmat`).")
            self.n_rmatvec += Y.shape[1]
            return xp.stack([self._checked(self._rmatvec(Y[:, j]), Y[:, j], (self.shape[1],),
                                           "rmatvec")
                             for j in range(Y.shape[1])], axis=1)
        self.n_rmatvec += Y.shape[1]
        return self._checked(self._rmatmat(Y), Y, (self.shape[1], Y.shape[1]), "rmatmat")

    @property
    def has_normal(self) -> bool:
        """True when :meth:`normal_matmat` reads ``A`` once (not two products)."""
        return self._normal is not None

    def normal_matmat(self, X: Any) -> tuple[Any, Any]:
        """``(A X, Aᴴ (A X))`` for ``X`` of shape ``(n, p)``; counted as both products.

        Operators over a dense host array compute the pair in one pass over
        ``A``, a block of rows at a time while it is in cache (about half
        the memory traffic of two products); others make two products.
        """
        if self._normal is None:
            Y = self.matmat(X)
            return Y, self.rmatmat(Y)
        self.n_matvec += X.shape[1]
        self.n_rmatvec += X.shape[1]
        return self._normal(X)

    def __repr__(self) -> str:
        return (f"<{self.shape[0]}x{self.shape[1]} eigarray.LinearOperator "
                f"dtype={self.dtype} namespace={getattr(self.xp, '__name__', self.xp)}>")


def _namespace_name(xp: Any) -> str:
    """``xp``'s name for messages: ``numpy`` rather than ``array_api_compat.numpy``."""
    return xp.__name__.removeprefix("array_api_compat.")


def _describe(x: Any) -> str:
    """``a numpy.ndarray``, ``a list``, ``None``: what an object is, for messages."""
    if x is None:
        return "None"
    cls = type(x)
    module = cls.__module__.split(".")[0]
    return f"a {cls.__name__}" if module == "builtins" else f"a {module}.{cls.__name__}"


# Half-precision dtypes that some namespaces lack (NumPy: bfloat16, complex32),
# by the working dtype they promote to (see ``_namespace.working_dtype``).
_PROMOTED = {"bfloat16": "float32", "complex32": "complex64"}


def _dtype_in(xp: Any, dtype: Any, *, name: str) -> Any:
    """The dtype of namespace ``xp`` named as ``dtype``, a dtype of any framework.

    Translated by name (``torch.float64`` to ``numpy.float64``); bfloat16
    and complex32 become float32 and complex64 where ``xp`` lacks them.  A
    dtype without a known name (a string, extended precision) comes back as
    it is (as a ``numpy.dtype`` for NumPy, which raises a TypeError for
    what it does not read), for :func:`~eigarray._namespace.working_dtype`
    to refuse.
    """
    key = ns.dtype_name(dtype)
    if key is None:
        return np.dtype(dtype) if ns.is_numpy_namespace(xp) else dtype
    out = getattr(xp, key, None)
    if out is None and key in _PROMOTED:
        out = getattr(xp, _PROMOTED[key], None)
    if out is None:
        raise TypeError(f"`{name}` has dtype {dtype}, which the namespace "
                        f"{_namespace_name(xp)} lacks.")
    return np.dtype(out) if ns.is_numpy_namespace(xp) else out


def _is_scipy_sparse(A: Any) -> bool:
    if "scipy.sparse" not in sys.modules:
        return False
    return sys.modules["scipy.sparse"].issparse(A)


def _is_cupyx_sparse(A: Any) -> bool:
    mod = sys.modules.get("cupyx.scipy.sparse")
    return mod is not None and mod.issparse(A)


def _dense_operator(A: Any, *, name: str, check_finite: bool) -> LinearOperator:
    ns.refuse_traced(A, name=name)
    xp = ns.array_namespace(A)
    if A.ndim != 2:
        raise ValueError(f"`{name}` must be a 2-D array; got an array of shape {tuple(A.shape)}.")
    dtype = ns.working_dtype(xp, A.dtype, name=name)
    if dtype != A.dtype:
        A = xp.astype(A, dtype)
    if check_finite and not ns.is_dask_array(A):
        if not bool(xp.all(xp.isfinite(A))):
            raise ValueError(f"`{name}` must not contain NaN or Inf.")
    cplx = ns.is_complex(xp, dtype)

    def rmatvec(y):
        return xp.conj(xp.conj(y) @ A) if cplx else y @ A

    def rmatmat(Y):
        # (Yᴴ A)ᴴ: no conjugated copy of A.
        return xp.conj(xp.conj(Y).T @ A).T if cplx else A.T @ Y

    def matmat(X):
        return A @ X

    normal = rnormal = None
    if ns.is_numpy_namespace(xp):
        if _reads_once(A, adjoint_first=False):
            def normal(X):
                return normal_product(A, X, adjoint_first=False)
        if _reads_once(A, adjoint_first=True):
            def rnormal(Y):
                return normal_product(A, Y, adjoint_first=True)
        if A.dtype == np.float32 and A.nbytes > _NORMAL_BLOCK_BYTES:
            matmat, rmatmat, normal, rnormal = (
                None if f is None else _padded(f) for f in (matmat, rmatmat, normal, rnormal))

    return LinearOperator(tuple(A.shape), dtype, xp, matvec=lambda x: A @ x,
                          matmat=matmat, rmatvec=rmatvec, rmatmat=rmatmat,
                          device=ns.device(A), normal=normal, rnormal=rnormal)


def _padded(product: Callable) -> Callable:
    """``product`` on blocks of ``8 < p < 64`` columns padded with zeros to a multiple of 8.

    OpenBLAS's single-precision kernels run at full width on multiples of 8
    columns: on 20,000 x 2,000 float32 (2-core AMD EPYC), products with 32
    columns took 10% less time than with 30 (18.0 against 19.6 ms for
    ``A X``, 14.9 against 16.5 ms for ``Aᵀ Y``, 28 against 32 ms for a
    :func:`normal_product` pass).  The results come back as views of the
    first ``p`` columns; the padding is never seen.
    """
    def padded(X):
        p = X.shape[1]
        if not 8 < p < 64 or p % 8 == 0:
            return product(X)
        Xp = np.zeros((X.shape[0], -(-p // 8) * 8), dtype=X.dtype)
        Xp[:, :p] = X
        out = product(Xp)
        return tuple(o[:, :p] for o in out) if isinstance(out, tuple) else out[:, :p]

    return padded


# Blocks of the matrix that one pass of :func:`normal_product` keeps in cache
# between its two products.  Measured on 20,000 x 2,000 with 30 columns
# (2-core AMD EPYC, 32 MiB L3, OpenBLAS; medians of 15): 4 MiB row blocks
# reach 150 GFLOP/s in float32 and 86 in float64, against 132 and 71 for two
# whole products; 1 MiB blocks lose the gain, 8 MiB ones keep it.
_NORMAL_BLOCK_BYTES = 4 << 20


def _blocks(A: np.ndarray, adjoint_first: bool) -> tuple[np.ndarray, int]:
    """The matrix cut by rows (``A``, or ``Aᵀ`` for ``Aᴴ X`` first) and the rows per block."""
    M = A.T if adjoint_first else A
    return M, max(16, _NORMAL_BLOCK_BYTES // max(1, M.shape[1] * A.dtype.itemsize))


def _reads_once(A: np.ndarray, *, adjoint_first: bool) -> bool:
    """Whether :func:`normal_product` cuts ``A`` into blocks (contiguous, larger than one)."""
    M, step = _blocks(A, adjoint_first)
    return step < M.shape[0] and M.strides[1] == A.dtype.itemsize


def normal_product(A: np.ndarray, X: np.ndarray, *, adjoint_first: bool) -> tuple:
    """``(A X, Aᴴ A X)``, or ``(Aᴴ X, A Aᴴ X)``, reading the NumPy array ``A`` once.

    For ``A X`` first, ``A`` is cut into blocks of rows ``A_i``, and
    ``Y_i = A_i X`` and ``Aᴴ Y += A_iᴴ Y_i`` are formed while ``A_i`` is in
    cache; for ``Aᴴ X`` first, into blocks of columns.  Each block is a
    threaded matrix-matrix product.  Blocks must be contiguous to pay (rows
    of a C-ordered array, columns of a Fortran-ordered one: strided blocks
    measured slower than two whole products), and a matrix that fits in
    the cache gains nothing: those cases make two plain products.
    """
    cplx = np.iscomplexobj(A)
    if not _reads_once(A, adjoint_first=adjoint_first):
        Y = (np.conj(np.conj(X).T @ A).T if cplx else A.T @ X) if adjoint_first else A @ X
        if adjoint_first:
            return Y, A @ Y
        return Y, (np.conj(np.conj(Y).T @ A).T if cplx else A.T @ Y)
    M, step = _blocks(A, adjoint_first)
    rows, cols = M.shape
    dtype = np.result_type(A, X)
    Y = np.empty((rows, X.shape[1]), dtype=dtype)
    W = np.zeros((cols, X.shape[1]), dtype=dtype)
    for i in range(0, rows, step):
        Mi = M[i:i + step]                 # rows of A, or columns of A (transposed)
        Yi = Y[i:i + step]
        if adjoint_first:                  # Y_i = A[:, i]ᴴ X, W += A[:, i] Y_i
            Yi[...] = np.conj(np.conj(X).T @ Mi.T).T if cplx else Mi @ X
            W += Mi.T @ Yi
        else:                              # Y_i = A_i X, W += A_iᴴ Y_i
            np.matmul(Mi, X, out=Yi)
            W += np.conj(np.conj(Yi).T @ Mi).T if cplx else Mi.T @ Yi
    return Y, W


def _scipy_sparse_operator(A: Any, *, name: str, check_finite: bool) -> LinearOperator:
    xp = ns.numpy_namespace()
    if A.ndim != 2:
        raise ValueError(f"`{name}` must be 2-D; got shape {A.shape}.")
    dtype = ns.working_dtype(xp, A.dtype, name=name)
    C = A if A.format == "csr" else A.tocsr()
    data = C.data if C.data.dtype == dtype else C.data.astype(dtype)
    if check_finite and not np.all(np.isfinite(data)):
        raise ValueError(f"`{name}` must not contain NaN or Inf.")
    # The Numba kernel is compiled for native byte order only.
    indptr, indices = (a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("="))
                       for a in (C.indptr, C.indices))
    n_rows = C.shape[0]
    AT = None

    def matvec(x):
        return csr_product(indptr, indices, data, x, n_rows)

    def rows_into(V, out):
        csr_product(indptr, indices, data, V.T if V.shape[0] > 1 else V[0], n_rows, out)

    def rmatmat(Y):
        nonlocal AT
        if AT is None:
            AT = C.T.conj().tocsr() if ns.is_complex(xp, dtype) else C.T.tocsr()
            if AT.data.dtype != dtype:
                AT.data = AT.data.astype(dtype)
        return csr_product(AT.indptr, AT.indices, AT.data, Y, C.shape[1])

    return LinearOperator(C.shape, dtype, xp, matvec=matvec, matmat=matvec,
                          rmatvec=rmatmat, rmatmat=rmatmat, device="cpu", rows_into=rows_into)


def _product_operator(A: Any, xp: Any, *, name: str) -> LinearOperator:
    """cupyx sparse matrices and torch sparse tensors: their own ``@``."""
    dtype = ns.working_dtype(xp, A.dtype, name=name)
    if dtype != A.dtype:
        A = A.astype(dtype) if not ns.is_torch_namespace(xp) else A.to(dtype)
    cplx = ns.is_complex(xp, dtype)
    if ns.is_torch_namespace(xp):
        AH = A.t().conj() if cplx else A.t()
        dev = A.device
    else:
        AH = A.T.conj() if cplx else A.T
        dev = ns.device(A.data) if hasattr(A, "data") else None

    def matvec(x):
        return A @ x

    def rmatvec(y):
        return AH @ y

    return LinearOperator(tuple(A.shape), dtype, xp, matvec=matvec, matmat=matvec,
                          rmatvec=rmatvec, rmatmat=rmatvec, device=dev)


def _torch_sparse_matrix(A: Any, *, name: str) -> Any:
    """A torch sparse tensor as a 2-D COO (coalesced) or CSR matrix.

    CSC, BSR and BSC tensors are converted to CSR once: torch has no
    product of a BSC tensor (the transpose of a BSR one) with a vector.

    Raises
    ------
    ValueError
        Naming ``name``, for a tensor that is not 2-D (batched, or a
        vector) or is hybrid (dense dimensions in its values).
    """
    if A.ndim != 2 or A.dense_dim() != 0:
        hybrid = f" with {A.dense_dim()} dense dimension(s)" if A.dense_dim() else ""
        raise ValueError(f"`{name}` must be a 2-D sparse matrix; got a {A.layout} tensor of "
                         f"shape {tuple(A.shape)}{hybrid} (batched and hybrid sparse tensors "
                         f"are not supported).")
    if str(A.layout) == "torch.sparse_coo":
        return A.coalesce()                      # a COO tensor may hold duplicates
    if str(A.layout) == "torch.sparse_csr":
        return A
    return A.to_sparse_coo().coalesce().to_sparse_csr()


def _check_shape(shape: Any, name: str) -> tuple[int, int]:
    """``shape`` as two ints, or a ValueError naming it."""
    try:
        ok = len(shape) == 2 and all(
            isinstance(s, (int, np.integer)) and not isinstance(s, (bool, np.bool_)) and s >= 0
            for s in shape)
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"`{name}` must be two non-negative integers (rows, columns); "
                         f"got {shape!r}.")
    return int(shape[0]), int(shape[1])


def _duck_operator(A: Any, *, shape: Any, dtype: Any, xp: Any, name: str) -> LinearOperator:
    if xp is not None and not all(hasattr(xp, f) for f in ("asarray", "astype", "linalg")):
        raise TypeError(f"`xp` must be an array namespace (such as "
                        f"`array_api_compat.array_namespace(x)`); got {xp!r}.")
    declared = getattr(A, "dtype", None) if dtype is None else dtype
    if declared is None:
        declared = np.float64
    if ns.dtype_framework(declared) is None:
        try:
            dtype = np.dtype(declared)
        except TypeError:
            dtype = None
    else:
        dtype = declared if ns.dtype_name(declared) is not None else None
    if dtype is None:
        raise TypeError(f"`dtype` must be a floating, integer or boolean dtype; "
                        f"got {declared!r}.")
    if xp is not None:
        dtype = ns.working_dtype(xp, _dtype_in(xp, dtype, name=name), name=name)
    elif ns.dtype_framework(dtype) is None:
        dtype = ns.working_dtype(ns.numpy_namespace(), dtype, name=name)
    # else a dtype of another framework (torch.float64), kept as declared:
    # :meth:`LinearOperator.bind` translates it into the vectors' namespace.
    if callable(A) and not hasattr(A, "matvec"):
        if shape is None:
            raise ValueError(f"`{name}` is a plain callable: pass its `shape` as well.")
        return LinearOperator(_check_shape(shape, "shape"), dtype, xp, matvec=A,
                              user_products=True)
    own = getattr(A, "shape", None)
    if own is None or len(own) != 2:
        if shape is None:
            raise ValueError(f"`{name}` must have a 2-D `shape`; got shape={own}.")
    elif shape is None:
        shape = own
    else:
        _matching_shape(shape, own, name)
    shape = _check_shape(shape, "shape")
    adjoint = _has_adjoint(A)
    return LinearOperator(
        shape, dtype, xp, matvec=A.matvec, matmat=_own_product(A, "matmat"),
        rmatvec=_own_product(A, "rmatvec") if adjoint else None,
        rmatmat=_own_product(A, "rmatmat") if adjoint else None, user_products=True)


def _matching_shape(shape: Any, own: Any, name: str) -> None:
    """Raise unless ``shape`` (checked) equals ``own``, the shape ``A`` has."""
    if _check_shape(shape, "shape") != tuple(int(s) for s in own):
        raise ValueError(f"`shape` must match the shape of `{name}`, {tuple(own)}, which "
                         f"it has; got shape={tuple(shape)}.")


def _has_adjoint(A: Any) -> bool:
    """Whether ``A``'s ``rmatvec`` works.

    A ``scipy.sparse.linalg.LinearOperator`` always has the method, which
    raises NotImplementedError when no adjoint was given: one made from
    functions has it when ``rmatvec`` or ``rmatmat`` was passed, a subclass
    when it overrides ``_rmatvec``, ``_rmatmat`` or ``_adjoint``.
    """
    if _scipy_operator_base(A) is None:
        return any(getattr(A, name, None) is not None for name in ("rmatvec", "rmatmat"))
    return _scipy_implements(A, ("rmatvec", "rmatmat"), ("_rmatvec", "_rmatmat", "_adjoint"))


# The methods a subclass of scipy's LinearOperator overrides to have a product
# of its own (see :func:`_scipy_implements`).
_SCIPY_METHODS = {"matmat": ("_matmat",), "rmatvec": ("_rmatvec", "_adjoint"),
                  "rmatmat": ("_rmatmat", "_adjoint")}


def _own_product(A: Any, name: str) -> Callable | None:
    """``A``'s product ``name`` (``"matmat"``, ``"rmatvec"``, ``"rmatmat"``), or None.

    None where ``A`` has no such method, and where a scipy ``LinearOperator``
    would serve it from another product: scipy's default block product
    stacks the vector products of the columns after making them all, so
    that with a function returning one reused buffer every column would be
    the last product, and its default ``rmatvec`` of an operator given only
    ``rmatmat`` raises.  eigarray's own loops over columns (which copy each
    product) and over ``rmatmat`` serve those instead.
    """
    product = getattr(A, name, None)
    if product is None or _scipy_operator_base(A) is None:
        return product
    return product if _scipy_implements(A, (name,), _SCIPY_METHODS[name]) else None


def _scipy_operator_base(A: Any) -> Any:
    """``scipy.sparse.linalg.LinearOperator`` when ``A`` is one (scipy loaded), else None."""
    base = getattr(sys.modules.get("scipy.sparse.linalg"), "LinearOperator", None)
    return base if base is not None and isinstance(A, base) else None


def _scipy_implements(A: Any, impls: tuple[str, ...], methods: tuple[str, ...]) -> bool:
    """Whether the scipy operator ``A`` has one of the products ``impls`` of its own.

    One made from functions (``_CustomLinearOperator``) has those that were
    passed; a subclass those whose ``methods`` it overrides.
    """
    cls = type(A)
    if cls.__name__ == "_CustomLinearOperator":
        return any(A.__dict__.get(f"_CustomLinearOperator__{impl}_impl") is not None
                   for impl in impls)
    base = _scipy_operator_base(A)
    return any(getattr(cls, m) is not getattr(base, m) for m in methods)


def aslinearoperator(A: Any, *, shape: tuple[int, int] | None = None, dtype: Any = None,
                     xp: Any = None, name: str = "A", check_finite: bool = True) -> LinearOperator:
    """Adapt ``A`` to eigarray's :class:`LinearOperator`.

    Parameters
    ----------
    A : array, sparse matrix, operator or callable
        A dense array of any supported namespace (NumPy, CuPy, torch, JAX,
        array-api-strict; Dask arrays are adapted, but Lanczos is no method
        for them), a scipy or cupyx sparse matrix or array, a
        torch sparse tensor, a ``scipy.sparse.linalg.LinearOperator``, any
        object with ``shape``, ``dtype`` and ``matvec`` (optionally ``matmat``,
        ``rmatvec``, ``rmatmat``), or a plain callable ``x -> A x``.
    shape : tuple of int, optional
        Required for a plain callable and for an operator without a
        ``shape``; otherwise, when given, it must equal ``A.shape``.
    dtype : optional
        Dtype of a callable or duck operator (default: its ``dtype`` or float64).
    xp : namespace, optional
        Array namespace of the vectors a callable or duck operator takes.
        Arrays and sparse matrices carry their own; a callable or duck
        operator without one is bound by the solver to the namespace of its
        starting vector (``v0``), else NumPy (see :meth:`LinearOperator.bind`).
    name : str, default="A"
        Name of the argument in error messages.
    check_finite : bool, default=True
        Refuse dense or sparse input holding NaN or Inf (one pass over the data).

    Returns
    -------
    LinearOperator
        ``A`` itself when it already is one.  Products of a callable, a
        duck-typed or a scipy operator are checked to return arrays of the
        right namespace, shape and kind, and copied (see ``user_products``
        of :class:`LinearOperator`).

    Raises
    ------
    TypeError
        For an object that is none of these, or a dtype that holds no
        numbers.
    ValueError
        For an array or sparse tensor that is not a 2-D matrix (batched
        and hybrid torch sparse tensors included), NaN or Inf in its data
        (with ``check_finite``), a malformed ``shape``, or one that differs
        from ``A.shape``.
    """
    if isinstance(A, LinearOperator):
        if shape is not None:
            _matching_shape(shape, A.shape, name)
        return A
    check_finite = check_bool(check_finite, name="check_finite")
    if isinstance(A, np.matrix):
        A = np.asarray(A)       # scipy reads matrices too; array-api-compat does not
    if shape is not None and hasattr(A, "shape") and not (hasattr(A, "matvec") or callable(A)):
        _matching_shape(shape, A.shape, name)
    if ns.is_torch_array(A):
        A = A.detach()          # the solvers are not differentiable (see docs/backends)
    if _is_scipy_sparse(A):
        return _scipy_sparse_operator(A, name=name, check_finite=check_finite)
    if _is_cupyx_sparse(A):
        import cupy

        return _product_operator(A, ns.array_namespace(cupy.empty(0)), name=name)
    if ns.is_torch_sparse(A):
        A = _torch_sparse_matrix(A, name=name)
        return _product_operator(A, ns.array_namespace(A.values()), name=name)
    if ns.is_array_api_obj(A) and not hasattr(A, "matvec"):
        return _dense_operator(A, name=name, check_finite=check_finite)
    if isinstance(A, (list, tuple)):
        raise TypeError(f"`{name}` must be an array, a sparse matrix or an operator; "
                        f"got {type(A).__name__}. Convert it with numpy.asarray first.")
    if hasattr(A, "matvec") or callable(A):
        return _duck_operator(A, shape=shape, dtype=dtype, xp=xp, name=name)
    raise TypeError(f"`{name}` must be an array, a sparse matrix, an object with `shape`, "
                    f"`dtype` and `matvec`, or a callable; got {type(A).__name__}.")


def dask_host_operator(A: Any, *, name: str = "A", check_finite: bool = True) -> Any:
    """``(op, xp, like)``: a NumPy operator over a persisted 2-D Dask array, or None.

    Lanczos builds its basis a vector or two at a time: lazy vectors would
    grow one task graph over the whole iteration.  The matrix is persisted
    once and each product is computed (one graph per product), so the
    iteration runs on NumPy vectors and only ``A`` stays distributed.
    """
    if not ns.is_dask_array(A) or getattr(A, "ndim", 0) != 2:
        return None
    xp = ns.array_namespace(A)
    dtype = ns.working_dtype(xp, A.dtype, name=name)
    A = (xp.astype(A, dtype) if A.dtype != dtype else A).persist()
    if check_finite and not bool(xp.all(xp.isfinite(A))):
        raise ValueError(f"`{name}` must not contain NaN or Inf.")
    AH = xp.conj(A).T if ns.is_complex(xp, dtype) else A.T

    def matmat(X):
        return np.asarray((A @ X).compute())

    def rmatmat(Y):
        return np.asarray((AH @ Y).compute())

    op = LinearOperator((int(A.shape[0]), int(A.shape[1])), np.dtype(dtype),
                        ns.numpy_namespace(), matvec=matmat, matmat=matmat,
                        rmatvec=rmatmat, rmatmat=rmatmat, device="cpu")
    return op, xp, A


def dask_products_on_host(op: LinearOperator) -> LinearOperator:
    """A NumPy operator over ``op``, an operator bound to Dask, each product computed at once.

    The Lanczos iteration builds its bases a vector at a time and reads a
    few scalars back after every product.  Run lazily on Dask, nothing is
    ever persisted: every read computes a graph that holds the whole
    iteration so far (every product and projection since the start vector),
    so the work per step grows with the step count and the solve never
    ends in practice.  Here the bases live on the host; each product takes
    a one-chunk Dask vector, as the caller's code expects, and its result is
    computed once.  (A Dask array ``A`` goes through
    :func:`dask_host_operator` instead, which persists it.)
    """
    xp = op.xp

    def computed(product: Callable) -> Callable:
        def apply(x: Any) -> Any:
            return ns.to_host_numpy(product(xp.asarray(x)))
        return apply

    return LinearOperator(op.shape, op.dtype, ns.numpy_namespace(),
                          matvec=computed(op.matvec), matmat=computed(op.matmat),
                          rmatvec=computed(op.rmatvec), rmatmat=computed(op.rmatmat),
                          device="cpu")


def host_view_operator(A: Any, *, name: str = "A", check_finite: bool = True) -> Any:
    """``(op, xp, like)``: a NumPy operator over CPU torch or JAX data, or None.

    Iterations made of many small steps (Lanczos: a few vector operations per
    operator application) pay each framework's per-call dispatch cost
    thousands of times.  For torch tensors on the CPU (dense, or sparse COO /
    CSR) and JAX CPU arrays the data already lies in host memory: this
    returns an operator over zero-copy NumPy views of it (DLPack; a sparse
    COO tensor is converted to CSR once), with products through NumPy's BLAS
    and eigarray's Numba CSR kernel, together with the caller's namespace
    ``xp`` and an array ``like`` whose device the results go back to.
    GPU arrays and anything else give None.  The solvers that use it are not
    differentiable: a tensor that requires gradients is read detached.
    """
    if ns.is_dask_array(A):
        return dask_host_operator(A, name=name, check_finite=check_finite)
    if ns.is_torch_array(A):
        import torch

        A = A.detach()
        # No NumPy dtype: promoted to the working dtype, as documented.
        if A.dtype == torch.bfloat16:
            A = A.to(torch.float32)
        elif A.dtype == torch.complex32:
            A = A.to(torch.complex64)
    if ns.is_torch_sparse(A):
        if A.device.type != "cpu":
            return None
        A = _torch_sparse_matrix(A, name=name)
        xp = ns.array_namespace(A.values())
        C = A.to_sparse_csr() if A.layout == torch.sparse_coo else A
        if C.values().is_conj():
            C = C.resolve_conj()
        dtype = ns.working_dtype(ns.numpy_namespace(), C.values().numpy().dtype, name=name)
        indptr, indices = C.crow_indices().numpy(), C.col_indices().numpy()
        data = C.values().numpy()
        data = data if data.dtype == dtype else data.astype(dtype)
        if check_finite and not np.all(np.isfinite(data)):
            raise ValueError(f"`{name}` must not contain NaN or Inf.")
        shape = (int(A.shape[0]), int(A.shape[1]))
        AT: list = []

        def matvec(x):
            return csr_product(indptr, indices, data, x, shape[0])

        def rows_into(V, out):
            csr_product(indptr, indices, data, V.T if V.shape[0] > 1 else V[0], shape[0], out)

        def rmatmat(Y):
            if not AT:
                T = (C.t().conj() if C.is_complex() else C.t()).to_sparse_csr().resolve_conj()
                vals = T.values().numpy()
                AT.append((T.crow_indices().numpy(), T.col_indices().numpy(),
                           vals if vals.dtype == dtype else vals.astype(dtype)))
            ip, ix, dv = AT[0]
            return csr_product(ip, ix, dv, Y, shape[1])

        op = LinearOperator(shape, dtype, ns.numpy_namespace(), matvec=matvec, matmat=matvec,
                            rmatvec=rmatmat, rmatmat=rmatmat, device="cpu", rows_into=rows_into)
        return op, xp, A.values()
    if not (ns.is_torch_array(A) or ns.is_jax_array(A)) or getattr(A, "ndim", 0) != 2:
        return None
    view = ns.as_numpy_view(A)
    if view is None:
        return None
    return _dense_operator(view, name=name, check_finite=check_finite), ns.array_namespace(A), A
