/**
 * How the dashboard sees a device (DESIGN.md §8): one row per device id, online or remembered, with
 * its labels, strategy and pending count. Built from `GET /api/devices` (DeviceSummary), from the
 * per-connection `device` events and from `device_state` events; an older daemon's per-connection
 * list is read as online devices so the page works against either. Also the words for targets.
 */
import type { Device, DeviceInfo, DeviceSummary, Labels, Target } from '../wire.js';
import { toMs } from './format.js';

export interface DeviceView {
  /** Identity across reconnects: the device id, else (an old daemon's unnamed socket) `conn:<id>`. */
  key: string;
  /** The id an override can target; null for an old daemon's unnamed socket. */
  deviceId: string | null;
  labels: Labels;
  online: boolean;
  lastSeen: number | null;
  lastAddress: string | null;
  generated: boolean;
  strategy: string | null;
  pendingCount: number;
  /** Only known from connection events / old daemons. */
  connectedAt: number | null;
  linesIn: number | null;
  lastLineAt: number | null;
}

function isSummary(d: DeviceSummary | Device | DeviceInfo): d is DeviceSummary {
  return typeof (d as DeviceSummary).online === 'boolean';
}

/** One entry of `GET /api/devices` (either shape) as a view; null when it is not a device at all. */
export function toDeviceView(d: DeviceSummary | Device | null | undefined): DeviceView | null {
  if (!d || typeof d !== 'object') return null;
  if (isSummary(d)) {
    if (typeof d.deviceId !== 'string') return null;
    return {
      key: d.deviceId,
      deviceId: d.deviceId,
      labels: d.labels && typeof d.labels === 'object' ? d.labels : {},
      online: d.online,
      lastSeen: toMs(d.lastSeen),
      lastAddress: d.lastAddress ?? null,
      generated: !!d.generated,
      strategy: d.strategy ?? null,
      pendingCount: typeof d.pendingCount === 'number' ? d.pendingCount : 0,
      connectedAt: null,
      linesIn: null,
      lastLineAt: null,
    };
  }
  if (typeof d.id !== 'string') return null;
  return fromConnection(d, true);
}

/** A connection (`device` event, or an old daemon's list entry) as a view. */
export function fromConnection(d: Device | DeviceInfo, online: boolean): DeviceView {
  const connectedAt = toMs(d.connectedAt);
  const lastLineAt = toMs(d.lastLineAt ?? null);
  return {
    key: d.deviceId ? d.deviceId : `conn:${d.id}`,
    deviceId: d.deviceId ?? null,
    labels: {},
    online,
    lastSeen: online ? Math.max(lastLineAt ?? 0, connectedAt ?? 0) || null : Date.now(),
    lastAddress: d.remoteAddress ?? null,
    generated: !d.deviceId,
    strategy: null,
    pendingCount: 0,
    connectedAt,
    linesIn: typeof d.linesIn === 'number' ? d.linesIn : null,
    lastLineAt,
  };
}

/** `incoming` over `known`: what only the other source knows (labels from a summary, counters from a connection) is kept. */
export function mergeDevice(known: DeviceView | undefined, incoming: DeviceView, from: 'summary' | 'connection'): DeviceView {
  if (!known) return incoming;
  if (from === 'summary') {
    return { ...incoming, connectedAt: incoming.online ? known.connectedAt : null, linesIn: known.linesIn, lastLineAt: known.lastLineAt };
  }
  return {
    ...known,
    online: incoming.online,
    lastSeen: Math.max(known.lastSeen ?? 0, incoming.lastSeen ?? 0) || null,
    lastAddress: incoming.lastAddress ?? known.lastAddress,
    connectedAt: incoming.online ? incoming.connectedAt : known.connectedAt,
    linesIn: incoming.linesIn ?? known.linesIn,
    lastLineAt: incoming.lastLineAt ?? known.lastLineAt,
  };
}

export function formatLabels(labels: Labels): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** A target in words: "all devices", "phone-1, phone-2", "platform=android". */
export function targetText(t: Target | null | undefined): string {
  if (!t || 'all' in t) return 'all devices';
  if ('devices' in t) {
    const ids = t.devices;
    if (ids.length <= 3) return ids.join(', ');
    return `${ids.slice(0, 2).join(', ')} +${ids.length - 2} more`;
  }
  return formatLabels(t.labels);
}

export function targetKind(t: Target | null | undefined): 'all' | 'devices' | 'labels' {
  if (!t || 'all' in t) return 'all';
  return 'devices' in t ? 'devices' : 'labels';
}

/** True when `t` names exactly this one device. */
export function isDeviceOnly(t: Target | null | undefined, deviceId: string): boolean {
  return !!t && 'devices' in t && t.devices.length === 1 && t.devices[0] === deviceId;
}

/**
 * Compares device ids the way people read them: `many-9` before `many-10`. One collator for every
 * comparison: `localeCompare` with options builds one per call, which made sorting 1,000 devices
 * take 20-30 ms of the page's main thread (it ran on every devices change).
 */
const NAME_ORDER = new Intl.Collator(undefined, { numeric: true });
export const byName = (a: DeviceView, b: DeviceView): number => NAME_ORDER.compare(a.key, b.key);
