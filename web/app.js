// The playground page: the core library compiled to WebAssembly (pkg/, made by build.sh),
// stepped a few times per animation frame and drawn on a canvas. No dependencies.
import init, { Sim } from './pkg/langevin_wasm.js';

const $ = (id) => document.getElementById(id);
const view = $('view'), ctx = view.getContext('2d');
const hist = $('hist'), hctx = hist.getContext('2d');
let presets = [];
let sim = null, config = null, good = null;   // the running sim, its config, the last config that built
let bounds = [0, 1, 0, 1], background = null, arrows = [], points = [], marginal = null;
let playing = false, stepMs = 0, lastStats = 0, frames = 0, fps = 0, fpsT = performance.now();
let drag = -1;

function notice(msg) { $('notice').textContent = msg || ''; }

// The configuration the controls describe.
function readControls() {
  const c = { sampler: $('sampler').value, particles: +$('particles').value, seed: +$('seed').value };
  const t = $('target').value;
  if (t === '@energy') c.energy = $('energy').value;
  else if (t === '@mixture') c.mixture = JSON.parse($('covs').value);
  else c.target = t;
  if ($('stepSize').value !== '') c.step_size = +$('stepSize').value;
  if ($('temperature').value !== '') c.temperature = +$('temperature').value;
  if ($('steps').value !== '') c.steps = +$('steps').value;
  if (c.sampler === 'baoab') c.friction = +$('friction').value;
  return c;
}

function writeControls(c) {
  if (c.energy !== undefined) { $('target').value = '@energy'; $('energy').value = c.energy; }
  else if (c.mixture !== undefined) { $('target').value = '@mixture'; $('covs').value = JSON.stringify(c.mixture); }
  else { ensureOption($('target'), c.target); $('target').value = c.target; }
  $('sampler').value = c.sampler;
  $('particles').value = c.particles;
  $('seed').value = c.seed;
  $('stepSize').value = c.step_size ?? '';
  $('temperature').value = c.temperature ?? '';
  $('steps').value = c.steps ?? '';
  $('friction').value = c.friction ?? 1; $('frictionV').textContent = $('friction').value;
  showBoxes();
}

function ensureOption(sel, v) {
  if (![...sel.options].some((o) => o.value === v)) sel.add(new Option(v, v));
}

function showBoxes() {
  $('energyBox').hidden = $('target').value !== '@energy';
  $('mixtureBox').hidden = $('target').value !== '@mixture';
}

// Build a new run; on failure keep the old one running and say why (returns false).
function build(c) {
  let s;
  try { s = new Sim(JSON.stringify(c)); }
  catch (e) { notice(String(e.message || e)); return false; }
  if (sim) sim.free();
  sim = s; config = c; good = structuredClone(c);
  notice('');
  bounds = [...sim.bounds()];
  prepareBackground();
  points = JSON.parse(sim.stagnation_points());
  draw(); showStats(true);
  return true;
}

// log p on a grid as an image, the score arrows, the exact x-marginal.
function prepareBackground() {
  const nx = 150, ny = 150;
  const g = sim.log_density_grid(new Float64Array(bounds), nx, ny);
  let hi = -Infinity;
  for (const v of g) if (Number.isFinite(v)) hi = Math.max(hi, v);
  const img = new ImageData(nx, ny);
  marginal = new Float64Array(nx);
  for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
    const v = g[j * nx + i];
    const p = Number.isFinite(v) ? Math.exp(v - hi) : 0;
    marginal[i] += p;
    const a = Number.isFinite(v) ? Math.max(0, Math.min(1, 1 + (v - hi) / 12)) : 0;  // 12 nats of contrast
    const k = 4 * ((ny - 1 - j) * nx + i);
    img.data[k] = 255 - 170 * a; img.data[k + 1] = 255 - 120 * a; img.data[k + 2] = 255 - 40 * a; img.data[k + 3] = 255;
  }
  background = document.createElement('canvas');
  background.width = nx; background.height = ny;
  background.getContext('2d').putImageData(img, 0, 0);
  const na = 20, s = sim.score_grid(new Float64Array(bounds), na, na);
  arrows = [];
  for (let k = 0; k < na * na; k++) arrows.push([(k % na + 0.5) / na, (Math.floor(k / na) + 0.5) / na, s[2 * k], s[2 * k + 1]]);
}

