// Browser tests of the playground, in Debian's chromium driven by playwright-core:
//   node web/test.mjs web/dist answers.json screenshots/
// Serves web/dist on 127.0.0.1, runs every preset in the page and compares the numbers it
// exposes with the native library's answers (the same particles, bit for bit: a hash of the
// positions), checks that the canvas shows the particles, exercises the bad inputs and the share
// link, measures the step cost, and saves one screenshot per preset. Exits 1 on any failure.
import { chromium } from 'playwright-core';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const [dist, answersPath, shots] = process.argv.slice(2);
const answers = JSON.parse(fs.readFileSync(answersPath, 'utf8')).presets;
fs.mkdirSync(shots, { recursive: true });
const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };
const server = http.createServer((req, res) => {
  const f = path.join(dist, decodeURIComponent(new URL(req.url, 'http://x').pathname));
  if (!f.startsWith(path.resolve(dist)) && !f.startsWith(dist)) { res.writeHead(403); res.end(); return; }
  fs.readFile(f, (err, data) => {
    if (err) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'content-type': types[path.extname(f)] || 'application/octet-stream' });
    res.end(data);
  });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}/index.html`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
});
let failures = 0;
const check = (ok, what) => { console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`); if (!ok) failures++; };
const page = await browser.newPage({ viewport: { width: 1000, height: 720 } });
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));

// 1. Every preset in the page against the native answers.
let t0 = Date.now();
await page.goto(`${base}?test=1`);
await page.waitForFunction(() => document.title === 'done', null, { timeout: 120000 });
console.log(`page loaded and ran the presets in ${Date.now() - t0} ms`);
const results = JSON.parse(await page.textContent('#results'));
for (const p of results.presets) console.log(`     ${p.id}: ${p.ms_per_step.toFixed(3)} ms per step for ${p.drawn} particles (${p.sampler})`);
for (const want of answers) {
  const got = results.presets.find((p) => p.id === want.id);
  if (!got) { check(false, `${want.id}: not run in the page`); continue; }
  check(got.step === want.step, `${want.id}: step ${got.step} (native ${want.step})`);
  check(got.positions_fnv === want.positions_fnv, `${want.id}: the same particles as the native library, bit for bit (hash ${got.positions_fnv})`);
  check(JSON.stringify(got.mode_weights) === JSON.stringify(want.mode_weights), `${want.id}: mode weights ${JSON.stringify(got.mode_weights?.slice(0, 4))}`);
  check(got.acceptance === want.acceptance, `${want.id}: acceptance ${got.acceptance}`);
  check((got.stopped === null) === (want.stopped === null), `${want.id}: ${got.stopped ? 'stopped: ' + got.stopped : 'ran to the end'}`);
  check(got.drawn === want.drawn || got.drawn > 0, `${want.id}: ${got.drawn} particles`);
}
// The pictures the presets are about, in the page's numbers.
const byId = Object.fromEntries(results.presets.map((p) => [p.id, p]));
check(Math.abs(byId.annealed.mode_weights[0] - 0.8) < 0.05 && Math.abs(byId.noise.mode_weights[0] - 0.8) > 0.15,
  `annealed restores 0.8 / 0.2 (${byId.annealed.mode_weights[0]}), plain ULA does not (${byId.noise.mode_weights[0]})`);
check(/diverged at step \d+/.test(byId.stiff.stopped) && /try/.test(byId.stiff.stopped), 'the stiff preset diverges and names a step size');
check(/position|column|at /.test(results.bad_formula), `a bad formula is refused with its position: ${results.bad_formula}`);

// 2. The canvas shows particles (dark pixels), and one screenshot per preset.
for (const p of answers) {
  await page.goto(`${base}?preset=${p.id}&steps=${Math.min(p.step, 400)}`);
  await page.waitForFunction(() => document.title === 'done', null, { timeout: 60000 });
  const dark = await page.evaluate(() => {
    const c = document.getElementById('view'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 90 && d[i + 1] < 90 && d[i + 2] < 90) n++;
    return n;
  });
  // Collapsed particles sit on two points; the others spread over the density.
  check(p.id === 'stiff' || dark > (p.id === 'collapse' ? 8 : 500), `${p.id}: ${dark} particle pixels drawn`);
  await page.screenshot({ path: path.join(shots, `${p.id}.png`) });
}

// 3. Loading, and playing: the step cost with 5,000 particles, in real time.
t0 = Date.now();
await page.goto(base);
await page.waitForSelector('#stats:not(:empty)');
const load = Date.now() - t0;
console.log(`the page loads (wasm compiled, first preset drawn) in ${load} ms`);
check(load < 1000, `the page loads in under a second (${load} ms)`);
await page.goto(`${base}?preset=noise`);
await page.waitForSelector('#stats:not(:empty)');
await page.fill('#particles', '5000'); await page.dispatchEvent('#particles', 'change');
await page.click('#play');
await page.waitForTimeout(2500);
const cost = await page.evaluate(() => document.getElementById('stats').textContent.match(/step cost\s+([\d.]+) ms.*?([\d.]+) frames\/s/s));
await page.click('#play');
const ms = +cost[1], fps = +cost[2];
console.log(`step cost with 5,000 particles: ${ms} ms per step (ULA on ncsn-toy), ${fps} frames/s while playing`);
check(ms > 0 && ms < 8, `a ULA step of 5,000 particles costs ${ms} ms (two per frame fit in 16 ms)`);

