/**
 * Who a change is for: every device, the devices selected in the list, or a label selector typed as
 * `platform=android,build=1.4.*`. The selector is sent as typed; the daemon parses it, and its 400
 * message (which names the position and the problem) is shown under the box.
 */
import type { TargetInput } from '../api';
import { plural } from '../format';

export type TargetMode = 'all' | 'selected' | 'labels';

export interface TargetChoice {
  mode: TargetMode;
  selector: string;
}

export const ALL_DEVICES: TargetChoice = { mode: 'all', selector: '' };

/** The target to send, or what is missing to make one. */
export function buildTarget(choice: TargetChoice, selected: ReadonlySet<string>): { target: TargetInput } | { error: string } {
  if (choice.mode === 'all') return { target: { all: true } };
  if (choice.mode === 'selected') {
    if (selected.size === 0) return { error: 'Select devices in the Devices list first' };
    return { target: { devices: [...selected].sort() } };
  }
  if (!choice.selector.trim()) return { error: 'Type a label selector, e.g. platform=android,build=1.4.*' };
  return { target: { labels: choice.selector.trim() } };
}

export function TargetPicker(props: {
  choice: TargetChoice;
  onChange: (c: TargetChoice) => void;
  selectedCount: number;
  error?: string | null;
  /** Prefix of the test ids, so two pickers on one page stay apart. */
  testid: string;
  label?: string;
}) {
  const { choice, onChange } = props;
  return (
    <div class="target-picker" data-testid={props.testid}>
      <label class="target-label">
        <span class="muted small">{props.label ?? 'Set for'}</span>
        <select
          class="input small"
          value={choice.mode}
          aria-label="Target"
          data-testid={`${props.testid}-mode`}
          onChange={(e) => onChange({ ...choice, mode: e.currentTarget.value as TargetMode })}
        >
          <option value="all">All devices</option>
          <option value="selected">Selected devices ({props.selectedCount})</option>
          <option value="labels">Devices with labels…</option>
        </select>
      </label>
      {choice.mode === 'labels' && (
        <input
          class={props.error ? 'input small invalid selector' : 'input small selector'}
          placeholder="platform=android,build=1.4.*"
          aria-label="Label selector"
          spellcheck={false}
          autoComplete="off"
          value={choice.selector}
          data-testid={`${props.testid}-selector`}
          onInput={(e) => onChange({ ...choice, selector: e.currentTarget.value })}
        />
      )}
      {choice.mode === 'selected' && props.selectedCount === 0 && <span class="muted small">tick devices in the list</span>}
      {choice.mode === 'selected' && props.selectedCount > 0 && <span class="muted small">{plural(props.selectedCount, 'device')}</span>}
      {props.error && (
        <span class="field-error full" role="alert" data-testid={`${props.testid}-error`}>
          {props.error}
        </span>
      )}
    </div>
  );
}
