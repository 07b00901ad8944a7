"""Short runs of contiguous values moved by whole SIMD vectors, the last one masked: im2col's copies,
col2im's sums, the split of g's rows into even and odd columns for Winograd's backward weight, and
Winograd's output tiles turned from vectors of filters into runs of output rows.

im2col copies runs as long as an output row (11 values for the Keras CNN's conv2) and col2im adds them
back. Numba's loop vectoriser handles only runs longer than its vector body (the vector width times
its interleave), so such runs went one value at a time. These are LLVM IR written with llvmlite, as
microkernel's block is: plain vector loads and stores for whole vectors, and ``llvm.masked.load`` /
``llvm.masked.store`` for the last one, whose lanes past the run are switched off (neither read nor
written, so a run may end anywhere in its array).

- ``copy_run(like, src, s_off, dst, d_off, n)``: dst[d_off + k] = src[s_off + k] for k < n.
- ``split_run(like, src, s_off, dst, even, odd, n)``: dst[even + k] = src[s_off + 2k] and
  dst[odd + k] = src[s_off + 2k + 1] for k < n: a run's even and odd values apart (two vectors of the
  run split by shuffles).
- ``add_runs(like, dst, d_off, lanes, src, table, first, count, base)``: one vector of dst (its first
  ``lanes`` lanes) plus masked runs of src, in the order the table lists them, kept in a register and
  stored once: the sums col2im makes for one row of an image, each value's terms added in the same
  order as one run at a time would add them (the same bits). A masked-off lane adds -0.0, which
  leaves every value as it is (-0.0 included).
- ``columns_to_rows(like, src, s_off, offsets, k, lanes, bias, b_off, relu, dst, d_off, d_step, n)``: up
  to a vector of rows, each a vector of src, plus a bias vector (then ReLU), transposed in registers
  so that lane l of every row lands in one run of dst (a filter's part of an output row).

Addresses are integers (``arr.ctypes.data``) and offsets count elements of the type of ``like``
(float32 or float64), so each compiles once per type.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, register_jitable

from .microkernel import VECTOR_BYTES

#: add_runs' table: one row per run, (offset from ``base``, first lane, lane past the last).
TABLE_COLUMNS = 3


@register_jitable
def lanes(itemsize):
    """Values of ``itemsize`` bytes in one SIMD vector (add_runs' ``lanes`` is at most this)."""
    return VECTOR_BYTES // itemsize


class Vectors:
    """IR helpers for one element type (the intrinsics here and pool2d.windows): vector pointers, masks, masked
    loads and stores, a loop over whole vectors, a run split into its even and odd values."""

    def __init__(self, builder, elt, intp):
        self.builder, self.elt, self.intp = builder, elt, intp
        self.width = lanes(4 if isinstance(elt, ir.FloatType) else 8)
        self.vec = ir.VectorType(elt, self.width)
        size = "f32" if isinstance(elt, ir.FloatType) else "f64"
        self.i32 = ir.IntType(32)
        mask = ir.VectorType(ir.IntType(1), self.width)
        pointer = self.vec.as_pointer()
        self._load = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(self.vec, [pointer, self.i32, mask, self.vec]),
            f"llvm.masked.load.v{self.width}{size}.p0")
        self._store = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [self.vec, pointer, self.i32, mask]),
            f"llvm.masked.store.v{self.width}{size}.p0")
        self.minus_zero = ir.Constant(self.vec, [-0.0] * self.width)

    def at(self, address, offset):
        """A vector pointer to element ``offset`` after ``address`` (an integer)."""
        b = self.builder
        return b.bitcast(b.gep(b.inttoptr(address, self.elt.as_pointer()), [offset]), self.vec.as_pointer())

    def splat(self, value):
        b, lanes_type = self.builder, ir.VectorType(self.i32, self.width)
        undef = ir.Constant(lanes_type, ir.Undefined)
        one = b.insert_element(undef, b.trunc(value, self.i32), ir.Constant(self.i32, 0))
        return b.shuffle_vector(one, undef, ir.Constant(lanes_type, [0] * self.width))

    def mask(self, lo, hi):
        """Lanes lo <= l < hi (intp values, lo may be 0 and hi past the width)."""
        b = self.builder
        index = ir.Constant(ir.VectorType(self.i32, self.width), list(range(self.width)))
        width = ir.Constant(self.intp, self.width)
        hi = b.select(b.icmp_signed(">", hi, width), width, hi)           # clipped before the cut to 32 bits
        upper = b.icmp_signed("<", index, self.splat(hi))
        return b.and_(upper, b.icmp_signed(">=", index, self.splat(lo)))

    def load(self, pointer, mask, passthru):
        return self.builder.call(self._load, [pointer, ir.Constant(self.i32, 1), mask, passthru])

    def store(self, value, pointer, mask):
        self.builder.call(self._store, [value, pointer, ir.Constant(self.i32, 1), mask])

    def const(self, value):
        return ir.Constant(self.intp, value)

    def each_vector(self, n, name, body):
        """IR for ``body(k, left)`` at k = 0, width, 2 width, ... while k < n (left = n - k; the body masks
        the lanes past n): a loop of basic blocks named after ``name``."""
        b = self.builder
        entry = b.block
        head, loop, done = (b.append_basic_block(f"{name}.{part}") for part in ("head", "body", "done"))
        b.branch(head)
        b.position_at_end(head)
        k = b.phi(self.intp)
        k.add_incoming(self.const(0), entry)
        b.cbranch(b.icmp_signed("<", k, n), loop, done)
        b.position_at_end(loop)
        body(k, b.sub(n, k))
        k.add_incoming(b.add(k, self.const(self.width)), b.block)
        b.branch(head)
        b.position_at_end(done)

    def split_pairs(self, address, offset, left):
        """(even, odd): for lanes l < min(left, width), the values at element offset + 2l and offset + 2l + 1
        after ``address``, split from two vectors by shuffles (the other lanes -0.0; nothing past read)."""
        b, twice = self.builder, self.builder.add(left, left)
        u0 = self.load(self.at(address, offset), self.mask(self.const(0), twice), self.minus_zero)
        u1 = self.load(self.at(address, b.add(offset, self.const(self.width))),
                       self.mask(self.const(0), b.sub(twice, self.const(self.width))), self.minus_zero)
        ints = ir.VectorType(self.i32, self.width)
        return tuple(b.shuffle_vector(u0, u1, ir.Constant(ints, [2 * i + s for i in range(self.width)]))
                     for s in (0, 1))


