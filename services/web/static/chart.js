// Line charts on a <canvas>, drawn by dora's own code (no library, nothing from a CDN).
// doraChart.draw(canvas, {series: [{label, color, t: [ms...], v: [number|null...], width}],
//                         yFormat: v => text})
"use strict";
window.doraChart = (function () {
  const PAD = { left: 64, right: 10, top: 8, bottom: 20 };

  function niceStep(span, count) {
    const raw = span / Math.max(1, count);
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const unit = raw / power;
    return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power;
  }

  function clock(ms, seconds) {
    const d = new Date(ms), two = n => String(n).padStart(2, "0");
    return two(d.getHours()) + ":" + two(d.getMinutes()) + (seconds ? ":" + two(d.getSeconds()) : "");
  }

  function fit(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const cssWidth = canvas.clientWidth || canvas.width;
    const cssHeight = Math.round(cssWidth * (canvas.getAttribute("height") / canvas.getAttribute("width")));
    if (canvas.width !== Math.round(cssWidth * ratio)) {
      canvas.width = Math.round(cssWidth * ratio);
      canvas.height = Math.round(cssHeight * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    return { ctx, width: cssWidth, height: cssHeight };
  }

  function draw(canvas, opts) {
    const { ctx, width, height } = fit(canvas);
    ctx.clearRect(0, 0, width, height);
    let t0 = Infinity, t1 = -Infinity, lo = Infinity, hi = -Infinity;
    for (const s of opts.series) {
      for (let i = 0; i < s.t.length; i++) {
        if (s.v[i] === null || s.v[i] === undefined) continue;
        t0 = Math.min(t0, s.t[i]); t1 = Math.max(t1, s.t[i]);
        lo = Math.min(lo, s.v[i]); hi = Math.max(hi, s.v[i]);
      }
    }
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#6b7385";
    if (!isFinite(t0)) {
      ctx.fillText(opts.empty || "no data yet", PAD.left, height / 2);
      return;
    }
    if (opts.zero) { lo = Math.min(lo, 0); hi = Math.max(hi, 0); }
    if (hi - lo < 1e-9) { hi += 1; lo -= 1; }
    if (t1 - t0 < 1000) { t1 = t0 + 1000; }
    const plotW = width - PAD.left - PAD.right, plotH = height - PAD.top - PAD.bottom;
    const x = t => PAD.left + (t - t0) / (t1 - t0) * plotW;
    const y = v => PAD.top + (hi - v) / (hi - lo) * plotH;
    const step = niceStep(hi - lo, 4);
    ctx.strokeStyle = "#e2e5ea"; ctx.lineWidth = 1; ctx.textAlign = "right"; ctx.textBaseline = "middle";
    for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) {
      ctx.beginPath(); ctx.moveTo(PAD.left, y(v)); ctx.lineTo(width - PAD.right, y(v)); ctx.stroke();
      ctx.fillText((opts.yFormat || String)(v), PAD.left - 6, y(v));
    }
    if (lo < 0 && hi > 0) {
      ctx.strokeStyle = "#9aa3b2";
      ctx.beginPath(); ctx.moveTo(PAD.left, y(0)); ctx.lineTo(width - PAD.right, y(0)); ctx.stroke();
    }
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    const ticks = Math.max(2, Math.floor(plotW / 90));
    for (let i = 0; i <= ticks; i++) {
      const t = t0 + (t1 - t0) * i / ticks;
      const label = clock(t, t1 - t0 < 20 * 60000);
      ctx.fillText(label, Math.min(Math.max(x(t), PAD.left + 24), width - 26), height - PAD.bottom + 5);
    }
    for (const s of opts.series) {
      ctx.strokeStyle = s.color; ctx.lineWidth = s.width || 1.5; ctx.lineJoin = "round";
      ctx.beginPath();
      let drawing = false;
      for (let i = 0; i < s.t.length; i++) {
        const v = s.v[i];
        if (v === null || v === undefined) { drawing = false; continue; }
        if (s.steps && drawing) ctx.lineTo(x(s.t[i]), y(s.v[i - 1]));
        if (drawing) ctx.lineTo(x(s.t[i]), y(v)); else ctx.moveTo(x(s.t[i]), y(v));
        drawing = true;
      }
      ctx.stroke();
    }
  }

  function legend(element, series) {
    element.replaceChildren(...series.map(s => {
      const item = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = s.color;
      item.append(swatch, s.label);
      return item;
    }));
  }

  return { draw, legend };
})();
