// Small behaviours any page may ask for with a data attribute (the
// Content-Security-Policy allows no inline event handlers):
//   <form data-confirm="Question?">    asks before submitting (or on the one
//                                       submit button that carries it);
//   <button data-print>                prints the page;
//   <input data-select-all="NAME">     ticks every box called NAME of its form
//                                       (boxes elsewhere with form="…" too);
//                                       shown only when this script runs;
//   <form data-selection>              [data-selected-count] inside says how
//                                       many of its boxes are ticked.
document.addEventListener("submit", function (event) {
  var form = event.target, button = event.submitter;
  var question = (button && button.dataset.confirm) || (form.dataset && form.dataset.confirm);
  if (question && !window.confirm(question)) event.preventDefault();
});
document.addEventListener("click", function (event) {
  var button = event.target.closest && event.target.closest("[data-print]");
  if (button) window.print();
});
document.addEventListener("DOMContentLoaded", function () {
  function boxes(form, name) {
    return Array.prototype.filter.call(form.elements, function (e) {
      return e.type === "checkbox" && !e.hasAttribute("data-select-all") && (!name || e.name === name);
    });
  }
  function count(form) {
    var label = form.querySelector("[data-selected-count]"), all = form.querySelector("[data-select-all]");
    var ticked = boxes(form, "items").filter(function (b) { return b.checked; }).length;
    if (label) label.textContent = ticked ? ticked + " selected" : label.dataset.total;
    if (all) all.checked = ticked > 0 && ticked === boxes(form, "items").length;
  }
  document.querySelectorAll("[data-select-all]").forEach(function (all) {
    var wrap = all.closest("[hidden]");
    if (wrap) wrap.hidden = false;
    all.addEventListener("change", function () {
      boxes(all.form, all.dataset.selectAll).forEach(function (box) { box.checked = all.checked; });
      if (all.form.hasAttribute("data-selection")) count(all.form);
    });
  });
  document.querySelectorAll("form[data-selection]").forEach(function (form) {
    boxes(form, "items").forEach(function (box) { box.addEventListener("change", function () { count(form); }); });
    count(form);  // boxes the browser kept ticked on going back
  });
});