const px = (x) => (x - bounds[0]) / (bounds[1] - bounds[0]) * view.width;
const py = (y) => view.height - (y - bounds[2]) / (bounds[3] - bounds[2]) * view.height;

function draw() {
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(background, 0, 0, view.width, view.height);
  if ($('arrows').checked) {
    ctx.strokeStyle = 'rgba(40,70,160,0.55)'; ctx.lineWidth = 1;
    let m = 0;
    for (const a of arrows) if (Number.isFinite(a[2])) m = Math.max(m, Math.hypot(a[2], a[3]));
    for (const [u, v, sx, sy] of arrows) {
      const n = Math.hypot(sx, sy); if (!(n > 0)) continue;
      const len = 12 * Math.sqrt(n / m) + 2, x0 = u * view.width, y0 = view.height - v * view.height;
      const x1 = x0 + len * sx / n, y1 = y0 - len * sy / n;
      ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); ctx.stroke();
      ctx.beginPath(); ctx.arc(x1, y1, 1.5, 0, 7); ctx.fill();
    }
  }
  for (const p of points) {   // sinks (modes) ●, saddles ✕, sources ○
    const x = px(p.x[0]), y = py(p.x[1]);
    ctx.strokeStyle = ctx.fillStyle = '#c00'; ctx.lineWidth = 2;
    if (p.type === 'sink') { ctx.beginPath(); ctx.arc(x, y, 5, 0, 7); ctx.fill(); }
    else if (p.type === 'saddle') { ctx.beginPath(); ctx.moveTo(x - 5, y - 5); ctx.lineTo(x + 5, y + 5); ctx.moveTo(x + 5, y - 5); ctx.lineTo(x - 5, y + 5); ctx.stroke(); }
    else { ctx.beginPath(); ctx.arc(x, y, 5, 0, 7); ctx.stroke(); }
  }
  const pos = sim.positions();
  ctx.fillStyle = 'rgba(0,0,0,0.6)';
  const xs = new Float64Array(60); let inside = 0;
  for (let i = 0; i < pos.length; i += 2) {
    const x = px(pos[i]), y = py(pos[i + 1]);
    if (x >= 0 && x < view.width && y >= 0 && y < view.height) ctx.fillRect(x - 1, y - 1, 2, 2);
    const b = Math.floor((pos[i] - bounds[0]) / (bounds[1] - bounds[0]) * 60);
    if (b >= 0 && b < 60) { xs[b]++; inside++; }
  }
  if (config && config.mixture) {
    ctx.strokeStyle = '#080'; ctx.lineWidth = 2;
    for (const m of config.mixture.means) { ctx.beginPath(); ctx.arc(px(m[0]), py(m[1]), 8, 0, 7); ctx.stroke(); }
  }
  drawHistogram(xs, inside);
}

// The particles' x-histogram against the exact x-marginal (from the density grid).
function drawHistogram(xs, inside) {
  hctx.clearRect(0, 0, hist.width, hist.height);
  const w = hist.width, h = hist.height - 14;
  const ex = new Float64Array(60);
  const per = marginal.length / 60;
  for (let i = 0; i < marginal.length; i++) ex[Math.min(59, Math.floor(i / per))] += marginal[i];
  const se = ex.reduce((a, b) => a + b, 0);
  const top = Math.max(...ex.map((v) => v / (se || 1)), ...xs.map((v) => v / (inside || 1))) || 1;
  hctx.fillStyle = 'rgba(60,60,60,0.55)';
  for (let b = 0; b < 60; b++) { const v = xs[b] / (inside || 1) / top * h; hctx.fillRect(b * w / 60, h - v, w / 60 - 1, v); }
  if (se > 0) {
    hctx.strokeStyle = '#c00'; hctx.lineWidth = 2; hctx.beginPath();
    for (let b = 0; b < 60; b++) { const v = ex[b] / se / top * h; b ? hctx.lineTo((b + 0.5) * w / 60, h - v) : hctx.moveTo((b + 0.5) * w / 60, h - v); }
    hctx.stroke();
  }
  hctx.fillStyle = '#333'; hctx.font = '11px sans-serif';
  hctx.fillText('x-marginal: particles (bars) vs exact (line)', 4, hist.height - 2);
}

