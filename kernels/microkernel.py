"""Small matrix products inside the kernels' threads, by a register-blocked micro-kernel of our own.

``gemm(a, b, c, accumulate)`` sets ``c = a @ b`` (or adds it to ``c``) for the products a convolution
makes per image or per block of tiles (a few dozen to a few hundred rows and columns). It is the
design of every fast BLAS (Goto and van de Geijn, 2008) reduced to its core: ``c`` is cut into
blocks of a few rows by a few SIMD vectors of columns, and a block's sums stay in vector registers
for the whole inner dimension:

    for k in range(K):                          # each step: one load per vector of b's row k,
        acc[r][v] = fma(a[r, k], b[k, v], acc[r][v])    # a[r, k] broadcast, rows x vectors FMAs

then the block is stored once. With AVX-512 (16 floats to a vector) a block keeps ``SUMS`` = 16
registers of sums: 4 rows by 4 vectors where c is at least 3 vectors wide, 8 by 2 or 16 by 1 where it
is narrower; each value loaded feeds 4 to 16 multiply-adds.

Numba cannot be asked for this from Python loops: its vectoriser turns a loop over k into vectors
along k (gathers from b's columns), and the compiler does not combine scalar sums into vectors. So
``_block`` is a Numba ``@intrinsic``: its loop is written in LLVM IR with llvmlite, Numba's own code
generator, on ``<W x float>`` vectors with ``llvm.fma``, W as wide as the CPU's vectors (a zmm
register with AVX-512, a ymm with AVX2). No C compiler and no BLAS: the convolutions' speed does
not depend on which kernels OpenBLAS chose for the CPU (or was told to use), and
``benchmarks/kernels.py`` compares the two.

Each entry of ``c`` is its start (0, or c's value when ``accumulate``) plus a[i, k] * b[k, j] for
k = 0, 1, ... in order, one fused multiply-add at a time, whatever the block it falls in; so the
result does not depend on the shapes around it, the thread count or the run, and the kernels that
call it stay bitwise reproducible. The inner dimension is taken ``DEPTH`` steps at a time (the part
of b a block reads stays in the core's cache); a block's sums pass between those chunks through c
as they are (float32 or float64 already: nothing is rounded on the way). Rows and columns that do
not fill a whole block are copied into zero-padded scratch and multiplied there.

>>> import numpy as np
>>> a = np.arange(6, dtype=np.float32).reshape(2, 3)
>>> b = np.ones((3, 20), dtype=np.float32)
>>> c = np.empty((2, 20), dtype=np.float32)
>>> gemm(a, b, c, False); c[:, 0]
array([ 3., 12.], dtype=float32)
>>> gemm(np.asfortranarray(a), b, c, True); c[:, 19]   # accumulate: c += a @ b (a: any strides)
array([ 6., 24.], dtype=float32)
"""
from __future__ import annotations

import llvmlite.binding as llvm_binding
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils, config
from numba.extending import intrinsic, overload, register_jitable

from ._cache import cfunc, njit
from ._recycle import ALIGN


def _vector_bytes():
    """The width of the widest float vectors Numba compiles for: 64 bytes with AVX-512, 32 with AVX, 16
    else. That is this machine's, unless Numba was told to compile for another CPU (NUMBA_CPU_NAME, for
    a cache shared between machines): then the features given with it (NUMBA_CPU_FEATURES), if any."""
    if config.CPU_NAME:
        given = (config.CPU_FEATURES or "").split(",")
        return 64 if "+avx512f" in given else (32 if "+avx" in given else 16)
    features = llvm_binding.get_host_cpu_features()
    if features.get("avx512f"):
        return 64
    return 32 if features.get("avx") else 16


