// The step-through player's script (autodiff/player.py puts it inline in the page).
// root: the .cr-player element; its .cr-data script holds the steps as JSON. A table cell with
// data-from="k" holds a number step k computes (player.py takes k from the step list): hidden
// before step k, highlighted at it. Hidden things keep their room, so nothing moves.
function chainrulePlayer(root) {
  var data = JSON.parse(root.querySelector(".cr-data").textContent);
  var steps = data.steps, n = steps.length, current = 0;
  var slider = root.querySelector(".cr-slider");
  var frames = root.querySelectorAll(".cr-frame");
  var rows = root.querySelectorAll(".cr-table tr[data-step]");
  var cells = root.querySelectorAll(".cr-table td[data-from]");

  function show(k) {
    current = Math.max(0, Math.min(n - 1, k));
    var s = steps[current];
    frames.forEach(function (f) { f.hidden = Number(f.dataset.step) !== current; });
    rows.forEach(function (r) { r.classList.toggle("cr-row-current", Number(r.dataset.step) === current); });
    cells.forEach(function (c) {
      var from = Number(c.dataset.from);
      c.classList.toggle("cr-hidden", from > current);
      c.classList.toggle("cr-new", from === current);
    });
    root.dataset.step = String(current + 1);
    root.dataset.node = s.node;
    root.querySelector(".cr-node").textContent = s.node;
    root.querySelector(".cr-quantity").textContent = s.quantity;
    root.querySelector(".cr-value").textContent = s.value;
    root.querySelector(".cr-terms").textContent = s.terms.length ? "\n" + s.terms.join("\n") : "";
    root.querySelector(".cr-counter").textContent =
      data.mode + " sweep, step " + (current + 1) + " of " + n;
    slider.value = String(current + 1);
  }

  var actions = {
    first: function () { show(0); }, prev: function () { show(current - 1); },
    next: function () { show(current + 1); }, last: function () { show(n - 1); }
  };
  root.querySelectorAll("button[data-act]").forEach(function (b) {
    b.addEventListener("click", function () { actions[b.dataset.act](); root.focus(); });
  });
  slider.addEventListener("input", function () { show(Number(slider.value) - 1); });

  var keys = { ArrowRight: "next", ArrowDown: "next", ArrowLeft: "prev", ArrowUp: "prev", Home: "first", End: "last" };
  function onKey(event) {
    if (event.target === slider) return;  // the slider moves itself with the arrows
    var act = keys[event.key];
    if (!act) return;
    event.preventDefault();
    event.stopPropagation();
    actions[act]();
  }
  root.addEventListener("keydown", onKey);
  if (data.standalone) {  // a page of its own: the arrows work without clicking the player first
    document.addEventListener("keydown", function (event) { if (!root.contains(event.target)) onKey(event); });
  }
  show(0);
}
