# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 1: computational graphs
#
# *Follows section 5.5.4 of the book chapter "CNN Learning" (Khan et al.): eqs. 5.36-5.40,
# Fig. 5.8 and Algorithms 1 and 2.*
#
# A program that computes a function is a chain of elementary operations: additions, powers,
# `sin`, `exp`. Written one operation per line, it becomes a **computational graph**: one node per
# intermediate value, an edge from each operand to each result. Automatic differentiation works on
# that graph. In this lesson you will
#
# 1. record the graph of the book's example, eq. 5.36, and see that it is the book's decomposition
#    (eq. 5.38) and its picture (Fig. 5.8);
# 2. evaluate the graph node by node (Algorithm 1, the forward evaluation);
# 3. sweep it backwards, applying the chain rule once per edge (Algorithm 2, eqs. 5.39 and 5.40),
#    first by hand and then with the engine, step by step;
# 4. check that the sweep gives the book's closed-form derivative, eq. 5.37.
#
# Run it as a script (`python tutorials/diff_01_graphs.py`) or open it as a notebook with Jupytext.
# Pictures are written as SVG to `tutorials/_output/diff_01_graphs/` (or `$TUTORIAL_OUTPUT`);
# rendering them needs Graphviz's `dot` program (`apt-get install graphviz`). Without it the lesson
# still runs to the end, saying which pictures it skipped (a notebook shows the graphs as text).
# As a notebook, the graphs, trace tables and the step-through player show inline.

# %%
import os
import sys
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:  # run as a script: draw into files, never open a window
    matplotlib.use("Agg")
import numpy as np

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
ROOT = HERE.parent if HERE.name == "tutorials" else HERE
sys.path.insert(0, str(ROOT))  # the repository, so that `autodiff` imports without installing
import autodiff as ad
from autodiff.examples import eq_5_37

from chainrule.lessons import show, show_picture, show_steps

OUT = Path(os.environ.get("TUTORIAL_OUTPUT", ROOT / "tutorials" / "_output")) / "diff_01_graphs"
OUT.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## 1. Recording the graph of eq. 5.36
#
# $$y = f(x) = \exp(\sin(x) + \sin(x)^2) + \sin(\exp(x) + \exp(x)^2) \qquad (5.36)$$
#
# The book breaks it into nine basic operations (eq. 5.38). We write the function exactly that
# way, with the engine's operations. Computing with a `Tensor` that has `requires_grad=True`
# records every operation as it runs: the result remembers its operation and its operands.

# %%
def f(x):
    """Eq. 5.36, one elementary operation per line (eq. 5.38)."""
    a = ad.sin(x)
    b = a ** 2
    c = a + b
    d = ad.exp(c)
    e = ad.exp(x)
    f = e ** 2
    g = e + f
    h = ad.sin(g)
    return d + h


x = ad.Tensor(0.5, requires_grad=True, name="x")
y = f(x)
ad.print_graph(y)

# %% [markdown]
# `print_graph` reads the recorded graph back as straight-line code, naming the intermediate nodes
# a, b, c, ... in the order they were computed. It is the book's eq. 5.38, line for line:

# %%
EQ_5_38 = """\
a = sin(x)
b = a ** 2
c = a + b
d = exp(c)
e = exp(x)
f = e ** 2
g = e + f
h = sin(g)
y = d + h"""
assert ad.graph_code(y) == EQ_5_38

order, _ = ad.toposort([y])  # every node, each after the nodes it depends on
operations = [node for node in order if node.op is not None]
edges = [(parent, node) for node in operations for parent in node.inputs]
print(f"{len(order)} nodes (the input x and {len(operations)} operations), {len(edges)} edges")
assert (len(order), len(operations), len(edges)) == (10, 9, 12)

# %% [markdown]
# The picture of the same graph is the book's Fig. 5.8: the input on the left, the output on the
# right, each box one line of eq. 5.38 with the value it computed at x = 0.5.

# %%
fig_5_8 = ad.draw(y, show=("value",), names="letters")
show_picture(fig_5_8, OUT / "fig_5_8.svg")  # inline in a notebook; without `dot`, says so
assert fig_5_8.source.count("->") == len(edges)

# %% [markdown]
# ## 2. Algorithm 1: evaluating the graph
#
# The book's Algorithm 1 evaluates the graph: set $y_0 \leftarrow x$, then for $i = 1 \dots n$
# compute $y_i \leftarrow f^e_i(y_{Pa(f^e_i)})$, each elementary function applied to the values of
# its parents. Any order in which parents come before children works; `toposort` gives the order
# in which the program created the nodes. Here is the algorithm, run on the recorded graph at a
# *new* input: the graph is a program that can be run again.

# %%
def evaluate(order, x_value):
    """Algorithm 1: the value of every node, parents first. Keys are id(node)."""
    values = {}
    for node in order:
        if node.op is None:
            values[id(node)] = x_value                                  # line 1: y_0 <- x
        else:
            parents = [values[id(p)] for p in node.inputs]
            values[id(node)] = node.op.impl(*parents, **node.params)    # line 3: y_i <- f_i(parents)
    return values


