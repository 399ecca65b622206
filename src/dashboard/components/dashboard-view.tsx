/** The signed-in page: connect instructions, activity, devices, variables and the log tail. */
import { useEffect } from 'preact/hooks';
import type { Api } from '../api';
import { useLiveEvents } from '../hooks';
import type { LiveSocket } from '../live-socket';
import { ActivityChart } from './activity-chart';
import { ConnectPanel } from './connect-panel';
import { DevicesPanel } from './devices-panel';
import { LogsPanel } from './logs-panel';
import { toast } from './toasts';
import { VarsPanel } from './vars-panel';

export function DashboardView(props: { api: Api; socket: LiveSocket; apiKey: string }) {
  const { api, socket } = props;
  useEffect(() => {
    socket.start();
    return () => socket.stop();
  }, [socket]);
  useLiveEvents(socket, (ev) => {
    if (ev.type === 'error') toast(`Server: ${ev.message || ev.code}`, 'error');
  });
  return (
    <main class="dashboard">
      <ConnectPanel apiKey={props.apiKey} />
      <ActivityChart socket={socket} />
      <DevicesPanel api={api} socket={socket} />
      <VarsPanel api={api} socket={socket} />
      <LogsPanel api={api} socket={socket} />
    </main>
  );
}