function showStats(force) {
  const now = performance.now();
  if (!force && now - lastStats < 150) return;
  lastStats = now;
  const s = JSON.parse(sim.stats());
  const f = (v, d = 4) => (v === null || v === undefined) ? '—' : (+v).toPrecision(d);
  const lines = [
    `step        ${s.step}${s.finished ? ' (schedule done)' : ''}`,
    `σ           ${f(s.sigma)}`,
    `step size   ${f(s.step_size)}   stable below ${f(s.max_stable_step)} (recommended ${f(s.recommended_step)})`,
    `acceptance  ${f(s.acceptance, 3)}`,
    `mode weights ${s.mode_weights ? s.mode_weights.slice(0, 6).map((v) => v.toFixed(3)).join(' ') : '—'}`,
    `   expected  ${s.mode_weights_expected ? s.mode_weights_expected.slice(0, 6).map((v) => v.toFixed(3)).join(' ') : '—'}`,
    `distance    ${f(s.sliced_wasserstein, 3)} (sliced Wasserstein to exact draws)`,
    `step cost   ${stepMs.toFixed(3)} ms for ${config.particles} particles; ${fps.toFixed(0)} frames/s`,
  ];
  $('stats').textContent = lines.join('\n');
  if (s.stopped) { playing = false; $('play').textContent = 'play'; notice(s.stopped); }
  if (s.finished && playing) { playing = false; $('play').textContent = 'play'; }
}

function frame() {
  if (playing && sim) {
    const k = Math.max(1, +$('speed').value || 1);
    const t0 = performance.now();
    sim.advance(k);
    stepMs = 0.8 * stepMs + 0.2 * (performance.now() - t0) / k;
    draw(); showStats(false);
  }
  frames++;
  const now = performance.now();
  if (now - fpsT > 500) { fps = frames * 1000 / (now - fpsT); frames = 0; fpsT = now; }
  requestAnimationFrame(frame);
}

function applyControls() {
  let c;
  try { c = readControls(); }
  catch (e) { notice(`the mixture is not valid JSON (${e.message}); kept the last one`); $('covs').value = JSON.stringify(good.mixture || {}); return; }
  if (!build(c)) {
    // A bad formula keeps the old target running; a bad covariance snaps back.
    if (c.mixture && good && good.mixture) $('covs').value = JSON.stringify(good.mixture);
  }
}

function usePreset(p) {
  $('explain').innerHTML = `<b>${p.title}.</b> ${p.text}`;
  writeControls(p.config);
  build(structuredClone(p.config));
}

// Share: the state in the URL's hash, read back on load (a malformed one is ignored, with a notice).
function shareLink() {
  const state = { config, speed: +$('speed').value };
  location.hash = encodeURIComponent(JSON.stringify(state));
  navigator.clipboard?.writeText(location.href).catch(() => {});
  notice('link to this picture: ' + location.href);
}

function fromHash() {
  if (location.hash.length < 2) return false;
  try {
    const s = JSON.parse(decodeURIComponent(location.hash.slice(1)));
    if (typeof s !== 'object' || !s || typeof s.config !== 'object' || typeof s.config.sampler !== 'string') throw new Error('no configuration in it');
    writeControls(s.config);
    if (s.speed) $('speed').value = s.speed;
    if (!build(s.config)) throw new Error($('notice').textContent);
    return true;
  } catch (e) {
    setTimeout(() => notice(`the link's state could not be used (${e.message}); showing the first preset instead`), 0);
    return false;
  }
}