#: Bytes in one SIMD vector of this machine; the sums a block keeps in registers (16 of the 32 zmm
#: registers with AVX-512, 8 of the 16 ymm without); at most VECTORS vectors across a block.
VECTOR_BYTES = _vector_bytes()
SUMS = 16 if VECTOR_BYTES == 64 else 8
VECTORS = 4 if VECTOR_BYTES == 64 else 2
#: A block's rows: SUMS / VECTORS where c has that many vectors across, taller where c is narrower
#: (the Winograd products' 32 columns: 8 rows of 2 vectors), so every block keeps SUMS sums.
ROWS_WIDE, ROWS_HALF, ROWS_ONE = SUMS // VECTORS, SUMS // 2, SUMS
#: The inner dimension is taken this many steps at a time (b's panel for a block stays in cache).
DEPTH = 256


@register_jitable
def aligned_empty(rows, cols, like):
    """An uninitialised (rows, cols) array of ``like``'s dtype that starts on an ALIGN-byte boundary (a
    cache line, as the recycled outputs: a vector load that crosses one costs two, and arrays from NumPy
    and Numba start on 16 and 32 bytes): scratch for gemm's b and c, whose rows of whole vectors then
    all start on one.

    >>> a = aligned_empty(3, 16, np.zeros(1, np.float32))
    >>> a.shape, a.dtype, a.ctypes.data % ALIGN
    ((3, 16), dtype('float32'), 0)
    """
    spare = ALIGN // like.itemsize
    raw = np.empty(rows * cols + spare, dtype=like.dtype)
    skip = (ALIGN - raw.ctypes.data % ALIGN) % ALIGN // like.itemsize
    return raw[skip:skip + rows * cols].reshape(rows, cols)


#: _block's and _blocks' arguments after (rows, vectors, an element): a's address, offset, row and k
#: strides; b's address, offset, k stride; c's address, offset, row stride; the depth; accumulate.
_ADDRESSES = (types.uintp, types.intp, types.intp, types.intp, types.uintp, types.intp, types.intp, types.uintp,
              types.intp, types.intp, types.intp, types.boolean)


@register_jitable
def whole_vectors(n, itemsize):
    """n rounded up to whole vectors of ``itemsize``-byte values: a product whose columns are padded
    (with zeros) to it takes gemm's fast path, with no edge to copy through scratch.

    >>> whole_vectors(121, 4) == -(-121 // (VECTOR_BYTES // 4)) * (VECTOR_BYTES // 4)   # 128 with AVX-512
    True
    """
    width = VECTOR_BYTES // itemsize
    return (n + width - 1) // width * width


@register_jitable
def block_rows(n, itemsize):
    """The rows of gemm's blocks where c has ``n`` columns of ``itemsize``-byte values: a product with a
    multiple of it in rows and whole vectors in columns takes gemm's fast path.

    >>> block_rows(64, 4) == (ROWS_WIDE if 64 // (VECTOR_BYTES // 4) > 2 else ROWS_HALF)
    True
    """
    across = n // (VECTOR_BYTES // itemsize)
    return ROWS_WIDE if across > 2 else (ROWS_HALF if across == 2 else ROWS_ONE)