def _emit_copy(builder, elt, src, s_off, dst, d_off, n):
    v = Vectors(builder, elt, s_off.type)
    width, zero = ir.Constant(v.intp, v.width), ir.Constant(v.intp, 0)
    entry = builder.block
    head, body, tail = (builder.append_basic_block(f"copy_run.{name}") for name in ("head", "body", "tail"))
    builder.branch(head)
    builder.position_at_end(head)                      # whole vectors while they fit
    k = builder.phi(v.intp)
    k.add_incoming(zero, entry)
    builder.cbranch(builder.icmp_signed("<=", builder.add(k, width), n), body, tail)
    builder.position_at_end(body)
    value = builder.load(v.at(src, builder.add(s_off, k)), align=1)
    builder.store(value, v.at(dst, builder.add(d_off, k)), align=1)
    k.add_incoming(builder.add(k, width), body)
    builder.branch(head)
    builder.position_at_end(tail)                      # the rest (maybe none): one masked vector
    mask = v.mask(zero, builder.sub(n, k))
    value = v.load(v.at(src, builder.add(s_off, k)), mask, v.minus_zero)
    v.store(value, v.at(dst, builder.add(d_off, k)), mask)


@intrinsic
def copy_run(typingctx, like, src, s_off, dst, d_off, n):
    """dst[d_off + k] = src[s_off + k] for k < n; src and dst are addresses of values of like's type."""
    if like not in (types.float32, types.float64):
        return None
    sig = types.void(like, types.uintp, types.intp, types.uintp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        _emit_copy(builder, context.get_data_type(signature.args[0]), *args[1:])
        return context.get_dummy_value()

    return sig, codegen


def _emit_split(builder, elt, src, s_off, dst, even, odd, n):
    v = Vectors(builder, elt, s_off.type)

    def body(k, left):                                 # min(width, left) pairs: 2 * that many values
        mask = v.mask(v.const(0), left)
        for offset, half in zip((even, odd), v.split_pairs(src, builder.add(s_off, builder.add(k, k)), left)):
            v.store(half, v.at(dst, builder.add(offset, k)), mask)

    v.each_vector(n, "split_run", body)


@intrinsic
def split_run(typingctx, like, src, s_off, dst, even, odd, n):
    """dst[even + k] = src[s_off + 2k] and dst[odd + k] = src[s_off + 2k + 1] for k < n; src and dst are
    addresses of values of like's type."""
    if like not in (types.float32, types.float64):
        return None
    sig = types.void(like, types.uintp, types.intp, types.uintp, types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        _emit_split(builder, context.get_data_type(signature.args[0]), *args[1:])
        return context.get_dummy_value()

    return sig, codegen


def _emit_add(builder, elt, dst, d_off, lanes_, src, table, first, count, base):
    v = Vectors(builder, elt, d_off.type)
    intp, zero = v.intp, ir.Constant(d_off.type, 0)
    out_mask = v.mask(zero, lanes_)
    out = v.at(dst, d_off)
    start = v.load(out, out_mask, v.minus_zero)
    rows = builder.inttoptr(table, intp.as_pointer())
    entry = builder.block
    head, body, done = (builder.append_basic_block(f"add_runs.{name}") for name in ("head", "body", "done"))
    builder.branch(head)
    builder.position_at_end(head)
    e = builder.phi(intp)
    e.add_incoming(zero, entry)
    acc = builder.phi(v.vec)
    acc.add_incoming(start, entry)
    builder.cbranch(builder.icmp_signed("<", e, count), body, done)
    builder.position_at_end(body)
    row = builder.mul(builder.add(first, e), ir.Constant(intp, TABLE_COLUMNS))
    offset, lo, hi = (builder.load(builder.gep(rows, [builder.add(row, ir.Constant(intp, j))]))
                      for j in range(TABLE_COLUMNS))
    term = v.load(v.at(src, builder.add(base, offset)), v.mask(lo, hi), v.minus_zero)
    total = builder.fadd(acc, term)
    e.add_incoming(builder.add(e, ir.Constant(intp, 1)), body)
    acc.add_incoming(total, body)
    builder.branch(head)
    builder.position_at_end(done)
    v.store(acc, out, out_mask)


@intrinsic
def add_runs(typingctx, like, dst, d_off, lanes_, src, table, first, count, base):
    """dst[d_off + l] += src[base + offset + l] for lo <= l < hi, for table rows (offset, lo, hi) first ..
    first + count - 1 in order, for the lanes l < ``lanes_`` (at most one vector); dst and src are
    addresses of values of like's type, ``table`` the address of an intp array (rows of TABLE_COLUMNS)."""
    if like not in (types.float32, types.float64):
        return None
    sig = types.void(like, types.uintp, types.intp, types.intp, types.uintp, types.uintp, types.intp, types.intp,
                     types.intp)

    def codegen(context, builder, signature, args):
        _emit_add(builder, context.get_data_type(signature.args[0]), *args[1:])
        return context.get_dummy_value()

    return sig, codegen


def _emit_columns(builder, elt, src, s_off, offsets, k, lanes_, bias, b_off, relu, dst, d_off, d_step, n):
    v = Vectors(builder, elt, s_off.type)
    b, width, zero = builder, v.width, v.const(0)
    rows_at = b.inttoptr(offsets, v.intp.as_pointer())
    shift = v.load(v.at(bias, b_off), v.mask(zero, lanes_), v.minus_zero)
    rows = []
    for r in range(width):                             # row r: lanes < lanes_, none at all past k
        mask = v.mask(zero, b.select(b.icmp_signed("<", v.const(r), k), lanes_, zero))
        at = b.add(s_off, b.load(b.gep(rows_at, [v.const(r)])))
        value = b.fadd(v.load(v.at(src, at), mask, v.minus_zero), shift)
        negative = b.fcmp_ordered("<", value, ir.Constant(v.vec, [0.0] * width))
        relu_value = b.select(negative, ir.Constant(v.vec, [0.0] * width), value)     # formulas.relu: x < 0 -> 0
        rows.append(b.select(b.icmp_signed("!=", relu, zero), relu_value, value))
    ints, step = ir.VectorType(v.i32, width), 1
    while step < width:                                # swap bit `step` of the row with that of the lane
        for r0 in (r for r in range(width) if not r & step):
            r1 = r0 | step
            low = [c if not c & step else width + c - step for c in range(width)]
            high = [c + step if not c & step else width + c for c in range(width)]
            rows[r0], rows[r1] = (b.shuffle_vector(rows[r0], rows[r1], ir.Constant(ints, m)) for m in (low, high))
        step *= 2
    for lane in range(width):                          # lane l's values, now row l: n of them, lanes < lanes_ only
        mask = v.mask(zero, b.select(b.icmp_signed("<", v.const(lane), lanes_), n, zero))
        v.store(rows[lane], v.at(dst, b.add(d_off, b.mul(v.const(lane), d_step))), mask)


@intrinsic
def columns_to_rows(typingctx, like, src, s_off, offsets, k, lanes_, bias, b_off, relu, dst, d_off, d_step, n):
    """dst[d_off + l*d_step + r] = y for r < n and lanes l < ``lanes_``, where y = src[s_off + offsets[r] + l]
    + bias[b_off + l], then formulas.relu's max(y, 0) when ``relu`` is not 0: rows r < k (k, n <= the vector
    width) of one vector each, transposed in registers (log2(width) rounds of shuffles) so that each lane
    becomes a run of dst. ``offsets``: the address of an intp array of a whole vector's entries (those
    past k are not used); src, bias and dst: addresses of values of like's type."""
    if like not in (types.float32, types.float64):
        return None
    sig = types.void(like, types.uintp, types.intp, types.uintp, types.intp, types.intp, types.uintp, types.intp,
                     types.intp, types.uintp, types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        _emit_columns(builder, context.get_data_type(signature.args[0]), *args[1:])
        return context.get_dummy_value()

    return sig, codegen
