"""PyTorch's side of benchmarks/kernels.py, which runs it in its own process with the Python that has torch:

    python benchmarks/kernels_torch.py BATCH REPEAT CASES_JSON

and reads the one JSON line it prints: {case: best ms} for the cases kernels.py measures (their shapes in
CASES_JSON), plus torch's version and thread count."""
import json
import sys
import time


def best_ms(fn, repeat):
    """The best of ``repeat`` calls, in ms, after one warm-up call (compilation, caches); kernels.py's too."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * min(times)


def measure(repeat, cases):
    import torch                     # here, not at the top: kernels.py imports best_ms from this file
    F = torch.nn.functional
    torch.manual_seed(0)
    out = {"version": torch.__version__, "threads": torch.get_num_threads()}
    for name in ("conv1", "conv2"):
        xs, ws = cases[name]
        x, w, b = torch.randn(xs), torch.randn(ws), torch.randn(ws[0])
        g = torch.randn(F.conv2d(x, w, b).shape)
        out[name + " forward"] = best_ms(lambda: F.conv2d(x, w, b), repeat)
        out[name + " backward input"] = best_ms(lambda: torch.nn.grad.conv2d_input(xs, w, g), repeat)
        out[name + " backward weight"] = best_ms(lambda: torch.nn.grad.conv2d_weight(x, ws, g), repeat)
    for name, wants_x in cases["fused"].items():        # autograd through max_pool2d(relu(conv2d))
        xs, ws = cases[name]
        x = torch.randn(xs, requires_grad=wants_x)
        w, b = torch.randn(ws, requires_grad=True), torch.randn(ws[0], requires_grad=True)
        y = F.max_pool2d(F.relu(F.conv2d(x, w, b)), 2)
        g = torch.randn(y.shape)
        inputs = (x, w, b) if wants_x else (w, b)
        out[cases["fused_names"][name]] = best_ms(lambda: torch.autograd.grad(y, inputs, g, retain_graph=True),
                                                  repeat)
    for name in ("pool1", "pool2"):
        x = torch.randn(cases[name], requires_grad=True)
        out[name + " max forward"] = best_ms(lambda: F.max_pool2d(x.detach(), 2), repeat)
        y = F.max_pool2d(x, 2)
        g = torch.randn(y.shape)
        out[name + " max backward"] = best_ms(lambda: torch.autograd.grad(y, x, g, retain_graph=True), repeat)
    xs, ws = cases["dense"]
    x, w, b, g = torch.randn(xs), torch.randn(ws[::-1]), torch.randn(ws[1]), torch.randn(xs[0], ws[1])
    out["dense forward"] = best_ms(lambda: F.linear(x, w, b), repeat * 5)
    out["dense backward input"] = best_ms(lambda: g @ w, repeat * 5)
    out["dense backward weight"] = best_ms(lambda: (g.T @ x, g.sum(0)), repeat * 5)
    p = torch.nn.Parameter(torch.randn(cases["adam_params"]))
    p.grad = torch.randn(cases["adam_params"])
    opt = torch.optim.Adam([p])
    out["adam update (34,826 params)"] = best_ms(opt.step, repeat * 20)
    return out


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[2]), json.loads(sys.argv[3]))))