def _emit(builder, elt, nr, nv, a_, a_off, a_rs, a_ks, b_, b_off, b_ks, c_, c_off, c_rs, depth, accumulate):
    """_block's code, where the builder is: the loop over k with the nr x nv sums in registers (phi nodes)."""
    pa, pb, pc = (builder.inttoptr(address, elt.as_pointer()) for address in (a_, b_, c_))
    width = VECTOR_BYTES // (4 if isinstance(elt, ir.FloatType) else 8)
    vec = ir.VectorType(elt, width)
    size = "f32" if isinstance(elt, ir.FloatType) else "f64"
    fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3),
                                         f"llvm.fma.v{width}{size}")
    intp = a_off.type

    def const(value):
        return ir.Constant(intp, value)

    def vector_at(base, offset):
        return builder.bitcast(builder.gep(base, [offset]), vec.as_pointer())

    def c_at(r, v):
        return vector_at(pc, builder.add(builder.add(c_off, builder.mul(const(r), c_rs)), const(v * width)))

    zero = ir.Constant(vec, None)
    load, head, body, done = (builder.append_basic_block(f"microkernel.{name}")
                              for name in ("load", "head", "body", "done"))
    entry = builder.block
    builder.cbranch(accumulate, load, head)           # c's block is read only when accumulating
    builder.position_at_end(load)
    loaded = [builder.load(c_at(r, v), align=1) for r in range(nr) for v in range(nv)]
    builder.branch(head)
    builder.position_at_end(head)                     # k and the sums: phi nodes, the sums in registers
    k = builder.phi(intp)
    k.add_incoming(const(0), entry)
    k.add_incoming(const(0), load)
    sums = []
    for value in loaded:
        phi = builder.phi(vec)
        phi.add_incoming(zero, entry)
        phi.add_incoming(value, load)
        sums.append(phi)
    builder.cbranch(builder.icmp_signed("<", k, depth), body, done)
    builder.position_at_end(body)
    row = builder.add(b_off, builder.mul(k, b_ks))
    bv = [builder.load(vector_at(pb, builder.add(row, const(v * width))), align=1) for v in range(nv)]
    column = builder.add(a_off, builder.mul(k, a_ks))
    undef = ir.Constant(vec, ir.Undefined)
    lane0, splat = ir.Constant(ir.IntType(32), 0), ir.Constant(ir.VectorType(ir.IntType(32), width), [0] * width)
    new = []
    for r in range(nr):
        scalar = builder.load(builder.gep(pa, [builder.add(column, builder.mul(const(r), a_rs))]))
        broadcast = builder.shuffle_vector(builder.insert_element(undef, scalar, lane0), undef, splat)
        new.extend(builder.call(fma, [broadcast, bv[v], sums[r * nv + v]]) for v in range(nv))
    k.add_incoming(builder.add(k, const(1)), builder.block)
    for phi, value in zip(sums, new):
        phi.add_incoming(value, builder.block)
    builder.branch(head)
    builder.position_at_end(done)
    for r in range(nr):
        for v in range(nv):
            builder.store(sums[r * nv + v], c_at(r, v), align=1)


@intrinsic(prefer_literal=True)
def _block(typingctx, rows, vectors, zero, a, a_off, a_rs, a_ks, b, b_off, b_ks, c, c_off, c_rs, depth, accumulate):
    """c[r, v] (+)= sum over k < depth of a[r, k] * b[k, v] for ``rows`` rows and ``vectors`` vectors (literals).

    a, b and c are the addresses of their first elements (``arr.ctypes.data``), of the type of ``zero``
    (float32 or float64): so the block compiles once per type, whatever the arrays' layouts. Element
    offsets: a[r, k] at a_off + r*a_rs + k*a_ks, b[k, v] at b_off + k*b_ks + v (v counts elements,
    vectors * W of them), c[r, v] at c_off + r*c_rs + v."""
    if not isinstance(rows, types.IntegerLiteral) or not isinstance(vectors, types.IntegerLiteral) or (
            zero not in (types.float32, types.float64)):
        return None
    nr, nv = rows.literal_value, vectors.literal_value
    sig = types.void(rows, vectors, zero, *_ADDRESSES)

    def codegen(context, builder, signature, args):
        _emit(builder, context.get_data_type(signature.args[2]), nr, nv, *args[3:])
        return context.get_dummy_value()

    return sig, codegen


@register_jitable
def _blocks(rows, nv, like, a, a_off, a_rs, a_ks, b, b_off, b_ks, c, c_off, c_rs, depth, accumulate):
    """_block for run-time ``rows`` (ROWS_WIDE, ROWS_HALF or ROWS_ONE) and ``nv`` vectors (up to SUMS / rows):
    one call site per pair of literals. a, b, c: addresses; ``like``: a value of their elements' type."""
    if rows == ROWS_WIDE:
        if nv == 1:
            _block(ROWS_WIDE, 1, like, a, a_off, a_rs, a_ks, b, b_off, b_ks, c, c_off, c_rs, depth, accumulate)
        elif nv == 2:
            _block(ROWS_WIDE, 2, like, a, a_off, a_rs, a_ks, b, b_off, b_ks, c, c_off, c_rs, depth, accumulate)
        elif nv == 3:
            _block(ROWS_WIDE, 3, like, a, a_off, a_rs, a_ks, b, b_off, b_ks, c, c_off, c_rs, depth, accumulate)
        else:
            _block(ROWS_WIDE, 4, like, a, a_off, a_rs, a_ks, b, b_off, b_ks, c, c_off, c_rs, depth, accumulate)
    elif rows == ROWS_HALF:
        if nv == 1:
            _block(ROWS_HALF, 1, like, a, a_off, a_rs, a_ks, b, b_off, b_ks, c, c_off, c_rs, depth, accumulate)
        else:
            _block(ROWS_HALF, 2, like, a, a_off, a_rs, a_ks, b, b_off, b_ks, c, c_off, c_rs, depth, accumulate)
    else:
        _block(ROWS_ONE, 1, like, a, a_off, a_rs, a_ks, b, b_off, b_ks, c, c_off, c_rs, depth, accumulate)


