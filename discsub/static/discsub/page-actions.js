// Small behaviours any page may ask for with a data attribute (the
// Content-Security-Policy allows no inline event handlers):
//   <form data-confirm="Question?">  asks before submitting;
//   <button data-print>              prints the page.
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
});
document.addEventListener("click", function (event) {
  var button = event.target.closest && event.target.closest("[data-print]");
  if (button) window.print();
});
