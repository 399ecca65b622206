/**
 * The connect panel's snippets: for each SDK a game may use, the install line and the code that
 * connects to this daemon, built from what GET /api/connect-info reports (real host, ports, API key),
 * so a developer pastes them unchanged (issue #13). Pure functions: no DOM, testable in Node.
 */
import type { ConnectInfoAnswer } from '../wire.js';

export type SdkId = 'node' | 'browser' | 'csharp' | 'raw';

export interface SdkChoice {
  id: SdkId;
  /** The picker's label. */
  label: string;
}

export const SDK_CHOICES: readonly SdkChoice[] = [
  { id: 'node', label: 'TypeScript (Node)' },
  { id: 'browser', label: 'Browser' },
  { id: 'csharp', label: 'C# / Unity' },
  { id: 'raw', label: 'Raw protocol' },
];

export const DEFAULT_SDK: SdkId = 'node';

export function isSdkId(v: unknown): v is SdkId {
  return SDK_CHOICES.some((c) => c.id === v);
}

export interface Snippet {
  /** One line to run (or do) before the code. */
  install: string;
  code: string;
  /** A sentence on how this SDK reaches the daemon. */
  note: string;
}

/** What every example device declares, so the dashboard has something to show and target at once. */
const BUILD = '1.0.0';
const DEFAULTS = { enemy_speed: 1.5, god_mode: false } as const;
const SNIPPET_DEVICE_IDS: Readonly<Record<SdkId, string>> = { node: 'node-dev-1', browser: 'browser-dev-1', csharp: 'unity-editor', raw: 'nc-test' };
const PLATFORMS: Readonly<Record<SdkId, string>> = { node: 'node', browser: 'web', csharp: 'unity', raw: 'shell' };

/** A single-quoted JavaScript string (the values are already checked by the daemon; quoting stays exact whatever they are). */
function js(s: string): string {
  return `'${s.replace(/[\\']/g, '\\$&').replace(/\n/g, '\\n')}'`;
}

/** A double-quoted C# string. */
function cs(s: string): string {
  return JSON.stringify(s);
}