values = evaluate(order, 0.5)
assert all(values[id(node)] == node.value for node in order)  # the values recorded while tracing

values = evaluate(order, 1.3)
assert values[id(y)] == f(1.3)  # plain numbers in, plain numbers out: f(1.3) is computed by NumPy
print(f"y(0.5) = {y.item():.6f}, y(1.3) = {values[id(y)]:.6f}")

# %% [markdown]
# The engine's forward trace table lists the same evaluation, one row per node:

# %%
forward_table = ad.trace_table(y, mode="forward")
show(ad.TraceTable("forward", ["node", "expression", "value"], forward_table.rows))

# %% [markdown]
# ## 3. Algorithm 2: the backward sweep
#
# To differentiate, the book's Algorithm 2 walks the graph **backwards**. Write $\bar v$ for
# $dy/dv$, the *adjoint* of node $v$. The output's adjoint is $\bar y = dy/dy = 1$. A node
# influences $y$ only through its children, so by the chain rule
#
# $$\frac{dy}{dy_i} = \sum_{j \in Ch(i)} \frac{dy}{dy_j}\,\frac{d f^e_j}{d y_i},$$
#
# which for our graph is the list of eq. 5.39; for example $a$ feeds both $b = a^2$ and
# $c = a + b$, so $\frac{dy}{da} = \frac{dy}{dc}\frac{dc}{da} + \frac{dy}{db}\frac{db}{da}$.
# Visiting the nodes in reverse order guarantees that every child's adjoint is complete before
# its parents need it. The factors $d f^e_j / d y_i$ are the **local derivatives** of the
# elementary functions (eq. 5.40): $dd/dc = \exp(c)$, $dh/dg = \cos(g)$, $dc/da = dc/db = 1$,
# $df/de = 2e$. Four kinds of operation occur in eq. 5.38, so four rules are all we need:

# %%
def local_derivatives(node):
    """d node / d parent for each parent of ``node`` (eq. 5.40), from the values in the graph."""
    parents = [p.value for p in node.inputs]
    name = node.op.name
    if name == "sin":
        return [np.cos(parents[0])]
    if name == "exp":
        return [node.value]                 # d exp(u)/du = exp(u): the node's own value
    if name == "pow_const":
        p = node.params["p"]
        return [p * parents[0] ** (p - 1)]
    if name == "add":
        return [1.0, 1.0]
    raise NotImplementedError(f"no local derivative for {name!r} yet (exercise 2)")


# %% [markdown]
# The sweep itself, line for line Algorithm 2. It prints each line of eq. 5.39 with its numbers.

# %%
def number(v):
    """A number for the printed equations, in parentheses when negative."""
    return f"({v:.6g})" if v < 0 else f"{v:.6g}"


code_lines = ad.graph_code(y).splitlines()
names = {id(x): "x"} | {id(n): line.split(" = ")[0] for n, line in zip(operations, code_lines)}

children = {id(node): [] for node in order}
for node in reversed(operations):                        # later consumers first, as in eq. 5.39
    for k, parent in enumerate(node.inputs):
        children[id(parent)].append((node, k))

adjoint = {id(y): 1.0}                                   # dy/dy = 1
print("dy/dy = 1")
for node in reversed(order[:-1]):                        # line 2: i from n - 1 down to 0
    terms = [(child, local_derivatives(child)[k]) for child, k in children[id(node)]]
    adjoint[id(node)] = sum(adjoint[id(child)] * local for child, local in terms)   # line 4
    n = names[id(node)]
    if all(child is y for child, _ in terms):             # a direct operand of y: dy/dd = 1, dy/dh = 1
        print(f"dy/d{n} = {adjoint[id(node)]:.6g}")
        continue
    symbolic = " + ".join(f"dy/d{names[id(c)]}·d{names[id(c)]}/d{n}" for c, _ in terms)
    numbers = " + ".join(f"{number(adjoint[id(c)])}·{number(local)}" for c, local in terms)
    print(f"dy/d{n} = {symbolic} = {numbers} = {adjoint[id(node)]:.6g}")

dy_dx = adjoint[id(x)]                                   # line 6: dy/dx = dy/dy_0

# %% [markdown]
# Three nodes have two children, so their lines of eq. 5.39 have two terms: $a$ and $e$ (each used
# twice in eq. 5.38) and the input $x$ itself. Our hand-written sweep agrees with the engine's adjoints
# for every node (`ad.gradients` asks the engine for the adjoint of any node), and its last line is
# the derivative. It equals the book's closed form eq. 5.37, to the last bits:
#
# $$\frac{df}{dx} = \cos(e^{2x} + e^x)(2e^{2x} + e^x) + \exp(\sin(x)^2 + \sin(x))(\cos(x) + 2\cos(x)\sin(x)) \qquad (5.37)$$

