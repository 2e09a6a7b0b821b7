/* Inline formulas wider than their text column (a long formula on a phone) scroll sideways in
   their own line instead of running past the column, where the page would cut them off.
   MathJax 3 cannot break an inline formula across lines; display math already scrolls.
   Runs when MathJax has typeset, and again when the width of the window changes. */
(function () {
  "use strict";
  var WIDE = "linflow-wide-math";
  function column(el) {            // the content width of the nearest block around EL
    var b = el.parentElement;
    while (b && getComputedStyle(b).display.indexOf("inline") === 0) b = b.parentElement;
    if (!b) return Infinity;
    var cs = getComputedStyle(b);
    return b.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
  }
  function mark() {
    var all = document.querySelectorAll('mjx-container:not([display="true"])');
    var i, c;
    for (i = 0; i < all.length; i++) all[i].classList.remove(WIDE);   // measure at natural width
    var wide = [];
    for (i = 0; i < all.length; i++) {
      c = all[i];
      if (c.getBoundingClientRect().width > column(c) + 1) wide.push(c);
    }
    for (i = 0; i < wide.length; i++) wide[i].classList.add(WIDE);
  }
  var timer = null, lastWidth = -1;
  function onResize() {
    if (window.innerWidth === lastWidth) return;
    lastWidth = window.innerWidth;
    clearTimeout(timer);
    timer = setTimeout(mark, 100);
  }
  function start() {
    var mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise) {
      mj.startup.promise.then(function () { lastWidth = window.innerWidth; mark(); });
      window.addEventListener("resize", onResize);
    } else if (document.readyState !== "complete") {
      window.addEventListener("load", start, {once: true});
    }
  }
  start();
})();