def _panel(rows, m, cols, depth_all, width, like, a, a_off, a_rs, a_ks, b, b_off, b_ks, c, c_off, c_rs, accumulate):
    """c[i, j] (+)= a[i, :] @ b[:, j] for i < m (whole blocks of ``rows``) and j < cols (whole vectors of
    ``width``), the inner dimension DEPTH steps at a time, a chunk's sums passing to the next through c.
    Addresses and element offsets as _block's; ``accumulate`` 0 or 1."""
    for k0 in range(0, depth_all, DEPTH):
        depth = min(DEPTH, depth_all - k0)
        acc = accumulate != 0 or k0 > 0
        for i in range(0, m, rows):
            j = 0
            while j < cols:
                nv = min(SUMS // rows, (cols - j) // width)
                _blocks(rows, nv, like, a, a_off + i * a_rs + k0 * a_ks, a_rs, a_ks, b, b_off + k0 * b_ks + j, b_ks,
                        c, c_off + i * c_rs + j, c_rs, depth, acc)
                j += nv * width


# _panel is compiled once per type into a C function at a fixed address (at import, or loaded from
# the cache) and called by name. A kernel calling gemm then links a call, not the blocks' code, which
# Numba would otherwise optimise again with every kernel (and with each one's parallel loop).
_PANELS = {}
for _dtype in (types.float32, types.float64):
    _signature = types.void(*(types.intp,) * 5, _dtype, *_ADDRESSES[:-2], types.intp)
    _compiled = cfunc(_signature, cache=True)(_panel)
    llvm_binding.add_symbol(f"chainrule_microkernel_panel_{_dtype}", _compiled.address)
    _PANELS[_dtype] = _compiled, types.ExternalFunction(f"chainrule_microkernel_panel_{_dtype}", _signature)


def panel(rows, m, cols, depth, width, like, a, a_off, a_rs, a_ks, b, b_off, b_ks, c, c_off, c_rs, accumulate):
    """_panel's compiled C function for the type of ``like``, from compiled code (gemm's)."""
    raise NotImplementedError("microkernel.panel is called from compiled code only; use gemm")


@overload(panel)
def _panel_of_type(rows, m, cols, depth, width, like, a, a_off, a_rs, a_ks, b, b_off, b_ks, c, c_off, c_rs,
                   accumulate):
    if like not in _PANELS:
        return None
    external = _PANELS[like][1]

    def call(rows, m, cols, depth, width, like, a, a_off, a_rs, a_ks, b, b_off, b_ks, c, c_off, c_rs, accumulate):
        external(rows, m, cols, depth, width, like, a, a_off, a_rs, a_ks, b, b_off, b_ks, c, c_off, c_rs,
                 1 if accumulate else 0)
    return call


@njit(cache=True)
def gemm(a, b, c, accumulate):
    """c (M, N) = a (M, K) @ b (K, N), or c += a @ b when ``accumulate``: see the module docstring.

    b's and c's rows must be contiguous (a unit last stride); a may have any strides (a transposed
    view multiplies without a copy). Raises ValueError for shapes that do not match."""
    m, depth_all = a.shape
    n = b.shape[1]
    item = a.itemsize
    if b.shape[0] != depth_all:
        raise ValueError("gemm: shapes do not match: b must have as many rows as a has columns (a (M, K), b (K, N))")
    if c.shape[0] != m or c.shape[1] != n:
        raise ValueError("gemm: shapes do not match: c must be (M, N), a's rows by b's columns")
    if depth_all == 0 or m == 0 or n == 0:       # an empty sum: c is 0 (or stays as it is)
        if not accumulate:
            c[:, :] = 0
        return
    if (b.strides[1] != item and n > 1) or (c.strides[1] != item and n > 1) or b.itemsize != item:
        raise ValueError("gemm: b and c need contiguous rows of a's dtype")
    a_rs, a_ks, b_ks, c_rs = a.strides[0] // item, a.strides[1] // item, b.strides[0] // item, c.strides[0] // item
    width = VECTOR_BYTES // item
    whole = n - n % width                         # columns in whole vectors; the rest, fewer than width, padded
    tall = block_rows(n, item)
    if whole == n and m % tall == 0:              # whole blocks only: no scratch to allocate
        panel(tall, m, n, depth_all, width, c[0, 0], a.ctypes.data, 0, a_rs, a_ks, b.ctypes.data, 0, b_ks,
              c.ctypes.data, 0, c_rs, accumulate)
        return
    _padded_gemm(a, b, c, accumulate, a_rs, a_ks, b_ks, c_rs, width, whole, tall)


@njit(cache=True)
def _padded_gemm(a, b, c, accumulate, a_rs, a_ks, b_ks, c_rs, width, whole, tall):
    """gemm where the last rows or columns do not fill a whole block: the whole blocks straight into c,
    the others from zero-padded copies of a's last rows and b's last columns, through scratch for c."""
    m, depth_all = a.shape
    n = b.shape[1]
    full = m - m % tall                           # rows in whole blocks; the rest padded
    b_pad = np.empty((DEPTH if whole < n else 0, width), dtype=c.dtype)      # scratch, only where needed
    a_pad = np.empty((tall, DEPTH if full < m else 0), dtype=c.dtype)
    c_pad = np.zeros((tall, VECTORS * width), dtype=c.dtype)
    like, pa, pb, pc, pc_pad = c[0, 0], a.ctypes.data, b.ctypes.data, c.ctypes.data, c_pad.ctypes.data
    for k0 in range(0, depth_all, DEPTH):
        depth = min(DEPTH, depth_all - k0)
        acc = accumulate or k0 > 0
        panel(tall, full, whole, depth, width, like, pa, k0 * a_ks, a_rs, a_ks, pb, k0 * b_ks, b_ks, pc, 0, c_rs, acc)
        if whole < n:                             # the last columns, zero-padded to one vector
            for k in range(depth):
                for q in range(width):
                    b_pad[k, q] = b[k0 + k, whole + q] if whole + q < n else 0
        if full < m:                              # the last rows, zero-padded to a whole block
            for r in range(tall):
                for k in range(depth):
                    a_pad[r, k] = a[full + r, k0 + k] if full + r < m else 0
        for i in range(0, m, tall):               # the blocks left: the last rows, the last columns
            rows = min(tall, m - i)
            a_at, a_off, ars, aks = pa, i * a_rs + k0 * a_ks, a_rs, a_ks
            if rows < tall:
                a_at, a_off, ars, aks = a_pad.ctypes.data, 0, DEPTH, 1
            j = 0 if rows < tall else whole
            while j < n:
                b_at, b_off, bks, nv, cols = pb, k0 * b_ks + j, b_ks, 1, n - whole
                if j < whole:
                    nv = min(SUMS // tall, (whole - j) // width)
                    cols = nv * width
                else:
                    b_at, b_off, bks = b_pad.ctypes.data, 0, width
                for r in range(tall):
                    for q in range(nv * width):
                        c_pad[r, q] = c[i + r, j + q] if acc and r < rows and q < cols else 0
                panel(tall, tall, nv * width, depth, width, like, a_at, a_off, ars, aks, b_at, b_off, bks, pc_pad, 0,
                      VECTORS * width, True)
                for r in range(rows):
                    for q in range(cols):
                        c[i + r, j + q] = c_pad[r, q]
                j += cols
