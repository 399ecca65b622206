/**
 * The signed-in page: connect instructions, activity, devices, variables, strategies, history and
 * the log tail; or, on `#/devices/<id>`, that device's page. The dashboard's panels stay mounted
 * behind a device page so the tail, chart and selection survive a visit. The device selection and
 * the key's overrides and strategies live here because several panels use them.
 */
import { useEffect, useState } from 'preact/hooks';
import type { Api } from '../api';
import { useDevicePage, useLiveEvents } from '../hooks';
import type { LiveSocket } from '../live-socket';
import { useVariablesState } from '../variables-state';
import { ActivityChart } from './activity-chart';
import { ConnectPanel } from './connect-panel';
import { DevicePage } from './device-page';
import { DevicesPanel } from './devices-panel';
import { HistoryPanel } from './history-panel';
import { LogsPanel } from './logs-panel';
import { StrategiesPanel } from './strategies-panel';
import { toast } from './toasts';
import { VarsPanel } from './vars-panel';

export function DashboardView(props: { api: Api; socket: LiveSocket; apiKey: string }) {
  const { api, socket } = props;
  const deviceId = useDevicePage();
  const [selected, setSelected] = useState<Set<string>>(() => new Set());
  const state = useVariablesState(api, socket);
  useEffect(() => {
    socket.start();
    return () => socket.stop();
  }, [socket]);
  useEffect(() => {
    if (deviceId === null) return;
    scrollTo(0, 0);
  }, [deviceId]);
  useLiveEvents(socket, (ev) => {
    if (ev.type === 'error') toast(`Server: ${ev.message || ev.code}`, 'error');
  });
  return (
    <>
      <main class="dashboard" hidden={deviceId !== null}>
        <ConnectPanel api={api} apiKey={props.apiKey} />
        <ActivityChart socket={socket} />
        <DevicesPanel api={api} socket={socket} strategies={state.strategies} selected={selected} onSelect={setSelected} />
        <VarsPanel api={api} socket={socket} overrides={state.overrides} selected={selected} />
        <StrategiesPanel api={api} strategies={state.strategies} error={state.error} selected={selected} reload={state.reload} />
        <HistoryPanel api={api} socket={socket} />
        <LogsPanel api={api} socket={socket} />
      </main>
      {deviceId !== null && <DevicePage key={deviceId} api={api} socket={socket} deviceId={deviceId} />}
    </>
  );
}