// Mixture editing: drag a mean; the run restarts from the new mixture.
// Canvas pixels under a pointer event (the canvas may be shown scaled).
function canvasXY(ev) {
  const r = view.getBoundingClientRect();
  return [(ev.clientX - r.left - view.clientLeft) * view.width / view.clientWidth,
          (ev.clientY - r.top - view.clientTop) * view.height / view.clientHeight];
}
function meanAt(ev) {
  if (!config || !config.mixture) return -1;
  const [x, y] = canvasXY(ev);
  return config.mixture.means.findIndex((m) => Math.hypot(px(m[0]) - x, py(m[1]) - y) < 12);
}
view.addEventListener('pointerdown', (ev) => { drag = meanAt(ev); if (drag >= 0) view.setPointerCapture(ev.pointerId); });
view.addEventListener('pointermove', (ev) => {
  if (drag < 0) return;
  const [cx, cy] = canvasXY(ev);
  const x = bounds[0] + cx / view.width * (bounds[1] - bounds[0]);
  const y = bounds[2] + (view.height - cy) / view.height * (bounds[3] - bounds[2]);
  config.mixture.means[drag] = [+x.toFixed(2), +y.toFixed(2)];
  draw();
});
view.addEventListener('pointerup', () => {
  if (drag < 0) return;
  drag = -1;
  $('covs').value = JSON.stringify(config.mixture);
  const keep = bounds;
  if (!build(structuredClone(config))) { config = structuredClone(good); $('covs').value = JSON.stringify(good.mixture); }
  else bounds = keep, prepareBackground(), points = JSON.parse(sim.stagnation_points()), draw();
});

// Test mode (web/test.py): every preset for its steps, numbers into #results.
function runTests() {
  const out = [];
  for (const p of presets) {
    const s = new Sim(JSON.stringify(p.config));
    const t0 = performance.now();
    s.advance(p.steps);
    const ms = performance.now() - t0;
    const st = JSON.parse(s.stats());
    st.id = p.id; st.ms_per_step = ms / Math.max(1, st.step);
    const pos = s.positions();
    st.drawn = pos.length / 2;
    out.push(st);
    s.free();
  }
  const bad = (() => { try { new Sim(JSON.stringify({ energy: '(x^2-1)^2 + * y', sampler: 'ula', particles: 10, seed: 0 })); return 'accepted'; } catch (e) { return String(e.message || e); } })();
  $('results').textContent = JSON.stringify({ presets: out, bad_formula: bad });
  $('results').hidden = false;
}

// For the browser tests: the running configuration and view.
window.playground = { state: () => ({ config, bounds }) };

async function main() {
  await init();
  presets = await (await fetch('presets.json')).json();
  for (const p of presets) $('preset').add(new Option(p.title, p.id));
  const q = new URLSearchParams(location.search);
  if (q.get('test')) { runTests(); document.title = 'done'; return; }
  const wanted = presets.find((p) => p.id === q.get('preset'));
  if (wanted) { $('preset').value = wanted.id; usePreset(wanted); }
  else if (!fromHash()) usePreset(presets[0]);
  if (q.get('steps')) {   // screenshots: a preset after a number of steps
    sim.advance(+q.get('steps')); draw(); showStats(true); document.title = 'done';
  }
  $('preset').onchange = () => usePreset(presets.find((p) => p.id === $('preset').value));
  for (const id of ['target', 'sampler', 'particles', 'seed', 'stepSize', 'temperature', 'steps']) $(id).onchange = () => { showBoxes(); applyControls(); };
  $('energy').onchange = applyControls;
  $('covs').onchange = applyControls;
  $('friction').oninput = () => { $('frictionV').textContent = $('friction').value; };
  $('friction').onchange = applyControls;
  $('arrows').onchange = draw;
  $('play').onclick = () => { playing = !playing; $('play').textContent = playing ? 'pause' : 'play'; };
  $('stepOnce').onclick = () => { sim.advance(1); draw(); showStats(true); };
  $('reset').onclick = () => build(structuredClone(config));
  $('share').onclick = shareLink;
  if (!q.get('steps')) requestAnimationFrame(frame);
}

main().catch((e) => notice('the playground could not start: ' + (e.message || e)));
