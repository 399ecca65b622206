/**
 * Who a CLI change is for: `--device ID` (repeatable), `--label k=v` (repeatable, all must match) or
 * `--selector 'platform=android,build=1.4.*'`; none means every device. Checked here with the
 * daemon's own rules (src/variables/target.ts), so a typo is bad use (exit 2) before any request.
 */
import { Option, type Command } from 'commander';
import { DEVICE_ID_RE } from '../model.js';
import { formatSelector, parseSelector, type Target } from '../variables/target.js';
import { usage } from './http-client.js';

export interface TargetFlags {
  device?: string[];
  label?: string[];
  selector?: string;
}

const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];

/** Adds --device, --label and --selector to a command. */
export function withTarget(cmd: Command): Command {
  return cmd
    .addOption(new Option('--device <id>', 'only this device (repeat for several)').argParser(collect))
    .addOption(new Option('--label <key=value>', 'only devices with this label; * in the value matches anything (repeat: all must match)').argParser(collect))
    .option('--selector <selector>', "only devices matching a label selector, e.g. 'platform=android,build=1.4.*'");
}

/** The target the flags name, or undefined for every device; bad use exits 2 naming the problem. */
export function targetOf(cmd: Command, flags: TargetFlags): Target | undefined {
  const kinds = [flags.device?.length ? '--device' : null, flags.label?.length ? '--label' : null, flags.selector !== undefined ? '--selector' : null].filter((k) => k !== null);
  if (kinds.length > 1) usage(cmd, `${kinds.join(' and ')} exclude each other: a change is for a list of devices or for a label selector`);
  if (flags.device?.length) {
    const bad = flags.device.find((d) => !DEVICE_ID_RE.test(d));
    if (bad !== undefined) usage(cmd, `--device ${JSON.stringify(bad)} is not a device id (1-64 characters of [A-Za-z0-9._-])`);
    return { devices: [...new Set(flags.device)].sort() };
  }
  const text = flags.label?.length ? flags.label.join(',') : flags.selector;
  if (text === undefined) return undefined;
  if (flags.label?.some((l) => l.includes(','))) usage(cmd, '--label takes one key=value; use --selector for several in one flag');
  try {
    return { labels: parseSelector(text) };
  } catch (err) {
    return usage(cmd, `${flags.label?.length ? '--label' : '--selector'}: ${(err as Error).message}`);
  }
}

/** A target as one short phrase: "every device", "devices a, b", "platform=android,build=1.4.*". */
export function describeTarget(t: Target | null | undefined): string {
  if (!t || 'all' in t) return 'every device';
  if ('devices' in t) return `device${t.devices.length === 1 ? '' : 's'} ${t.devices.join(', ')}`;
  return formatSelector(t.labels);
}