# %%
fan_out = sorted(names[key] for key, kids in children.items() if len(kids) == 2)
assert fan_out == ["a", "e", "x"]

engine = ad.gradients(y, order)
for node, g in zip(order, engine):
    assert abs(adjoint[id(node)] - g) <= 1e-15 * max(1.0, abs(g)), names[id(node)]

print(f"dy/dx by our sweep:    {dy_dx:.16f}")
print(f"eq. 5.37 (closed form): {eq_5_37(0.5):.16f}")
assert abs(dy_dx - eq_5_37(0.5)) <= 1e-14 * abs(eq_5_37(0.5))

# %% [markdown]
# ### The engine's backward sweep
#
# `y.backward()` runs the same sweep. Its rules are declared once per primitive (in
# `autodiff/ops/`), exactly like our four local derivatives. The reverse trace table shows each
# node's adjoint and the rule that produced it: each rule is a line of eq. 5.39, with the local
# derivative of eq. 5.40 written out.

# %%
show(ad.trace_table(y, mode="reverse"))

y.backward()
print(f"\nx.grad = {x.grad:.16f}")
assert abs(x.grad - eq_5_37(0.5)) <= 1e-14 * abs(eq_5_37(0.5))

# %% [markdown]
# Step by step: `draw_steps` makes one picture per node, in the order the sweep visits them. The
# node being completed is highlighted and lists its terms; at a node with two children you see
# the sum of eq. 5.39. In a notebook the player below steps through them (buttons, slider or the
# arrow keys), the node's adjoint and its row of the trace table highlighted; the same player is
# written to `reverse_steps.html` (one file, opens offline), the pictures to `reverse_steps/`.
# With `edge_labels=True` every edge carries its local derivative (eq. 5.40: $dd/dc = \exp(c)$,
# $df/de = 2e$), so you see each factor of the chain rule on the edge where it is multiplied.

# %%
steps = ad.draw_steps(y, mode="reverse", names="letters", edge_labels=True)
show_steps(steps, OUT / "reverse_steps")  # the pictures, and the player reverse_steps.html
assert len(steps) == len(order) == 10
assert any("dy/da = dy/dc·dc/da + dy/db·db/da" in step.source for step in steps)
assert any("dy/de = dy/dg·dg/de + dy/df·df/de" in step.source for step in steps)

fig_5_8_adjoints = ad.draw(y, names="letters", edge_labels=True)  # values, adjoints, local derivatives
show_picture(fig_5_8_adjoints, OUT / "fig_5_8_adjoints.svg")
assert f"adjoint {eq_5_37(0.5):.4g}" in fig_5_8_adjoints.source
c_node, e_node = operations[2], operations[4]                       # c = a + b and e = exp(x)
assert f"dd/dc = exp(c) = {np.exp(c_node.item()):.4g}" in fig_5_8_adjoints.source   # eq. 5.40
assert f"df/de = 2*e = {2 * e_node.item():.4g}" in fig_5_8_adjoints.source

# %% [markdown]
# ## 4. What it cost
#
# The forward evaluation applied 9 elementary functions; the backward sweep evaluated one local
# derivative per edge (12) and one multiply-add per term. That is the book's point after eq. 5.40:
# once the function is decomposed, the derivative costs about as much as the function, however
# complicated its closed form (compare eq. 5.37 with eq. 5.38). Every intermediate adjoint came
# for free on the way: $dy/da, dy/db, \dots$ are what back-propagation uses as the gradients
# with respect to a network's intermediate layers.

# %%
local_evaluations = sum(len(children[id(node)]) for node in order)
assert local_evaluations == len(edges) == 12
print(f"forward: {len(operations)} operations; backward: {local_evaluations} local derivatives")

# %% [markdown]
# ## Exercises
#
# 1. **Another point.** Run `evaluate(order, -1.0)` and the backward sweep at $x = -1$ (record a
#    new graph with `f(ad.Tensor(-1.0, requires_grad=True))`). Check the result with `eq_5_37(-1.0)`.
# 2. **A new rule.** Record $y = x \sin(x)^2$. Its graph has a `mul` node, which
#    `local_derivatives` does not know: add the rule ($\partial(uv)/\partial u = v$,
#    $\partial(uv)/\partial v = u$), run the hand-written sweep on the new graph, and compare with
#    `ad.grad(lambda t: t * ad.sin(t) ** 2)(0.5)`.
# 3. **Shared subexpressions.** Write eq. 5.36 as `ad.exp(ad.sin(x) + ad.sin(x) ** 2) + ...`,
#    calling `sin` twice. How many nodes does `print_graph` show now, and does the derivative
#    change? (The command line, `chainrule graph "..."`, merges repeated subexpressions: try it.)
# 4. **Order matters.** Visit the nodes of Algorithm 2 in the order x, a, b, ... instead of
#    reversed. Which adjoint is read before it is complete, and what wrong value results?
# 5. **Pictures.** Redraw Fig. 5.8 with `rankdir="TB"` and with `show=("value", "grad")`, and
#    save them next to the others.