/** A single-quoted POSIX shell word. */
function sh(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Standard padded base64 of UTF-8 text (docs/PROTOCOL.md §2), in the browser and in Node. Not the
 * SDK's base64FromText: the dashboard takes only types from outside its folder.
 */
function base64(text: string): string {
  let bin = '';
  for (const b of new TextEncoder().encode(text)) bin += String.fromCharCode(b);
  return btoa(bin);
}

function tsOptions(sdk: 'node' | 'browser', info: ConnectInfoAnswer): string {
  const where = sdk === 'node' ? [`  host: ${js(info.host)},`, `  port: ${info.tcpPort},`] : [`  url: ${js(info.sdkUrl)},`];
  return [
    ...where,
    `  apiKey: ${js(info.apiKey)},`,
    `  deviceId: ${js(SNIPPET_DEVICE_IDS[sdk])}, // names this device on the dashboard`,
    `  labels: { platform: ${js(PLATFORMS[sdk])}, build: ${js(BUILD)} },`,
    `  defaults: { enemy_speed: ${DEFAULTS.enemy_speed}, god_mode: ${DEFAULTS.god_mode} }, // the game's own values`,
  ].join('\n');
}

function tsSnippet(sdk: 'node' | 'browser', info: ConnectInfoAnswer): string {
  return [
    `import { connect } from '@observerio/sdk';`,
    ``,
    `const game = await connect({`,
    tsOptions(sdk, info),
    `});`,
    ``,
    `let speed = game.getNumber('enemy_speed', ${DEFAULTS.enemy_speed}); // a dashboard change wins`,
    `game.onChange('enemy_speed', (value) => (speed = Number(value)));`,
    `game.log('game started', { level: 'info' });`,
  ].join('\n');
}

function csharpSnippet(info: ConnectInfoAnswer): string {
  return [
    `using System.Collections.Generic;`,
    `using Observerio;`,
    `using UnityEngine;`,
    ``,
    `public class Observed : MonoBehaviour`,
    `{`,
    `    ObserverioClient game;`,
    ``,
    `    void Start()`,
    `    {`,
    `        game = ObserverioClient.Connect(new ObserverioOptions`,
    `        {`,
    `            Host = ${cs(info.host)},`,
    `            Port = ${info.tcpPort},`,
    `            ApiKey = ${cs(info.apiKey)},`,
    `            DeviceId = ${cs(SNIPPET_DEVICE_IDS.csharp)},`,
    `            Labels = new Dictionary<string, string> { { "platform", ${cs(PLATFORMS.csharp)} }, { "build", ${cs(BUILD)} } },`,
    `            Defaults = new Dictionary<string, object> { { "enemy_speed", ${DEFAULTS.enemy_speed} }, { "god_mode", ${DEFAULTS.god_mode} } },`,
    `        });`,
    `    }`,
    ``,
    `    void Update()`,
    `    {`,
    `        game.Poll(); // raises OnChange here, on the main thread`,
    `        float speed = game.GetFloat("enemy_speed", ${DEFAULTS.enemy_speed}f);`,
    `    }`,
    ``,
    `    void OnDestroy() { game.Close(); }`,
    `}`,
  ].join('\n');
}

function rawSnippet(info: ConnectInfoAnswer): string {
  const key = info.apiKey;
  const labels = JSON.stringify({ platform: PLATFORMS.raw, build: BUILD });
  const vars = JSON.stringify([
    { name: 'enemy_speed', type: 'float', value: String(DEFAULTS.enemy_speed) },
    { name: 'god_mode', type: 'boolean', value: String(DEFAULTS.god_mode) },
  ]);
  const logs = JSON.stringify([{ message: 'hello from nc', level: 'info' }]);
  const lines = [`v:${key}:${SNIPPET_DEVICE_IDS.raw}`, `d:${key}:${base64(labels)}`, `i:${key}:${base64(vars)}`, `l:${key}:${base64(logs)}`];
  return [
    `# One line each: v: verify and name the device, d: labels, i: variables, l: logs.`,
    `# Payloads are base64 of JSON (docs/PROTOCOL.md):`,
    `#   d: ${labels}`,
    `#   i: ${vars}`,
    `#   l: ${logs}`,
    `# The daemon answers OK, then v: lines with dashboard changes; sleep keeps the device online.`,
    `(printf ${sh(lines.map((l) => `${l}\\n`).join(''))}; sleep 60) | nc ${info.host} ${info.tcpPort}`,
  ].join('\n');
}

export function snippetFor(sdk: SdkId, info: ConnectInfoAnswer): Snippet {
  switch (sdk) {
    case 'node':
      return { install: 'npm i @observerio/sdk', code: tsSnippet('node', info), note: `Node games connect over TCP to ${info.host}:${info.tcpPort}.` };
    case 'browser':
      return {
        install: 'npm i @observerio/sdk',
        code: tsSnippet('browser', info),
        note: `Games in a browser open a WebSocket to ${info.sdkUrl} (the HTTP port) and speak the same protocol.`,
      };
    case 'csharp':
      return {
        install: 'cp observerio/src/sdk-csharp/Observerio.cs Assets/Scripts/',
        code: csharpSnippet(info),
        note: `One dependency-free file for .NET Standard 2.0 (Unity, Godot .NET, .NET); it connects over TCP to ${info.host}:${info.tcpPort}.`,
      };
    case 'raw':
      return {
        install: 'sudo apt install netcat-openbsd   # or: brew install netcat',
        code: rawSnippet(info),
        note: `Any TCP client will do: lines of text to ${info.host}:${info.tcpPort}, as in docs/PROTOCOL.md.`,
      };
  }
}
