// A small canvas game steered live from the observerio dashboard through the SDK's browser build
// (browser.mjs, copied next to this file): it reports its tunables as defaults, reads them back with
// the typed getters every frame (so a dashboard change shows on the next frame), logs what happens,
// and runs on its defaults whenever the daemon is unreachable. No build step.
import { createClient } from './browser.mjs';

const params = new URLSearchParams(location.search);
const apiKey = params.get('key') ?? '';
const url = params.get('daemon') ?? `ws://${location.hostname || '127.0.0.1'}:4000/sdk`;
const deviceId = params.get('device') ?? `browser-${Math.random().toString(36).slice(2, 8)}`;

/** The game's own values: what it runs on until the dashboard says otherwise. */
const DEFAULTS = { enemy_speed: 1.5, spawn_ms: 800, player_color: '#4ec9b0', god_mode: false };

let status = 'offline';
let client = null;
try {
  client = createClient({ url, apiKey, deviceId, labels: { platform: 'web', build: '1.0.0' }, defaults: DEFAULTS });
  client.on('connected', () => (status = `online as ${deviceId}`));
  client.on('reconnecting', (i) => (status = `offline (${i.error.code}), retrying in ${Math.round(i.delayMs / 1000)} s`));
  client.onChange('god_mode', (on) => client.log(`god mode ${on ? 'on' : 'off'} from the dashboard`));
} catch (err) {
  // A missing or malformed key: the game still runs, on its defaults.
  status = `not connected: ${err.message} (add ?key=YOUR_API_KEY to the URL)`;
}
// For the browser's console (and the repository's Chromium test): observerio.getAll().
window.observerio = client;

const tune = {
  number: (name) => (client ? client.getNumber(name, DEFAULTS[name]) : DEFAULTS[name]),
  bool: (name) => (client ? client.getBool(name, DEFAULTS[name]) : DEFAULTS[name]),
  string: (name) => (client ? client.getString(name, DEFAULTS[name]) : DEFAULTS[name]),
};

const canvas = document.getElementById('game');
const ctx = canvas.getContext('2d');
const PLAYER = { w: 36, h: 14 };
const state = { x: canvas.width / 2, score: 0, lives: 3, enemies: [], sinceSpawn: 0, keys: new Set(), enemySpeed: DEFAULTS.enemy_speed };
window.gameState = state;

canvas.addEventListener('mousemove', (e) => (state.x = ((e.offsetX / canvas.clientWidth) * canvas.width) | 0));
addEventListener('keydown', (e) => state.keys.add(e.key));
addEventListener('keyup', (e) => state.keys.delete(e.key));

function reset() {
  state.score = 0;
  state.lives = 3;
  state.enemies = [];
}

function update(dt) {
  // Read every frame: a value changed on the dashboard applies on the next one.
  state.enemySpeed = tune.number('enemy_speed');
  const spawnMs = Math.max(50, tune.number('spawn_ms'));
  if (state.keys.has('ArrowLeft')) state.x -= 0.5 * dt;
  if (state.keys.has('ArrowRight')) state.x += 0.5 * dt;
  state.x = Math.min(canvas.width - PLAYER.w / 2, Math.max(PLAYER.w / 2, state.x));

  state.sinceSpawn += dt;
  if (state.sinceSpawn >= spawnMs) {
    state.sinceSpawn = 0;
    const size = 14 + Math.random() * 18;
    state.enemies.push({ x: Math.random() * (canvas.width - size), y: -size, size });
  }
  const playerTop = canvas.height - 30;
  for (const e of state.enemies) e.y += state.enemySpeed * dt * 0.12;
  for (const e of state.enemies) {
    const hit = e.y + e.size >= playerTop && e.y <= playerTop + PLAYER.h && e.x + e.size >= state.x - PLAYER.w / 2 && e.x <= state.x + PLAYER.w / 2;
    if (!hit) continue;
    e.y = canvas.height + 1;
    if (tune.bool('god_mode')) continue;
    state.lives--;
    client?.log('player hit', { level: 'warn', score: state.score, lives: state.lives, enemy_speed: state.enemySpeed });
    if (state.lives <= 0) {
      client?.log('game over', { score: state.score });
      client?.setVar('last_score', state.score);
      reset();
    }
  }
  const before = state.enemies.length;
  state.enemies = state.enemies.filter((e) => e.y <= canvas.height);
  state.score += before - state.enemies.length;
}

function draw() {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = '#e06c75';
  for (const e of state.enemies) ctx.fillRect(e.x, e.y, e.size, e.size);
  ctx.fillStyle = tune.string('player_color');
  ctx.fillRect(state.x - PLAYER.w / 2, canvas.height - 30, PLAYER.w, PLAYER.h);
  ctx.fillStyle = '#ddd';
  ctx.font = '14px system-ui, sans-serif';
  ctx.fillText(`score ${state.score}   lives ${state.lives}   enemy_speed ${state.enemySpeed}   god_mode ${tune.bool('god_mode')}`, 10, 20);
  ctx.fillStyle = '#888';
  ctx.fillText(status, 10, 40);
}

let last = performance.now();
function frame(now) {
  // Clamped: a tab in the background gets no frames, and one long step would teleport the blocks.
  const dt = Math.min(50, now - last);
  last = now;
  update(dt);
  draw();
  requestAnimationFrame(frame);
}
client?.log('game started', { level: 'info', width: canvas.width, height: canvas.height });
requestAnimationFrame(frame);
addEventListener('pagehide', () => void client?.close());
