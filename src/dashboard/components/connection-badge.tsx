/**
 * The live socket's state in words: live, connecting, or the daemon unreachable and retrying in N s
 * (with "retry now"); while it is not live, device states are unknown and the badge says so.
 */
import { useNow, useSocketState } from '../hooks';
import type { LiveSocket } from '../live-socket';

export function ConnectionBadge(props: { socket: LiveSocket }) {
  const state = useSocketState(props.socket);
  const now = useNow(500);
  let text: string;
  let cls: string;
  if (state.kind === 'open') {
    text = 'Live';
    cls = 'ok';
  } else if (state.kind === 'connecting') {
    text = state.attempt > 1 ? `Daemon unreachable — reconnecting (attempt ${state.attempt})…` : 'Connecting…';
    cls = 'pending';
  } else if (state.kind === 'waiting') {
    const s = Math.max(0, Math.ceil((state.retryAt - now) / 1000));
    text = `Daemon unreachable — retrying in ${s} s`;
    cls = 'bad';
  } else {
    text = 'Offline';
    cls = 'bad';
  }
  return (
    <span
      class={`conn conn-${cls}`}
      data-testid="ws-status"
      data-state={state.kind}
      role="status"
      aria-live="polite"
      title={state.kind === 'open' ? 'Live events flow from the daemon' : 'No live connection: device states are unknown until it is back'}
    >
      <span class="conn-dot" aria-hidden="true" />
      {text}
      {state.kind === 'waiting' && (
        <button type="button" class="link" data-testid="ws-retry" onClick={() => props.socket.retryNow()}>
          retry now
        </button>
      )}
    </span>
  );
}
