"""Max-pooling's 2x2 stride-2 windows by SIMD vectors, for the backward pass from x: one row of windows at a time.

The gradient of y = max over each window is g routed to the window's maximum. Found with scalar code,
each window's maximum is a chain of comparisons whose result picks a store address: compiled to
branches, and slower than pooling again into an argmax array and scattering from it. Here the chain is
data, not control: W windows at once (W values to a vector), their elements a, b (row 2i) and c, d
(row 2i + 1) split from two vectors of each row by shuffles (even and odd lanes), the index of the
maximum kept as selects, the four outputs (g where the index matches, else 0) woven back into the two
rows by shuffles and stored; the last vectors of a row are masked (kernels.spans' loads and stores).

The index is max_forward's, bit for bit: the first maximum in the order a, b, c, d (ties to the first),
and a window holding a NaN takes its first NaN. The stored gradient is 0 + g, as max_backward adds g
into zeros (so g = -0.0 gives +0.0 there too).
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ..spans import Vectors


def _emit(builder, elt, x, top, bottom, g, g_off, dx, n):
    v = Vectors(builder, elt, top.type)
    lanes, ints = v.width, ir.VectorType(v.i32, v.width)

    def same(value):
        return ir.Constant(ints, [value] * lanes)

    # weaving e and o back: lanes e0 o0 e1 o1 ... (the first half of each, then the second)
    weave = [ir.Constant(ints, [half * lanes // 2 + i // 2 + (lanes if i % 2 else 0) for i in range(lanes)])
             for half in (0, 1)]
    zero = ir.Constant(v.vec, [0.0] * lanes)

    def body(k, left):                                        # min(lanes, left) windows
        column = builder.add(k, k)
        a, b = v.split_pairs(x, builder.add(top, column), left)
        c, d = v.split_pairs(x, builder.add(bottom, column), left)
        grad = builder.fadd(v.load(v.at(g, builder.add(g_off, k)), v.mask(v.const(0), left), zero), zero)
        best, index = a, same(0)
        for j, value in ((1, b), (2, c), (3, d)):              # a strictly larger value takes over
            larger = builder.fcmp_ordered(">", value, best)
            best = builder.select(larger, value, best)
            index = builder.select(larger, same(j), index)
        for j, value in ((3, d), (2, c), (1, b), (0, a)):      # a NaN wins, the first one last
            index = builder.select(builder.fcmp_unordered("uno", value, value), same(j), index)
        out = [builder.select(builder.icmp_signed("==", index, same(j)), grad, zero) for j in range(4)]
        twice = builder.add(left, left)
        halves = v.mask(v.const(0), twice), v.mask(v.const(0), builder.sub(twice, v.const(lanes)))
        for row, e, o in ((top, out[0], out[1]), (bottom, out[2], out[3])):   # woven back into the two rows
            at = builder.add(row, column)
            for half in (0, 1):
                v.store(builder.shuffle_vector(e, o, weave[half]), v.at(dx, builder.add(at, v.const(half * lanes))),
                        halves[half])

    v.each_vector(n, "windows", body)


@intrinsic
def scatter_row(typingctx, like, x, top, bottom, g, g_off, dx, n):
    """For windows i < n of one output row: dx[top + 2i + s] and dx[bottom + 2i + s] (s = 0, 1) get
    0 + g[g_off + i] where x has the window's maximum (max_forward's choice) and 0 elsewhere. x, g
    and dx are addresses of values of like's type; top and bottom are the offsets of the window's
    two rows (in x and in dx alike), g_off that of the row of g."""
    if like not in (types.float32, types.float64):
        return None
    sig = types.void(like, types.uintp, types.intp, types.intp, types.uintp, types.intp, types.uintp, types.intp)

    def codegen(context, builder, signature, args):
        _emit(builder, context.get_data_type(signature.args[0]), *args[1:])
        return context.get_dummy_value()

    return sig, codegen


def tiles_2x2(geometry):
    """Whether a pooling's windows are 2x2 with stride 2 and no padding: the windows of this module (and the
    pool2d cpu backend's unrolled loops)."""
    return geometry.kernel_size == (2, 2) and geometry.stride == (2, 2) and geometry.padding == (0, 0)