// 4. Bad input in the page: the old target keeps running, the reason is shown.
await page.goto(`${base}?preset=drift`);
await page.waitForSelector('#stats:not(:empty)');
await page.click('#play');
await page.fill('#energy', '(x^2-1)^2 + * y'); await page.dispatchEvent('#energy', 'change');
const n1 = await page.evaluate(() => +document.getElementById('stats').textContent.match(/step\s+(\d+)/)[1]);
await page.waitForTimeout(400);
const n2 = await page.evaluate(() => +document.getElementById('stats').textContent.match(/step\s+(\d+)/)[1]);
const msg = await page.textContent('#notice');
check(/position|column|at /.test(msg) && n2 > n1, `bad formula: "${msg.trim()}", the old target still runs (step ${n1} → ${n2})`);
await page.click('#play');
await page.selectOption('#target', '@mixture'); await page.dispatchEvent('#target', 'change');
// Drag the first mean to (1, -2): the mixture and its run follow.
{
  const { bounds: b, config: c } = await page.evaluate(() => window.playground.state());
  const box = await page.locator('#view').boundingBox();
  check(Math.abs(box.width - box.height) < 2, `the canvas is shown square (${box.width} × ${box.height})`);
  const at = (x, y) => [box.x + (x - b[0]) / (b[1] - b[0]) * box.width, box.y + box.height - (y - b[2]) / (b[3] - b[2]) * box.height];
  const [x0, y0] = at(c.mixture.means[0][0], c.mixture.means[0][1]);
  const [x1, y1] = at(1, -2);
  await page.mouse.move(x0, y0); await page.mouse.down();
  await page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2); await page.mouse.move(x1, y1); await page.mouse.up();
  const moved = JSON.parse(await page.inputValue('#covs')).means[0];
  const running = (await page.evaluate(() => window.playground.state())).config.mixture.means[0];
  check(Math.hypot(moved[0] - 1, moved[1] + 2) < 0.3 && JSON.stringify(running) === JSON.stringify(moved),
    `dragging a mean moves the mixture: ${JSON.stringify(moved)}`);
}
const goodCovs = await page.inputValue('#covs');
await page.fill('#covs', '{"weights":[0.5,0.5],"means":[[-3,0],[3,0]],"covs":[1,[[1,2],[2,1]]]}');
await page.dispatchEvent('#covs', 'change');
check(/positive/.test(await page.textContent('#notice')) && (await page.inputValue('#covs')) === goodCovs,
  `a covariance that is not positive-definite snaps back: "${(await page.textContent('#notice')).trim()}"`);
await page.goto(`${base}?preset=stiff`);
await page.waitForSelector('#stats:not(:empty)');
await page.click('#play');
await page.waitForFunction(() => /diverged/.test(document.getElementById('notice').textContent), null, { timeout: 20000 });
check(/diverged at step \d+.*try/.test(await page.textContent('#notice')), `a diverging step stops the run: "${(await page.textContent('#notice')).trim()}"`);
await page.goto(`${base}#%7Bnot-json`);
await page.waitForSelector('#stats:not(:empty)');
await page.waitForTimeout(100);
check(/could not be used/.test(await page.textContent('#notice')), `a malformed link is ignored with a notice: "${(await page.textContent('#notice')).trim()}"`);

// 5. Share: the link restores the target, sampler, parameters and seed.
await page.goto(`${base}?preset=baoab`);
await page.waitForSelector('#stats:not(:empty)');
await page.fill('#seed', '42'); await page.dispatchEvent('#seed', 'change');
await page.click('#share');
const link = await page.evaluate(() => location.href.replace(/\?[^#]*/, ''));
const other = await browser.newPage();
await other.goto(link);
await other.waitForSelector('#stats:not(:empty)');
const restored = await other.evaluate(() => ({ t: document.getElementById('target').value, s: document.getElementById('sampler').value, seed: document.getElementById('seed').value, f: document.getElementById('friction').value }));
check(restored.t === 'muller-brown' && restored.s === 'baoab' && restored.seed === '42', `a shared link restores the state: ${JSON.stringify(restored)}`);

check(errors.length === 0, `no script errors${errors.length ? ': ' + errors.join('; ') : ''}`);
await browser.close();
server.close();
console.log(failures ? `${failures} check(s) failed` : 'all browser checks passed');
process.exit(failures ? 1 : 0);
