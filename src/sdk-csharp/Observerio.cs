// Observerio.cs — the observerio SDK for C# games (Unity, Godot .NET, plain .NET), in one file.
//
// Install: copy this file into the game. It needs nothing but .NET Standard 2.0 (mscorlib and
// System.dll: sockets, threads, text); no package, no System.Text.Json. It speaks the observerio line
// protocol (docs/PROTOCOL.md) to the daemon: it verifies the API key, reports the game's variables
// (its defaults first), applies the values set on the dashboard, batches logs, and reconnects by itself
// with exponential backoff and jitter while keeping a bounded offline queue.
//
// Threads: the connection runs on a background thread of its own. Events (OnChange, OnChanges,
// OnConnected, OnDisconnected, OnError) are never raised on it unless asked: by default they wait for
// the game to call Poll() (Unity: from Update, on the main thread); with
// ObserverioOptions.SynchronizationContext they are posted there; with Dispatch = Immediate they are
// raised on the SDK's threads. Getters, SetVar, Log and Flush may be called from any thread.
//
// Errors: nothing the SDK does throws into the game. A bad argument makes the call return false and
// sets LastError; daemon error lines, dropped logs and handlers that threw come through OnError.
//
// Types (as the TypeScript SDK, src/sdk/codec.ts, infers them): the CLR type of the value decides,
// never the value itself. SetVar("spawn_ms", 800.0) or 800f is a float (sent as "800"), SetVar("spawn_ms",
// 800) an integer, true a boolean, "x" a string; pass a type to override ("color"). Values travel as
// strings in JavaScript's number format, so 0.1f is sent as "0.1" and 1e21 as "1e+21".
using System;
using System.Collections;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;

namespace Observerio
{
    /// <summary>Where events are raised when no SynchronizationContext is given.</summary>
    public enum DispatchMode
    {
        /// <summary>Queued until the game calls <see cref="ObserverioClient.Poll"/> (the default).</summary>
        Poll,
        /// <summary>Raised at once on the SDK's own threads: handlers must be thread-safe.</summary>
        Immediate,
    }

    /// <summary>Where the client is (docs/PROTOCOL.md §9).</summary>
    public enum ClientState { Connecting, Verifying, Online, Waiting, Closed }

    /// <summary>What <see cref="ObserverioClient.Connect"/> needs. Only ApiKey is required.</summary>
    public sealed class ObserverioOptions
    {
        /// <summary>Daemon host name or address; default 127.0.0.1.</summary>
        public string Host { get; set; } = "127.0.0.1";
        /// <summary>Daemon TCP port; default 4040.</summary>
        public int Port { get; set; } = 4040;
        /// <summary>The account's API key: exactly 12 characters of [A-Za-z0-9].</summary>
        public string ApiKey { get; set; }
        /// <summary>Names this device (1-64 of [A-Za-z0-9._-]); leave null for the original daemon, which does not answer v:key:id.</summary>
        public string DeviceId { get; set; }
        /// <summary>Facts about this device (platform, build, ...) the dashboard can target overrides at; sent with d: after each OK.</summary>
        public IDictionary<string, string> Labels { get; set; }
        /// <summary>The game's own values, reported with the first i: line; typed by their CLR type.</summary>
        public IDictionary<string, object> Defaults { get; set; }
        /// <summary>Where events are raised when SynchronizationContext is null; default Poll.</summary>
        public DispatchMode Dispatch { get; set; } = DispatchMode.Poll;
        /// <summary>When set, events are posted to this context (e.g. Unity's main thread) instead of waiting for Poll().</summary>
        public SynchronizationContext SynchronizationContext { get; set; }
        /// <summary>Logs per l: line; a full batch is sent at once. Default 100.</summary>
        public int LogBatchSize { get; set; } = 100;
        /// <summary>Longest a log waits for its batch to fill. Default 250 ms.</summary>
        public int LogIntervalMs { get; set; } = 250;
        /// <summary>Variable changes within this window go out in one i: line, latest value per name. Default 10 ms.</summary>
        public int VarsWindowMs { get; set; } = 10;
        /// <summary>Logs kept while offline; beyond this the oldest are dropped and counted. Default 10000.</summary>
        public int OfflineLogLimit { get; set; } = 10000;
        /// <summary>Events kept for Poll(); beyond this the oldest are dropped and counted (values still apply). Default 10000.</summary>
        public int MaxQueuedEvents { get; set; } = 10000;
        /// <summary>Longest from opening a connection to the daemon's OK. Default 10000 ms.</summary>
        public int ConnectTimeoutMs { get; set; } = 10000;
        /// <summary>Longest line sent or accepted, the daemon's tcp.maxLineBytes. Default 1 MiB.</summary>
        public int MaxLineBytes { get; set; } = 1024 * 1024;
        /// <summary>When above 0, an idle connection sends an empty log batch this often so the daemon's idle timeout keeps it. Default 0.</summary>
        public int HeartbeatMs { get; set; }
        /// <summary>Echo a dashboard change back in the next i: line when it differs from the game's value, so the daemon stores what the game uses. Default true.</summary>
        public bool ConfirmRemoteVars { get; set; } = true;
        /// <summary>Reconnect when a connection fails or drops; false stops the client at the first failure. Default true.</summary>
        public bool Reconnect { get; set; } = true;
        /// <summary>First reconnection delay. Default 1000 ms.</summary>
        public int ReconnectInitialMs { get; set; } = 1000;
        /// <summary>Longest reconnection delay, jitter included. Default 30000 ms.</summary>
        public int ReconnectMaxMs { get; set; } = 30000;
        /// <summary>Growth of the delay per failed attempt. Default 2.</summary>
        public double ReconnectFactor { get; set; } = 2;
        /// <summary>Relative spread of each delay, 0..1. Default 0.2 (±20 %).</summary>
        public double ReconnectJitter { get; set; } = 0.2;
        /// <summary>A connection verified this long resets the delay to ReconnectInitialMs. Default 10000 ms.</summary>
        public int ReconnectStableMs { get; set; } = 10000;
        /// <summary>Longest Close() waits to send what is queued. Default 2000 ms.</summary>
        public int CloseTimeoutMs { get; set; } = 2000;
        /// <summary>Diagnostics (connects, retries, ignored lines); called on any thread. Default none.</summary>
        public Action<string> Logger { get; set; }
    }

    /// <summary>Something that went wrong; the client carries on.</summary>
    public sealed class ObserverioError
    {
        /// <summary>A stable code: the daemon's (docs/PROTOCOL.md §6) or the SDK's own (bad_var, bad_log, bad_label, bad_option, closed, connection_refused, connection_error, connection_lost, connect_timeout, bad_server_line, listener_error, internal).</summary>
        public string Code { get; }
        public string Message { get; }
        /// <summary>True when the daemon sent it as an e: line.</summary>
        public bool FromDaemon { get; }
        public Exception Cause { get; }

        public ObserverioError(string code, string message, bool fromDaemon = false, Exception cause = null)
        {
            Code = code;
            Message = message;
            FromDaemon = fromDaemon;
            Cause = cause;
        }

        public override string ToString() { return Code + ": " + Message; }
    }

    /// <summary>One variable changed from the dashboard.</summary>
    public sealed class VarChange
    {
        public string Name { get; }
        public string Type { get; }
        /// <summary>Typed by Type: integer → long (double if not whole), float → double, boolean → bool, otherwise the string.</summary>
        public object Value { get; }
        /// <summary>The value as the wire carried it.</summary>
        public string Raw { get; }
        /// <summary>The typed value the game had before, or null.</summary>
        public object Previous { get; }

        internal VarChange(string name, string type, object value, string raw, object previous)
        {
            Name = name;
            Type = type;
            Value = value;
            Raw = raw;
            Previous = previous;
        }
    }

    /// <summary>
    /// A game's connection to the observerio daemon. Create it with <see cref="Connect"/>, which returns
    /// at once; the connection is made (and remade) in the background while the game runs on its defaults.
    /// </summary>
    public sealed class ObserverioClient : IDisposable
    {
        /// <summary>A variable's value changed on the dashboard: name and typed value (see <see cref="VarChange.Value"/>).</summary>
        public event Action<string, object> OnChange;
        /// <summary>Every change of one daemon line at once, in the order the daemon sent them (after the OnChange calls).</summary>
        public event Action<IReadOnlyList<VarChange>> OnChanges;
        /// <summary>Verified (again): true after a reconnect. Variables and queued logs have just been re-sent.</summary>
        public event Action<bool> OnConnected;
        /// <summary>A verified connection ended; the error is null after Close().</summary>
        public event Action<ObserverioError> OnDisconnected;
        /// <summary>A daemon e: line, a value or log refused, a handler that threw, ... The client carries on.</summary>
        public event Action<ObserverioError> OnError;

        /// <summary>The JSON of labels, base64, may be at most this long (docs/PROTOCOL.md §13).</summary>
        internal const int MaxLabelsPayload = 21848;
        const int CloseGraceMs = 500;

        readonly object _lock = new object();
        readonly object _dispatchLock = new object();
        readonly ObserverioOptions _o;
        readonly string _apiKey;
        readonly string _deviceId;
        readonly int _jsonBudget;
        readonly Random _random = new Random(Guid.NewGuid().GetHashCode());

        ClientState _state = ClientState.Connecting;
        bool _started;
        bool _closeRequested;
        bool _hasConnected;
        ObserverioError _lastError;
        Thread _thread;

        // Every variable's current value (set here or from the dashboard), first-seen order.
        readonly OrderedMap<WireVar> _vars = new OrderedMap<WireVar>();
        // Changes not yet sent on the current connection; empty offline (all is re-sent after OK).
        readonly OrderedMap<WireVar> _pending = new OrderedMap<WireVar>();
        long _varsDueAt = -1;

        readonly Queue<string> _logs = new Queue<string>();
        long _droppedLogs;
        long _logsDueAt = -1;

        SortedDictionary<string, string> _labels;
        bool _labelsDirty;
        bool? _labelsSupported;

        long _flushRequested;
        long _flushDone;

        readonly Queue<Action> _events = new Queue<Action>();
        long _droppedEvents;
        bool _postPending;

        // The current connection: the reader thread reports into these, keyed by _connId.
        Socket _socket;
        int _connId;
        bool _verified;
        bool _connDead;
        bool _labelsSentOnConn;
        ObserverioError _connError;
        long _lastWriteAt;

        /// <summary>Checks the options and prepares the client; opens nothing until <see cref="Start"/>. Never throws: bad options leave it Closed with LastError set (and an OnError event queued).</summary>
        public ObserverioClient(ObserverioOptions options)
        {
            _o = options ?? new ObserverioOptions();
            _apiKey = _o.ApiKey;
            _deviceId = string.IsNullOrEmpty(_o.DeviceId) ? null : _o.DeviceId;
            _jsonBudget = Codec.JsonBudget(Math.Max(256, _o.MaxLineBytes));
            ObserverioError bad = options == null ? new ObserverioError("bad_option", "options must not be null") : CheckOptions(_o);
            if (bad != null)
            {
                _state = ClientState.Closed;
                _closeRequested = true;
                Fail(bad);
                return;
            }
            if (_o.Labels != null && !SetLabelsLocked(_o.Labels)) Fail(_lastError);
            if (_o.Defaults != null)
                foreach (var kv in _o.Defaults)
                {
                    WireVar v;
                    ObserverioError err = Codec.ToWireVar(kv.Key, kv.Value, null, _jsonBudget, out v);
                    if (err != null) Fail(err);
                    else _vars.Set(v.Name, v);
                }
        }

        /// <summary>Creates a client and starts connecting in the background; returns at once.</summary>
        public static ObserverioClient Connect(ObserverioOptions options)
        {
            var client = new ObserverioClient(options);
            client.Start();
            return client;
        }

        /// <summary>Starts connecting in the background (once; later calls do nothing).</summary>
        public void Start()
        {
            lock (_lock)
            {
                if (_started || _closeRequested) return;
                _started = true;
                try
                {
                    _thread = new Thread(Run) { IsBackground = true, Name = "observerio-io" };
                    _thread.Start();
                }
                catch (Exception e)
                {
                    _state = ClientState.Closed;
                    _closeRequested = true;
                    Fail(new ObserverioError("internal", "cannot start the connection thread: " + e.Message, false, e));
                }
            }
            AfterEnqueue();
        }

        public string ApiKey { get { return _apiKey; } }
        public string DeviceId { get { return _deviceId; } }
        public ClientState State { get { lock (_lock) return _state; } }
        /// <summary>True while verified and able to send.</summary>
        public bool IsOnline { get { lock (_lock) return _state == ClientState.Online; } }
        /// <summary>The latest error: a refused call, a failed connection attempt, a daemon e: line.</summary>
        public ObserverioError LastError { get { lock (_lock) return _lastError; } }
        /// <summary>Logs dropped so far: the oldest pushed out of the full offline queue, refused ones, ones logged after Close().</summary>
        public long DroppedLogs { get { lock (_lock) return _droppedLogs; } }
        /// <summary>Logs waiting to be sent.</summary>
        public int QueuedLogs { get { lock (_lock) return _logs.Count; } }
        /// <summary>Events dropped because Poll() was not called often enough to keep MaxQueuedEvents.</summary>
        public long DroppedEvents { get { lock (_lock) return _droppedEvents; } }
        /// <summary>Null until known; false once the daemon answered d: with e:unknown_command (a daemon without the devices extension).</summary>
        public bool? LabelsSupported { get { lock (_lock) return _labelsSupported; } }

        // --- values --------------------------------------------------------------------------------

        /// <summary>The effective value as a float: a number variable's value, else <paramref name="defaultValue"/>.</summary>
        public float GetFloat(string name, float defaultValue) { return (float)GetDouble(name, defaultValue); }

        /// <summary>The effective value as a double: a number variable's value, else <paramref name="defaultValue"/>.</summary>
        public double GetDouble(string name, double defaultValue)
        {
            object v;
            if (!TryGet(name, out v)) return defaultValue;
            if (v is long) return (long)v;
            if (v is double) return (double)v;
            return defaultValue;
        }

        /// <summary>The effective value as an int: a whole number within int's range, else <paramref name="defaultValue"/>.</summary>
        public int GetInt(string name, int defaultValue)
        {
            long l = GetLong(name, defaultValue);
            return l >= int.MinValue && l <= int.MaxValue ? (int)l : defaultValue;
        }

        /// <summary>The effective value as a long: a whole number within long's range, else <paramref name="defaultValue"/>.</summary>
        public long GetLong(string name, long defaultValue)
        {
            object v;
            if (!TryGet(name, out v)) return defaultValue;
            if (v is long) return (long)v;
            if (v is double)
            {
                double d = (double)v;
                if (Math.Floor(d) == d && d >= -9.2233720368547758E18 && d < 9.2233720368547758E18) return (long)d;
            }
            return defaultValue;
        }

        /// <summary>The effective value of a boolean variable, else <paramref name="defaultValue"/>.</summary>
        public bool GetBool(string name, bool defaultValue)
        {
            object v;
            return TryGet(name, out v) && v is bool ? (bool)v : defaultValue;
        }

        /// <summary>The effective value of a string variable (any type that is not a number or boolean, or a value that did not parse as its type), else <paramref name="defaultValue"/>.</summary>
        public string GetString(string name, string defaultValue)
        {
            object v;
            return TryGet(name, out v) && v is string ? (string)v : defaultValue;
        }

        /// <summary>The typed effective value (long, double, bool or string), if the variable exists.</summary>
        public bool TryGet(string name, out object value)
        {
            lock (_lock)
            {
                WireVar v;
                if (name != null && _vars.TryGet(name, out v))
                {
                    value = v.Typed;
                    return true;
                }
            }
            value = null;
            return false;
        }

        /// <summary>Every variable, typed, in first-seen order.</summary>
        public IDictionary<string, object> GetAll()
        {
            var all = new Dictionary<string, object>();
            lock (_lock) foreach (var v in _vars.Values) all[v.Name] = v.Typed;
            return all;
        }

        /// <summary>Sets one variable, its type inferred from the value's CLR type (see the file's header). False (and LastError) for a value the daemon would refuse or a closed client.</summary>
        public bool SetVar(string name, object value) { return SetVar(name, value, null); }

        /// <summary>Sets one variable with an explicit type (1-32 printable characters, e.g. "color").</summary>
        public bool SetVar(string name, object value, string type)
        {
            WireVar v;
            ObserverioError err = Codec.ToWireVar(name, value, type, _jsonBudget, out v);
            lock (_lock)
            {
                if (err == null && _closeRequested) err = new ObserverioError("closed", "client is closed");
                if (err != null)
                {
                    _lastError = err;
                    return false;
                }
                ApplyLocal(v);
            }
            return true;
        }

        /// <summary>Sets several variables at once; all are checked first, and none is applied if one is bad.</summary>
        public bool SetVars(IDictionary<string, object> values)
        {
            if (values == null) return Refuse(new ObserverioError("bad_var", "values must not be null"));
            var wire = new List<WireVar>();
            foreach (var kv in values)
            {
                WireVar v;
                ObserverioError err = Codec.ToWireVar(kv.Key, kv.Value, null, _jsonBudget, out v);
                if (err != null) return Refuse(err);
                wire.Add(v);
            }
            lock (_lock)
            {
                if (_closeRequested)
                {
                    _lastError = new ObserverioError("closed", "client is closed");
                    return false;
                }
                foreach (var v in wire) ApplyLocal(v);
            }
            return true;
        }

        /// <summary>Replaces the device's labels (sent with d: now if online, and after every OK). False if a label breaks the rules of docs/PROTOCOL.md §13; the labels stay as they were.</summary>
        public bool SetLabels(IDictionary<string, string> labels)
        {
            lock (_lock)
            {
                if (_closeRequested)
                {
                    _lastError = new ObserverioError("closed", "client is closed");
                    return false;
                }
                if (!SetLabelsLocked(labels ?? new Dictionary<string, string>())) return false;
                if (_state == ClientState.Online)
                {
                    _labelsDirty = true;
                    Monitor.PulseAll(_lock);
                }
                return true;
            }
        }

        // --- logs ----------------------------------------------------------------------------------

        /// <summary>
        /// Queues a log entry {message, level, timestamp (ms since the epoch), ...fields}. Sent when LogBatchSize
        /// are queued or LogIntervalMs after the first. Field values: null, bool, numbers, strings, dictionaries
        /// and lists of those; anything else is sent as its ToString(). A "timestamp" field replaces the clock's.
        /// Returns false (counted in DroppedLogs and reported by OnError) for an entry the daemon would refuse.
        /// </summary>
        public bool Log(string message, string level = "info", IDictionary<string, object> fields = null)
        {
            string json;
            ObserverioError err = Codec.LogJson(message, level, fields, NowEpochMs(), _jsonBudget, out json);
            lock (_lock)
            {
                if (_closeRequested)
                {
                    _droppedLogs++;
                    return false;
                }
                if (err != null)
                {
                    _droppedLogs++;
                    Fail(err);
                }
                else
                {
                    if (_o.OfflineLogLimit <= 0) _droppedLogs++;
                    else
                    {
                        while (_logs.Count >= _o.OfflineLogLimit)
                        {
                            _logs.Dequeue();
                            _droppedLogs++;
                        }
                        _logs.Enqueue(json);
                    }
                    if (_state == ClientState.Online)
                    {
                        if (_logsDueAt < 0) _logsDueAt = Now() + _o.LogIntervalMs;
                        Monitor.PulseAll(_lock);
                    }
                }
            }
            if (err != null) AfterEnqueue();
            return err == null;
        }

        // --- flow ----------------------------------------------------------------------------------

        /// <summary>
        /// Sends every queued variable change and log now and waits up to <paramref name="timeoutMs"/> for them to be
        /// written to the socket (offline: for the next connection to re-send them). True if they were.
        /// Flush(0) asks without waiting.
        /// </summary>
        public bool Flush(int timeoutMs = 1000)
        {
            lock (_lock)
            {
                if (_closeRequested) return false;
                long id = ++_flushRequested;
                Monitor.PulseAll(_lock);
                long deadline = Now() + Math.Max(0, timeoutMs);
                while (_flushDone < id)
                {
                    long left = deadline - Now();
                    if (left <= 0 || _closeRequested) return _flushDone >= id;
                    Monitor.Wait(_lock, (int)Math.Min(left, int.MaxValue));
                }
                return true;
            }
        }

        /// <summary>Raises the queued events on the calling thread (call it from the game's Update); returns how many.</summary>
        public int Poll()
        {
            int count = 0;
            while (true)
            {
                // One thread dispatches at a time, so handlers see events in order; a thread that finds
                // another one dispatching leaves the events to it (checked again after it let go).
                if (!Monitor.TryEnter(_dispatchLock)) return count;
                try
                {
                    // Bounded rounds: errors reported by handlers of one round are delivered in the next.
                    for (int round = 0; round < 4; round++)
                    {
                        Action[] batch;
                        lock (_lock)
                        {
                            if (_events.Count == 0) break;
                            batch = _events.ToArray();
                            _events.Clear();
                        }
                        foreach (var a in batch)
                        {
                            a();
                            count++;
                        }
                    }
                }
                finally
                {
                    Monitor.Exit(_dispatchLock);
                }
                lock (_lock) if (_events.Count == 0 || _o.Dispatch == DispatchMode.Poll && _o.SynchronizationContext == null) return count;
            }
        }

        /// <summary>Sends what is queued (for up to CloseTimeoutMs when online), closes the connection and stops reconnecting.</summary>
        public void Close() { Close(_o.CloseTimeoutMs); }

        /// <summary>Close, waiting at most <paramref name="timeoutMs"/> for queued data to be sent.</summary>
        public void Close(int timeoutMs)
        {
            Thread t;
            lock (_lock)
            {
                if (_closeRequested && _state == ClientState.Closed) return;
                _closeRequested = true;
                t = _thread;
                // Not verified yet: nothing to send, so a pending connect is cut short.
                if (_state != ClientState.Online) CloseSocketLocked();
                Monitor.PulseAll(_lock);
            }
            try
            {
                if (t != null && t != Thread.CurrentThread && !t.Join(Math.Max(0, timeoutMs)))
                {
                    lock (_lock) CloseSocketLocked();
                    t.Join(CloseGraceMs);
                }
            }
            catch (Exception)
            {
                // A thread interrupted while joining: the client is closed below all the same.
            }
            lock (_lock)
            {
                _state = ClientState.Closed;
                Monitor.PulseAll(_lock);
            }
            AfterEnqueue();
        }

        public void Dispose() { Close(); }

        // --- the connection thread ----------------------------------------------------------------

        void Run()
        {
            int failures = 0;
            while (true)
            {
                ObserverioError err = null;
                bool wasOnline = false;
                long onlineSince = 0;
                try
                {
                    lock (_lock)
                    {
                        if (_closeRequested) break;
                        _state = ClientState.Connecting;
                    }
                    long deadline = Now() + _o.ConnectTimeoutMs;
                    Socket s = OpenSocket(deadline, out err);
                    if (s != null) err = Session(s, deadline, ref wasOnline, ref onlineSince);
                }
                catch (Exception e)
                {
                    err = new ObserverioError("internal", "the connection thread failed: " + e.Message, false, e);
                }
                lock (_lock)
                {
                    CloseSocketLocked();
                    _pending.Clear();
                    _varsDueAt = -1;
                    _logsDueAt = -1;
                    if (_closeRequested)
                    {
                        if (wasOnline) Enqueue(() => Raise(OnDisconnected, null, "OnDisconnected"));
                        break;
                    }
                    if (err == null) err = new ObserverioError("connection_lost", Where() + " closed the connection");
                    _lastError = err;
                    if (wasOnline) Enqueue(() => Raise(OnDisconnected, err, "OnDisconnected"));
                    if (!_o.Reconnect)
                    {
                        _closeRequested = true;
                        break;
                    }
                    if (wasOnline && Now() - onlineSince >= _o.ReconnectStableMs) failures = 0;
                    int delay = Codec.BackoffDelay(failures, _o.ReconnectInitialMs, _o.ReconnectMaxMs, _o.ReconnectFactor, _o.ReconnectJitter, _random.NextDouble());
                    failures++;
                    _state = ClientState.Waiting;
                    Trace(err + "; reconnecting in " + delay + " ms (attempt " + failures + ")");
                    long wakeAt = Now() + delay;
                    while (!_closeRequested)
                    {
                        long left = wakeAt - Now();
                        if (left <= 0) break;
                        Monitor.Wait(_lock, (int)left);
                    }
                }
                AfterEnqueue();
            }
            lock (_lock)
            {
                _state = ClientState.Closed;
                Monitor.PulseAll(_lock);
            }
            AfterEnqueue();
        }

        Socket OpenSocket(long deadline, out ObserverioError err)
        {
            err = null;
            IPAddress[] addrs;
            IPAddress one;
            try
            {
                addrs = IPAddress.TryParse(_o.Host, out one) ? new[] { one } : Dns.GetHostAddresses(_o.Host);
            }
            catch (Exception e)
            {
                err = new ObserverioError("connection_error", "cannot resolve " + _o.Host + ": " + e.Message, false, e);
                return null;
            }
            foreach (var addr in addrs)
            {
                Socket s;
                lock (_lock)
                {
                    if (_closeRequested) return null;
                    s = new Socket(addr.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                    _socket = s;
                }
                try
                {
                    IAsyncResult ar = s.BeginConnect(addr, _o.Port, null, null);
                    long left = deadline - Now();
                    if (left <= 0 || !ar.AsyncWaitHandle.WaitOne((int)left))
                    {
                        err = new ObserverioError("connect_timeout", "no connection to " + Where() + " within " + _o.ConnectTimeoutMs + " ms");
                        lock (_lock) CloseSocketLocked();
                        return null;
                    }
                    s.EndConnect(ar);
                    s.NoDelay = true;
                    s.SendTimeout = Math.Max(1000, _o.ConnectTimeoutMs);
                    return s;
                }
                catch (SocketException e)
                {
                    err = e.SocketErrorCode == SocketError.ConnectionRefused
                        ? new ObserverioError("connection_refused", Where() + " refused the connection", false, e)
                        : new ObserverioError("connection_error", "cannot connect to " + Where() + ": " + e.Message, false, e);
                }
                catch (Exception e)
                {
                    err = new ObserverioError("connection_error", "cannot connect to " + Where() + ": " + e.Message, false, e);
                }
                lock (_lock) CloseSocketLocked();
            }
            if (err == null) err = new ObserverioError("connection_error", "no address for " + _o.Host);
            return null;
        }

        /// <summary>One connection from v: to its end; null when it ended because of Close().</summary>
        ObserverioError Session(Socket s, long deadline, ref bool wasOnline, ref long onlineSince)
        {
            int conn;
            lock (_lock)
            {
                conn = ++_connId;
                _verified = false;
                _connDead = false;
                _connError = null;
                _labelsSentOnConn = false;
                _state = ClientState.Verifying;
            }
            var reader = new Thread(() => ReadLoop(s, conn)) { IsBackground = true, Name = "observerio-read" };
            reader.Start();
            ObserverioError werr = Write(s, new List<string> { Codec.EncodeVerify(_apiKey, _deviceId) });
            if (werr != null) return werr;

            var lines = new List<string>();
            long flushTarget;
            bool reconnected;
            lock (_lock)
            {
                while (!_verified && !_connDead && !_closeRequested)
                {
                    long left = deadline - Now();
                    if (left <= 0) break;
                    Monitor.Wait(_lock, (int)left);
                }
                if (_closeRequested) return null;
                if (!_verified)
                    return _connError ?? new ObserverioError("connect_timeout", "no OK from " + Where() + " within " + _o.ConnectTimeoutMs + " ms");
                // Online: labels first (the daemon picks overrides by them), then every variable (the daemon
                // may have restarted on an in-memory store), then what was logged while offline.
                _state = ClientState.Online;
                wasOnline = true;
                onlineSince = Now();
                reconnected = _hasConnected;
                _hasConnected = true;
                _lastError = null;
                if (_labels != null)
                {
                    lines.Add(Codec.EncodeLabels(_apiKey, _labels));
                    _labelsSentOnConn = true;
                }
                _labelsDirty = false;
                _pending.Clear();
                _varsDueAt = -1;
                AddVarLines(lines, _vars.Values);
                AddLogLines(lines);
                flushTarget = _flushRequested;
            }
            werr = Write(s, lines);
            if (werr != null) return werr;
            lock (_lock)
            {
                if (flushTarget > _flushDone) _flushDone = flushTarget;
                Monitor.PulseAll(_lock);
                Enqueue(() => Raise(OnConnected, reconnected, "OnConnected"));
            }
            AfterEnqueue();
            Trace((reconnected ? "reconnected to " : "connected to ") + Where());

            while (true)
            {
                bool closing = false;
                lines.Clear();
                lock (_lock)
                {
                    while (true)
                    {
                        if (_connDead) return _connError ?? new ObserverioError("connection_lost", Where() + " closed the connection");
                        closing = _closeRequested;
                        long now = Now();
                        bool flushing = closing || _flushRequested > _flushDone;
                        flushTarget = _flushRequested;
                        if (_labelsDirty && _labels != null)
                        {
                            lines.Add(Codec.EncodeLabels(_apiKey, _labels));
                            _labelsSentOnConn = true;
                        }
                        _labelsDirty = false;
                        if (_pending.Count > 0 && (flushing || now >= _varsDueAt))
                        {
                            AddVarLines(lines, _pending.Values);
                            _pending.Clear();
                            _varsDueAt = -1;
                        }
                        if (_logs.Count > 0 && (flushing || _logs.Count >= _o.LogBatchSize || now >= _logsDueAt)) AddLogLines(lines);
                        if (lines.Count == 0 && _o.HeartbeatMs > 0 && now - _lastWriteAt >= _o.HeartbeatMs)
                            lines.Add("l:" + _apiKey + ":" + Codec.EmptyArrayB64);
                        if (lines.Count > 0 || flushing) break;
                        long wake = long.MaxValue;
                        if (_pending.Count > 0) wake = Math.Min(wake, _varsDueAt);
                        if (_logs.Count > 0) wake = Math.Min(wake, _logsDueAt);
                        if (_o.HeartbeatMs > 0) wake = Math.Min(wake, _lastWriteAt + _o.HeartbeatMs);
                        long wait = wake == long.MaxValue ? 60000 : Math.Max(1, wake - now);
                        Monitor.Wait(_lock, (int)Math.Min(wait, 60000));
                    }
                }
                if (lines.Count > 0)
                {
                    werr = Write(s, lines);
                    if (werr != null) return werr;
                }
                lock (_lock)
                {
                    if (flushTarget > _flushDone) _flushDone = flushTarget;
                    Monitor.PulseAll(_lock);
                    if (closing)
                    {
                        // Half-close and give the daemon a moment to read what was sent and hang up.
                        try { s.Shutdown(SocketShutdown.Send); } catch (Exception) { }
                        long until = Now() + CloseGraceMs;
                        while (!_connDead && Now() < until) Monitor.Wait(_lock, (int)Math.Max(1, until - Now()));
                        return null;
                    }
                }
            }
        }

        ObserverioError Write(Socket s, List<string> lines)
        {
            if (lines.Count == 0) return null;
            var sb = new StringBuilder();
            foreach (var l in lines) sb.Append(l).Append('\n');
            byte[] bytes = Codec.Utf8.GetBytes(sb.ToString());
            try
            {
                int off = 0;
                while (off < bytes.Length)
                {
                    int n = s.Send(bytes, off, bytes.Length - off, SocketFlags.None);
                    if (n <= 0) throw new SocketException((int)SocketError.ConnectionReset);
                    off += n;
                }
                lock (_lock) _lastWriteAt = Now();
                return null;
            }
            catch (Exception e)
            {
                lock (_lock)
                {
                    _connDead = true;
                    if (_closeRequested) return null;
                }
                return new ObserverioError("connection_error", "writing to " + Where() + " failed: " + e.Message, false, e);
            }
        }

        void ReadLoop(Socket s, int conn)
        {
            var buf = new byte[16384];
            var line = new List<byte>(256);
            bool overlong = false;
            try
            {
                while (true)
                {
                    int n = s.Receive(buf);
                    if (n <= 0) break;
                    for (int i = 0; i < n; i++)
                    {
                        byte b = buf[i];
                        if (b != (byte)'\n')
                        {
                            if (overlong) continue;
                            if (line.Count >= _o.MaxLineBytes)
                            {
                                overlong = true;
                                line.Clear();
                                continue;
                            }
                            line.Add(b);
                            continue;
                        }
                        if (overlong)
                        {
                            overlong = false;
                            lock (_lock) Fail(new ObserverioError("line_too_long", "the daemon sent a line over MaxLineBytes " + _o.MaxLineBytes));
                        }
                        else
                        {
                            string text = Codec.Utf8.GetString(line.ToArray()).Trim();
                            if (text.Length > 0 && !OnLine(conn, text)) return;
                        }
                        line.Clear();
                        AfterEnqueue();
                    }
                }
            }
            catch (Exception)
            {
                // The socket broke or was closed under us: the connection thread decides what follows.
            }
            finally
            {
                lock (_lock)
                {
                    if (_connId == conn)
                    {
                        _connDead = true;
                        Monitor.PulseAll(_lock);
                    }
                }
                AfterEnqueue();
            }
        }

        /// <summary>Handles one daemon line; false once this connection is over.</summary>
        bool OnLine(int conn, string text)
        {
            ServerLine msg = Codec.DecodeServerLine(text);
            lock (_lock)
            {
                if (_connId != conn || _connDead) return false;
                switch (msg.Kind)
                {
                    case ServerLineKind.Ok:
                        // A second OK (to a repeated v:) changes nothing.
                        if (!_verified)
                        {
                            _verified = true;
                            Monitor.PulseAll(_lock);
                        }
                        return true;
                    case ServerLineKind.Error:
                        var err = new ObserverioError(msg.Code, msg.Message.Length > 0 ? msg.Message : msg.Code, true);
                        if (!_verified)
                        {
                            // A refused v: (unknown key, busy, unavailable): give this connection up and retry later.
                            _connError = err;
                            _connDead = true;
                            Fail(err);
                            Monitor.PulseAll(_lock);
                            return false;
                        }
                        if (msg.Code == "unknown_command" && _labelsSentOnConn)
                        {
                            // The only line this SDK sends that a daemon may not know is d:: no labels there.
                            if (_labelsSupported != false) Trace("the daemon does not know d: (labels); carrying on without labels");
                            _labelsSupported = false;
                            return true;
                        }
                        Fail(err);
                        return true;
                    case ServerLineKind.Vars:
                        if (msg.ApiKey != _apiKey) Fail(new ObserverioError("bad_server_line", "the daemon sent variables for another API key"));
                        else ApplyRemote(msg.Vars);
                        return true;
                    case ServerLineKind.Invalid:
                        Fail(new ObserverioError("bad_server_line", "cannot decode a line from the daemon: " + msg.Message));
                        return true;
                    default:
                        // Extensions are additive: a newer daemon may send lines this SDK does not know.
                        return true;
                }
            }
        }

        // --- state changes (under _lock) --------------------------------------------------------------

        void ApplyLocal(WireVar v)
        {
            _vars.Set(v.Name, v);
            // Offline nothing is pending: every variable is re-sent after the next OK.
            if (_state != ClientState.Online) return;
            _pending.Set(v.Name, v);
            if (_varsDueAt < 0) _varsDueAt = Now() + _o.VarsWindowMs;
            Monitor.PulseAll(_lock);
        }

        void ApplyRemote(List<WireVar> vars)
        {
            var changes = new List<VarChange>();
            foreach (var v in vars)
            {
                WireVar prev;
                bool had = _vars.TryGet(v.Name, out prev);
                _vars.Set(v.Name, v);
                bool differs = !had || prev.Value != v.Value || prev.Type != v.Type;
                // The dashboard's value arrived last, so it wins over a local change not sent yet; the same
                // value again (the daemon re-sends an override that crossed a report) keeps its confirmation
                // waiting, or the daemon's last report of this device would stay the old value.
                WireVar waiting;
                bool same = _pending.TryGet(v.Name, out waiting) && waiting.Value == v.Value && waiting.Type == v.Type;
                if (_o.ConfirmRemoteVars && differs && _state == ClientState.Online)
                {
                    _pending.Set(v.Name, v);
                    if (_varsDueAt < 0) _varsDueAt = Now() + _o.VarsWindowMs;
                }
                else if (!same) _pending.Remove(v.Name);
                changes.Add(new VarChange(v.Name, v.Type, v.Typed, v.Value, had ? prev.Typed : null));
            }
            if (_pending.Count > 0) Monitor.PulseAll(_lock);
            if (changes.Count == 0) return;
            IReadOnlyList<VarChange> all = changes.AsReadOnly();
            Enqueue(() =>
            {
                foreach (var c in all) RaiseChange(c);
                Raise(OnChanges, all, "OnChanges");
            });
        }

        bool SetLabelsLocked(IDictionary<string, string> labels)
        {
            var sorted = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var kv in labels)
            {
                if (kv.Key == null) return Refuse(new ObserverioError("bad_label", "a label key is null"), true);
                sorted[kv.Key] = kv.Value;
            }
            var asObjects = new List<KeyValuePair<string, object>>();
            foreach (var kv in sorted) asObjects.Add(new KeyValuePair<string, object>(kv.Key, kv.Value));
            string why = Codec.CheckLabels(asObjects);
            if (why != null) return Refuse(new ObserverioError("bad_label", why), true);
            _labels = sorted;
            return true;
        }

        void AddVarLines(List<string> lines, IEnumerable<WireVar> vars)
        {
            var parts = new List<string>();
            int bytes = 2;
            foreach (var v in vars)
            {
                string json = v.JsonText;
                int size = Codec.Utf8.GetByteCount(json) + 1;
                if (parts.Count > 0 && bytes + size > _jsonBudget)
                {
                    lines.Add(Codec.EncodeVarsJson(_apiKey, parts));
                    parts.Clear();
                    bytes = 2;
                }
                parts.Add(json);
                bytes += size;
            }
            if (parts.Count > 0) lines.Add(Codec.EncodeVarsJson(_apiKey, parts));
        }

        void AddLogLines(List<string> lines)
        {
            while (_logs.Count > 0)
            {
                var parts = new List<string>();
                int bytes = 2;
                while (_logs.Count > 0 && parts.Count < Math.Max(1, _o.LogBatchSize))
                {
                    string next = _logs.Peek();
                    int size = Codec.Utf8.GetByteCount(next) + 1;
                    if (parts.Count > 0 && bytes + size > _jsonBudget) break;
                    parts.Add(_logs.Dequeue());
                    bytes += size;
                }
                lines.Add(Codec.EncodeLogsJson(_apiKey, parts));
            }
            _logsDueAt = -1;
        }

        void CloseSocketLocked()
        {
            Socket s = _socket;
            _socket = null;
            if (s == null) return;
            try { s.Close(); } catch (Exception) { }
        }

        // --- events --------------------------------------------------------------------------------

        /// <summary>Records an error and queues OnError; under _lock.</summary>
        void Fail(ObserverioError err)
        {
            _lastError = err;
            Trace(err.ToString());
            Enqueue(() => Raise(OnError, err, "OnError"));
        }

        bool Refuse(ObserverioError err, bool locked = false)
        {
            if (locked) _lastError = err;
            else lock (_lock) _lastError = err;
            return false;
        }

        /// <summary>Queues an event; under _lock. AfterEnqueue (outside the lock) gets it delivered.</summary>
        void Enqueue(Action a)
        {
            int max = Math.Max(1, _o.MaxQueuedEvents);
            while (_events.Count >= max)
            {
                _events.Dequeue();
                _droppedEvents++;
            }
            _events.Enqueue(a);
        }

        /// <summary>Delivers queued events when the game did not ask for Poll(); called without _lock held.</summary>
        void AfterEnqueue()
        {
            SynchronizationContext ctx = _o.SynchronizationContext;
            if (ctx != null)
            {
                lock (_lock)
                {
                    if (_postPending || _events.Count == 0) return;
                    _postPending = true;
                }
                try
                {
                    ctx.Post(_ =>
                    {
                        lock (_lock) _postPending = false;
                        Poll();
                    }, null);
                }
                catch (Exception)
                {
                    lock (_lock) _postPending = false;
                }
            }
            else if (_o.Dispatch == DispatchMode.Immediate) Poll();
        }

        void RaiseChange(VarChange c)
        {
            Action<string, object> h = OnChange;
            if (h == null) return;
            foreach (Action<string, object> one in h.GetInvocationList())
            {
                try { one(c.Name, c.Value); }
                catch (Exception e) { HandlerFailed("OnChange", e); }
            }
        }

        void Raise<T>(Action<T> handlers, T arg, string which)
        {
            if (handlers == null) return;
            foreach (Action<T> one in handlers.GetInvocationList())
            {
                try { one(arg); }
                catch (Exception e)
                {
                    // An OnError handler that throws is not reported again, or it would loop.
                    if (which != "OnError") HandlerFailed(which, e);
                }
            }
        }

        void HandlerFailed(string which, Exception e)
        {
            lock (_lock) Fail(new ObserverioError("listener_error", "an event handler (" + which + ") threw: " + e.Message, false, e));
        }

        // --- helpers -------------------------------------------------------------------------------

        static ObserverioError CheckOptions(ObserverioOptions o)
        {
            string why = Codec.CheckApiKey(o.ApiKey);
            if (why != null) return new ObserverioError("bad_api_key", why);
            if (!string.IsNullOrEmpty(o.DeviceId) && (why = Codec.CheckDeviceId(o.DeviceId)) != null) return new ObserverioError("bad_device_id", why);
            if (string.IsNullOrEmpty(o.Host)) return new ObserverioError("bad_option", "Host must not be empty");
            if (o.Port < 1 || o.Port > 65535) return new ObserverioError("bad_option", "Port must be within 1..65535");
            if (o.LogBatchSize < 1) return new ObserverioError("bad_option", "LogBatchSize must be >= 1");
            if (o.LogIntervalMs < 0 || o.VarsWindowMs < 0 || o.HeartbeatMs < 0 || o.OfflineLogLimit < 0 || o.CloseTimeoutMs < 0)
                return new ObserverioError("bad_option", "LogIntervalMs, VarsWindowMs, HeartbeatMs, OfflineLogLimit and CloseTimeoutMs must be >= 0");
            if (o.ConnectTimeoutMs < 1) return new ObserverioError("bad_option", "ConnectTimeoutMs must be >= 1");
            if (o.MaxLineBytes < 256) return new ObserverioError("bad_option", "MaxLineBytes must be >= 256");
            if (o.ReconnectInitialMs < 1 || o.ReconnectMaxMs < o.ReconnectInitialMs || !(o.ReconnectFactor >= 1) || !(o.ReconnectJitter >= 0 && o.ReconnectJitter <= 1) || o.ReconnectStableMs < 0)
                return new ObserverioError("bad_option", "reconnect options: InitialMs >= 1, MaxMs >= InitialMs, Factor >= 1, Jitter within 0..1, StableMs >= 0");
            return null;
        }

        string Where() { return _o.Host + ":" + _o.Port; }

        void Trace(string message)
        {
            Action<string> logger = _o.Logger;
            if (logger == null) return;
            try { logger("observerio: " + message); }
            catch (Exception) { }
        }

        static readonly Stopwatch Clock = Stopwatch.StartNew();
        static long Now() { return Clock.ElapsedMilliseconds; }
        static readonly DateTime Epoch = new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        static double NowEpochMs() { return Math.Floor((DateTime.UtcNow - Epoch).TotalMilliseconds); }
    }

    /// <summary>A variable as the wire carries it, with its typed value and JSON computed once.</summary>
    internal sealed class WireVar
    {
        public readonly string Name;
        public readonly string Type;
        public readonly string Value;
        public readonly object Typed;
        public readonly string JsonText;

        public WireVar(string name, string type, string value)
        {
            Name = name;
            Type = type;
            Value = value;
            Typed = Codec.TypedValue(type, value);
            var sb = new StringBuilder();
            sb.Append("{\"name\":");
            Json.WriteString(sb, name);
            sb.Append(",\"type\":");
            Json.WriteString(sb, type);
            sb.Append(",\"value\":");
            Json.WriteString(sb, value);
            sb.Append('}');
            JsonText = sb.ToString();
        }
    }

    /// <summary>A string-keyed map that remembers insertion order; small, for the client's variables.</summary>
    internal sealed class OrderedMap<T>
    {
        readonly Dictionary<string, LinkedListNode<T>> _index = new Dictionary<string, LinkedListNode<T>>(StringComparer.Ordinal);
        readonly LinkedList<T> _order = new LinkedList<T>();

        public int Count { get { return _index.Count; } }
        public IEnumerable<T> Values { get { return _order; } }

        public void Set(string key, T value)
        {
            LinkedListNode<T> node;
            if (_index.TryGetValue(key, out node)) node.Value = value;
            else _index[key] = _order.AddLast(value);
        }

        public bool TryGet(string key, out T value)
        {
            LinkedListNode<T> node;
            if (_index.TryGetValue(key, out node))
            {
                value = node.Value;
                return true;
            }
            value = default(T);
            return false;
        }

        public void Remove(string key)
        {
            LinkedListNode<T> node;
            if (!_index.TryGetValue(key, out node)) return;
            _index.Remove(key);
            _order.Remove(node);
        }

        public void Clear()
        {
            _index.Clear();
            _order.Clear();
        }
    }

    internal enum ServerLineKind { Ok, Error, Vars, Invalid, Unknown }

    /// <summary>What one daemon line means.</summary>
    internal sealed class ServerLine
    {
        public ServerLineKind Kind;
        public string Code = "";
        /// <summary>The error's text, or why an invalid line is broken.</summary>
        public string Message = "";
        public string ApiKey;
        public List<WireVar> Vars;
    }

    /// <summary>The SDK's side of the wire protocol (docs/PROTOCOL.md), as the TypeScript SDK's src/sdk/codec.ts.</summary>
    internal static class Codec
    {
        public static readonly UTF8Encoding Utf8 = new UTF8Encoding(false, false);
        public const int MaxVarName = 128;
        public const int MaxVarType = 32;
        public const int CommandPrefixBytes = 15;
        public const string EmptyArrayB64 = "W10=";
        public const int MaxLabels = 32;
        public const int MaxLabelValue = 128;

        static bool IsAlnum(char c) { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'; }
        static bool IsControl(char c) { return c <= '\u001f' || c == '\u007f'; }

        // JavaScript's String.prototype.trim() white space: Unicode spaces, line terminators and the BOM.
        static bool IsJsSpace(char c) { return char.IsWhiteSpace(c) || c == '\uFEFF'; }

        static bool HasControl(string s)
        {
            foreach (char c in s) if (IsControl(c)) return true;
            return false;
        }

        /// <summary>Null when the key has the daemon's format, else why not.</summary>
        public static string CheckApiKey(string key)
        {
            if (key == null || key.Length != 12) return "API key must be exactly 12 characters of [A-Za-z0-9]";
            foreach (char c in key) if (!IsAlnum(c)) return "API key must be exactly 12 characters of [A-Za-z0-9]";
            return null;
        }

        public static string CheckDeviceId(string id)
        {
            const string why = "device id must be 1-64 characters of [A-Za-z0-9._-]";
            if (id == null || id.Length < 1 || id.Length > 64) return why;
            foreach (char c in id) if (!IsAlnum(c) && c != '.' && c != '_' && c != '-') return why;
            return null;
        }

        /// <summary>Null when the labels are what the daemon accepts in d: (docs/PROTOCOL.md §13), else why not.</summary>
        public static string CheckLabels(ICollection<KeyValuePair<string, object>> labels)
        {
            if (labels.Count > MaxLabels) return "at most " + MaxLabels + " labels, got " + labels.Count;
            foreach (var kv in labels)
            {
                string k = kv.Key ?? "";
                bool keyOk = k.Length >= 1 && k.Length <= 63 && (k[0] >= 'A' && k[0] <= 'Z' || k[0] >= 'a' && k[0] <= 'z');
                if (keyOk) foreach (char c in k) if (!IsAlnum(c) && c != '.' && c != '_' && c != '-') keyOk = false;
                if (!keyOk) return "label key " + Quote(k) + " must be 1-63 characters of [A-Za-z0-9._-] starting with a letter";
                var v = kv.Value as string;
                if (v == null) return "label " + k + " must have a string value";
                if (v.Length < 1 || v.Length > MaxLabelValue) return "label " + k + " must have a value of 1-" + MaxLabelValue + " characters";
                if (HasControl(v) || v.IndexOf(',') >= 0 || v.IndexOf('=') >= 0 || v.IndexOf('*') >= 0)
                    return "label " + k + " has a control character or one of , = * in its value";
                if (IsJsSpace(v[0]) || IsJsSpace(v[v.Length - 1])) return "label " + k + " has white space around its value";
            }
            var pairs = new List<KeyValuePair<string, string>>();
            foreach (var kv in labels) pairs.Add(new KeyValuePair<string, string>(kv.Key, (string)kv.Value));
            int b64 = (Utf8.GetByteCount(LabelsJson(pairs)) + 2) / 3 * 4;
            if (b64 > ObserverioClient.MaxLabelsPayload) return "labels take " + b64 + " characters of base64, over " + ObserverioClient.MaxLabelsPayload;
            return null;
        }

        static string Quote(string s)
        {
            var sb = new StringBuilder();
            Json.WriteString(sb, s.Length > 64 ? s.Substring(0, 64) : s);
            return sb.ToString();
        }

        /// <summary>Null when a variable is one the daemon accepts (name, type, value of §3), else why not.</summary>
        public static string CheckVar(object name, object type, object value)
        {
            var n = name as string;
            if (n == null || n.Length == 0 || n.Length > MaxVarName || HasControl(n))
                return "variable name must be 1-" + MaxVarName + " printable characters";
            var t = type as string;
            if (t == null || t.Length == 0 || t.Length > MaxVarType || HasControl(t))
                return "variable " + n + ": type must be 1-" + MaxVarType + " printable characters";
            if (value == null) return "variable " + n + ": value must be a number, boolean or string, not null";
            if (IsFloating(value) && !IsFinite(value)) return "variable " + n + ": " + value + " is not a finite number";
            if (!(value is string || value is bool || value is char || IsInteger(value) || IsFloating(value)))
                return "variable " + n + ": value must be a number, boolean or string, not " + value.GetType().Name;
            return null;
        }

        public static bool IsInteger(object v)
        {
            return v is int || v is long || v is short || v is sbyte || v is byte || v is ushort || v is uint || v is ulong;
        }

        public static bool IsFloating(object v) { return v is double || v is float || v is decimal; }

        static bool IsFinite(object v)
        {
            if (v is double) return !double.IsNaN((double)v) && !double.IsInfinity((double)v);
            if (v is float) return !float.IsNaN((float)v) && !float.IsInfinity((float)v);
            return true;
        }

        /// <summary>The type the SDK infers from a value's CLR type (never from the value: 800.0 is a float).</summary>
        public static string InferType(object value)
        {
            if (value is bool) return "boolean";
            if (IsInteger(value)) return "integer";
            if (IsFloating(value)) return "float";
            return "string";
        }

        /// <summary>A value's text on the wire: JavaScript's String(value) for numbers and booleans.</summary>
        public static string WireText(object value)
        {
            if (value is string) return (string)value;
            if (value is char) return value.ToString();
            if (value is bool) return (bool)value ? "true" : "false";
            if (value is float) return FormatFloat((float)value);
            if (value is double) return FormatNumber((double)value);
            if (value is decimal) return FormatNumber((double)(decimal)value);
            return Convert.ToString(value, CultureInfo.InvariantCulture);
        }

        /// <summary>The wire form of a game's variable, or why the daemon would refuse it.</summary>
        public static ObserverioError ToWireVar(string name, object value, string type, int jsonBudget, out WireVar wire)
        {
            wire = null;
            string why = CheckVar(name, type ?? (value == null ? "string" : InferType(value)), value);
            if (why != null) return new ObserverioError("bad_var", why);
            wire = new WireVar(name, type ?? InferType(value), WireText(value));
            if (Utf8.GetByteCount(wire.JsonText) + 2 > jsonBudget)
            {
                wire = null;
                return new ObserverioError("bad_var", "variable " + name + " does not fit in one line");
            }
            return null;
        }

        /// <summary>A log entry's JSON, {message, level, timestamp, ...fields}, or why the daemon would refuse it.</summary>
        public static ObserverioError LogJson(string message, string level, IDictionary<string, object> fields, double nowMs, int jsonBudget, out string json)
        {
            json = null;
            object ts = nowMs;
            if (fields != null && fields.ContainsKey("timestamp")) ts = fields["timestamp"];
            string why = CheckLog(message, level ?? "info", ts);
            if (why != null) return new ObserverioError("bad_log", "log dropped: " + why);
            var entry = new List<KeyValuePair<string, object>>();
            entry.Add(new KeyValuePair<string, object>("message", message));
            entry.Add(new KeyValuePair<string, object>("level", level ?? "info"));
            entry.Add(new KeyValuePair<string, object>("timestamp", ts));
            if (fields != null)
                foreach (var kv in fields)
                    if (kv.Key != null && kv.Key != "message" && kv.Key != "level" && kv.Key != "timestamp") entry.Add(kv);
            var sb = new StringBuilder();
            try
            {
                Json.Write(sb, entry, 0);
            }
            catch (Exception e)
            {
                return new ObserverioError("bad_log", "log dropped: fields are not serializable (" + e.Message + ")", false, e);
            }
            json = sb.ToString();
            int bytes = Utf8.GetByteCount(json);
            if (bytes + 2 > jsonBudget)
            {
                json = null;
                return new ObserverioError("bad_log", "log dropped: entry of " + bytes + " bytes does not fit in one line");
            }
            return null;
        }

        /// <summary>Null when a log entry's fixed fields are what the daemon accepts (§3), else why not. The SDK always sends all three.</summary>
        public static string CheckLog(object message, object level, object timestamp)
        {
            if (!(message is string)) return "message must be a string";
            if (!(level is string)) return "level must be a string";
            if (timestamp == null || !((IsInteger(timestamp) || IsFloating(timestamp)) && IsFinite(timestamp))) return "timestamp must be a finite number";
            return null;
        }

        /// <summary>
        /// A wire value read by its type (docs/PROTOCOL.md §4): integer/int → long (double if not whole),
        /// float/double/number → double, boolean/bool → bool (true/false/1/0); anything else, and a value that
        /// does not parse as its type, is the string.
        /// </summary>
        public static object TypedValue(string type, string value)
        {
            switch ((type ?? "").ToLowerInvariant())
            {
                case "integer":
                case "int":
                {
                    double d;
                    if (!TryParseJsNumber(value, out d)) return value;
                    if (Math.Floor(d) == d && d >= -9.2233720368547758E18 && d < 9.2233720368547758E18) return (long)d;
                    return d;
                }
                case "float":
                case "double":
                case "number":
                {
                    double d;
                    return TryParseJsNumber(value, out d) ? (object)d : value;
                }
                case "boolean":
                case "bool":
                {
                    string t = value.Trim().ToLowerInvariant();
                    if (t == "true" || t == "1") return true;
                    if (t == "false" || t == "0") return false;
                    return value;
                }
                default:
                    return value;
            }
        }

        /// <summary>JavaScript's Number(text) for finite results: decimal with exponent, 0x/0o/0b integers; false otherwise.</summary>
        public static bool TryParseJsNumber(string text, out double d)
        {
            d = 0;
            string t = text.Trim();
            if (t.Length == 0) return false;
            if (t.Length > 2 && t[0] == '0' && "xXoObB".IndexOf(t[1]) >= 0)
            {
                int radix = t[1] == 'x' || t[1] == 'X' ? 16 : t[1] == 'o' || t[1] == 'O' ? 8 : 2;
                double acc = 0;
                for (int i = 2; i < t.Length; i++)
                {
                    int digit = HexDigit(t[i]);
                    if (digit < 0 || digit >= radix) return false;
                    acc = acc * radix + digit;
                }
                d = acc;
                return !double.IsInfinity(d);
            }
            int p = 0;
            if (t[p] == '+' || t[p] == '-') p++;
            int intDigits = 0, fracDigits = 0;
            while (p < t.Length && t[p] >= '0' && t[p] <= '9') { p++; intDigits++; }
            if (p < t.Length && t[p] == '.')
            {
                p++;
                while (p < t.Length && t[p] >= '0' && t[p] <= '9') { p++; fracDigits++; }
            }
            if (intDigits + fracDigits == 0) return false;
            if (p < t.Length && (t[p] == 'e' || t[p] == 'E'))
            {
                p++;
                if (p < t.Length && (t[p] == '+' || t[p] == '-')) p++;
                int expDigits = 0;
                while (p < t.Length && t[p] >= '0' && t[p] <= '9') { p++; expDigits++; }
                if (expDigits == 0) return false;
            }
            if (p != t.Length) return false;
            if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out d)) return false;
            return !double.IsNaN(d) && !double.IsInfinity(d);
        }

        static int HexDigit(char c)
        {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            return -1;
        }

        /// <summary>JavaScript's String(number): the shortest digits that read back, in JS's fixed or exponent form.</summary>
        public static string FormatNumber(double d)
        {
            if (double.IsNaN(d)) return "NaN";
            if (double.IsInfinity(d)) return d > 0 ? "Infinity" : "-Infinity";
            if (d == 0) return "0";
            string r = null;
            // 15 digits rounded and stripped of trailing zeros are the shortest form whenever 15 suffice,
            // except for subnormals, whose few significant bits may need fewer digits than that.
            for (int precision = Math.Abs(d) < 2.2250738585072014E-308 ? 1 : 15; precision <= 17; precision++)
            {
                r = d.ToString("E" + (precision - 1), CultureInfo.InvariantCulture);
                double back;
                if (double.TryParse(r, NumberStyles.Float, CultureInfo.InvariantCulture, out back) && back == d) break;
            }
            return JsForm(r);
        }

        /// <summary>A float as the game wrote it: its shortest round-tripping digits (0.1f is "0.1", not 0.10000000149...).</summary>
        public static string FormatFloat(float f)
        {
            if (float.IsNaN(f) || float.IsInfinity(f)) return FormatNumber(f);
            if (f == 0) return "0";
            string r = null;
            for (int precision = Math.Abs(f) < 1.17549435E-38f ? 1 : 6; precision <= 9; precision++)
            {
                r = f.ToString("E" + (precision - 1), CultureInfo.InvariantCulture);
                float back;
                if (float.TryParse(r, NumberStyles.Float, CultureInfo.InvariantCulture, out back) && back == f) break;
            }
            return JsForm(r);
        }

        /// <summary>"-d.dddE+xxx" to JavaScript's Number.prototype.toString form (ECMA-262 Number::toString).</summary>
        static string JsForm(string e)
        {
            bool neg = e[0] == '-';
            if (neg) e = e.Substring(1);
            int ePos = e.IndexOf('E');
            string digits = e.Substring(0, ePos).Replace(".", "").TrimEnd('0');
            if (digits.Length == 0) digits = "0";
            int exp = int.Parse(e.Substring(ePos + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            int k = digits.Length;
            int n = exp + 1;
            var sb = new StringBuilder();
            if (neg) sb.Append('-');
            if (k <= n && n <= 21) sb.Append(digits).Append('0', n - k);
            else if (0 < n && n <= 21) sb.Append(digits, 0, n).Append('.').Append(digits, n, k - n);
            else if (-6 < n && n <= 0) sb.Append("0.").Append('0', -n).Append(digits);
            else
            {
                sb.Append(digits[0]);
                if (k > 1) sb.Append('.').Append(digits, 1, k - 1);
                sb.Append('e').Append(n - 1 >= 0 ? "+" : "-").Append(Math.Abs(n - 1).ToString(CultureInfo.InvariantCulture));
            }
            return sb.ToString();
        }

        /// <summary>Bytes of JSON that fit in one l:/i: line of at most maxLineBytes (base64 grows 3 → 4).</summary>
        public static int JsonBudget(int maxLineBytes) { return (maxLineBytes - CommandPrefixBytes) / 4 * 3; }

        /// <summary>Exponential from initialMs by factor, capped at maxMs, spread by ±jitter (random in [0, 1)).</summary>
        public static int BackoffDelay(int failures, int initialMs, int maxMs, double factor, double jitter, double random)
        {
            double b = Math.Min(maxMs, initialMs * Math.Pow(factor, Math.Min(failures, 64)));
            double spread = b * jitter * (2 * random - 1);
            return (int)Math.Max(0, Math.Min(maxMs, Math.Round(b + spread)));
        }

        public static string EncodePayload(string json) { return Convert.ToBase64String(Utf8.GetBytes(json)); }

        public static string EncodeVerify(string apiKey, string deviceId)
        {
            return string.IsNullOrEmpty(deviceId) ? "v:" + apiKey : "v:" + apiKey + ":" + deviceId;
        }

        public static string EncodeVars(string apiKey, IEnumerable<WireVar> vars)
        {
            var parts = new List<string>();
            foreach (var v in vars) parts.Add(v.JsonText);
            return EncodeVarsJson(apiKey, parts);
        }

        public static string EncodeVarsJson(string apiKey, List<string> parts)
        {
            return "i:" + apiKey + ":" + EncodePayload("[" + string.Join(",", parts.ToArray()) + "]");
        }

        public static string EncodeLogsJson(string apiKey, List<string> parts)
        {
            return "l:" + apiKey + ":" + EncodePayload("[" + string.Join(",", parts.ToArray()) + "]");
        }

        /// <summary>Labels as the d: payload's JSON object, in the given order (the client sorts keys, ordinal).</summary>
        public static string LabelsJson(IEnumerable<KeyValuePair<string, string>> labels)
        {
            var sb = new StringBuilder("{");
            bool first = true;
            foreach (var kv in labels)
            {
                if (!first) sb.Append(',');
                first = false;
                Json.WriteString(sb, kv.Key);
                sb.Append(':');
                Json.WriteString(sb, kv.Value);
            }
            return sb.Append('}').ToString();
        }

        public static string EncodeLabels(string apiKey, IEnumerable<KeyValuePair<string, string>> labels)
        {
            return "d:" + apiKey + ":" + EncodePayload(LabelsJson(labels));
        }

        /// <summary>Decodes one daemon line (framed and trimmed).</summary>
        public static ServerLine DecodeServerLine(string line)
        {
            if (line == "OK") return new ServerLine { Kind = ServerLineKind.Ok };
            if (line.StartsWith("e:", StringComparison.Ordinal))
            {
                string rest = line.Substring(2);
                int sep = rest.IndexOf(':');
                string code = sep < 0 ? rest : rest.Substring(0, sep);
                if (code.Length == 0) return new ServerLine { Kind = ServerLineKind.Invalid, Message = "error line without a code" };
                return new ServerLine { Kind = ServerLineKind.Error, Code = code, Message = sep < 0 ? "" : rest.Substring(sep + 1) };
            }
            if (line.StartsWith("v:", StringComparison.Ordinal))
            {
                string rest = line.Substring(2);
                int sep = rest.IndexOf(':');
                string apiKey = sep < 0 ? rest : rest.Substring(0, sep);
                if (sep < 0 || CheckApiKey(apiKey) != null)
                    return new ServerLine { Kind = ServerLineKind.Invalid, Message = "expected v:<apiKey>:<base64 JSON array>" };
                string why;
                List<WireVar> vars = DecodeVarsPayload(rest.Substring(sep + 1), out why);
                if (vars == null) return new ServerLine { Kind = ServerLineKind.Invalid, Message = why };
                return new ServerLine { Kind = ServerLineKind.Vars, ApiKey = apiKey, Vars = vars };
            }
            return new ServerLine { Kind = ServerLineKind.Unknown, Message = line };
        }

        /// <summary>The variables of a v: payload, or null and why it is broken. Number and boolean values are read as their JS text, like the daemon does.</summary>
        public static List<WireVar> DecodeVarsPayload(string b64, out string why)
        {
            why = null;
            byte[] bytes = DecodeBase64(b64);
            if (bytes == null)
            {
                why = "payload is not valid base64";
                return null;
            }
            object value;
            if (!Json.TryParse(Utf8.GetString(bytes), out value))
            {
                why = "payload is not valid JSON";
                return null;
            }
            var list = value as List<object>;
            if (list == null)
            {
                why = "payload is not a JSON array";
                return null;
            }
            var vars = new List<WireVar>();
            foreach (var item in list)
            {
                var o = item as JsonObject;
                if (o == null)
                {
                    why = "a variable is not an object";
                    return null;
                }
                var name = o.Get("name") as string;
                var type = o.Get("type") as string;
                object v = o.Get("value");
                if (string.IsNullOrEmpty(name)) { why = "a variable has no name"; return null; }
                if (type == null) { why = "variable " + name + " has no type"; return null; }
                string text;
                if (v is string) text = (string)v;
                else if (v is bool) text = (bool)v ? "true" : "false";
                else if (v is double && !double.IsNaN((double)v) && !double.IsInfinity((double)v)) text = FormatNumber((double)v);
                else { why = "variable " + name + " has no string, number or boolean value"; return null; }
                vars.Add(new WireVar(name, type, text));
            }
            return vars;
        }

        /// <summary>
        /// Standard base64 as the daemon reads it: padding optional, trailing bits ignored; null for an empty
        /// payload, a length of 4n+1, or a character outside A-Z a-z 0-9 + / (or = anywhere but the end).
        /// </summary>
        public static byte[] DecodeBase64(string s)
        {
            if (s == null || s.Length == 0 || s.Length % 4 == 1) return null;
            int end = s.Length;
            int pad = 0;
            while (end > 0 && s[end - 1] == '=' && pad < 2) { end--; pad++; }
            var out_ = new List<byte>(end * 3 / 4);
            int acc = 0, bits = 0;
            for (int i = 0; i < end; i++)
            {
                int v = B64Value(s[i]);
                if (v < 0) return null;
                acc = (acc << 6) | v;
                bits += 6;
                if (bits >= 8)
                {
                    bits -= 8;
                    out_.Add((byte)((acc >> bits) & 0xff));
                }
            }
            return out_.ToArray();
        }

        static int B64Value(char c)
        {
            if (c >= 'A' && c <= 'Z') return c - 'A';
            if (c >= 'a' && c <= 'z') return c - 'a' + 26;
            if (c >= '0' && c <= '9') return c - '0' + 52;
            if (c == '+') return 62;
            if (c == '/') return 63;
            return -1;
        }
    }

    /// <summary>A JSON object as read: keys in document order, a repeated key keeps its first place and its last value (as JSON.parse).</summary>
    internal sealed class JsonObject : ICollection<KeyValuePair<string, object>>
    {
        readonly List<KeyValuePair<string, object>> _items = new List<KeyValuePair<string, object>>();
        readonly Dictionary<string, int> _index = new Dictionary<string, int>(StringComparer.Ordinal);

        public int Count { get { return _items.Count; } }
        public bool IsReadOnly { get { return false; } }

        public object Get(string key)
        {
            int i;
            return _index.TryGetValue(key, out i) ? _items[i].Value : null;
        }

        public bool Has(string key) { return _index.ContainsKey(key); }

        public void Set(string key, object value)
        {
            int i;
            if (_index.TryGetValue(key, out i)) _items[i] = new KeyValuePair<string, object>(key, value);
            else
            {
                _index[key] = _items.Count;
                _items.Add(new KeyValuePair<string, object>(key, value));
            }
        }

        public void Add(KeyValuePair<string, object> item) { Set(item.Key, item.Value); }
        public void Clear() { _items.Clear(); _index.Clear(); }
        public bool Contains(KeyValuePair<string, object> item) { return _index.ContainsKey(item.Key); }
        public void CopyTo(KeyValuePair<string, object>[] array, int at) { _items.CopyTo(array, at); }
        public bool Remove(KeyValuePair<string, object> item) { throw new NotSupportedException(); }
        public IEnumerator<KeyValuePair<string, object>> GetEnumerator() { return _items.GetEnumerator(); }
        IEnumerator IEnumerable.GetEnumerator() { return _items.GetEnumerator(); }
    }

    /// <summary>
    /// A small JSON reader and writer with JavaScript's semantics (numbers are doubles, JSON.stringify's
    /// escapes and number format), so what this SDK writes is byte for byte what the TypeScript SDK writes.
    /// </summary>
    internal static class Json
    {
        const int MaxDepth = 64;

        /// <summary>Parses a whole document: null, bool, double, string, List&lt;object&gt; or JsonObject.</summary>
        public static bool TryParse(string text, out object value)
        {
            value = null;
            try
            {
                int p = 0;
                value = ReadValue(text, ref p, 0);
                SkipWs(text, ref p);
                return p == text.Length;
            }
            catch (FormatException)
            {
                value = null;
                return false;
            }
        }

        static void SkipWs(string s, ref int p)
        {
            while (p < s.Length && (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r')) p++;
        }

        static FormatException Bad(int p) { return new FormatException("invalid JSON at " + p); }

        static object ReadValue(string s, ref int p, int depth)
        {
            if (depth > MaxDepth) throw new FormatException("JSON nested too deep");
            SkipWs(s, ref p);
            if (p >= s.Length) throw Bad(p);
            char c = s[p];
            if (c == '{')
            {
                p++;
                var o = new JsonObject();
                SkipWs(s, ref p);
                if (p < s.Length && s[p] == '}') { p++; return o; }
                while (true)
                {
                    SkipWs(s, ref p);
                    if (p >= s.Length || s[p] != '"') throw Bad(p);
                    string key = ReadString(s, ref p);
                    SkipWs(s, ref p);
                    if (p >= s.Length || s[p] != ':') throw Bad(p);
                    p++;
                    o.Set(key, ReadValue(s, ref p, depth + 1));
                    SkipWs(s, ref p);
                    if (p < s.Length && s[p] == ',') { p++; continue; }
                    if (p < s.Length && s[p] == '}') { p++; return o; }
                    throw Bad(p);
                }
            }
            if (c == '[')
            {
                p++;
                var list = new List<object>();
                SkipWs(s, ref p);
                if (p < s.Length && s[p] == ']') { p++; return list; }
                while (true)
                {
                    list.Add(ReadValue(s, ref p, depth + 1));
                    SkipWs(s, ref p);
                    if (p < s.Length && s[p] == ',') { p++; continue; }
                    if (p < s.Length && s[p] == ']') { p++; return list; }
                    throw Bad(p);
                }
            }
            if (c == '"') return ReadString(s, ref p);
            if (Literal(s, ref p, "true")) return true;
            if (Literal(s, ref p, "false")) return false;
            if (Literal(s, ref p, "null")) return null;
            return ReadNumber(s, ref p);
        }

        static bool Literal(string s, ref int p, string word)
        {
            if (string.CompareOrdinal(s, p, word, 0, word.Length) != 0) return false;
            p += word.Length;
            return true;
        }

        static double ReadNumber(string s, ref int p)
        {
            int start = p;
            if (p < s.Length && s[p] == '-') p++;
            if (p >= s.Length) throw Bad(p);
            if (s[p] == '0') p++;
            else if (s[p] >= '1' && s[p] <= '9') while (p < s.Length && s[p] >= '0' && s[p] <= '9') p++;
            else throw Bad(p);
            if (p < s.Length && s[p] == '.')
            {
                p++;
                int d = p;
                while (p < s.Length && s[p] >= '0' && s[p] <= '9') p++;
                if (p == d) throw Bad(p);
            }
            if (p < s.Length && (s[p] == 'e' || s[p] == 'E'))
            {
                p++;
                if (p < s.Length && (s[p] == '+' || s[p] == '-')) p++;
                int d = p;
                while (p < s.Length && s[p] >= '0' && s[p] <= '9') p++;
                if (p == d) throw Bad(p);
            }
            double v;
            // JSON.parse reads 1e400 as Infinity; .NET Framework's parser refuses it.
            if (!double.TryParse(s.Substring(start, p - start), NumberStyles.Float, CultureInfo.InvariantCulture, out v))
                v = s[start] == '-' ? double.NegativeInfinity : double.PositiveInfinity;
            return v;
        }

        static string ReadString(string s, ref int p)
        {
            p++;
            var sb = new StringBuilder();
            while (true)
            {
                if (p >= s.Length) throw Bad(p);
                char c = s[p++];
                if (c == '"') return sb.ToString();
                if (c < ' ') throw Bad(p);
                if (c != '\\') { sb.Append(c); continue; }
                if (p >= s.Length) throw Bad(p);
                char e = s[p++];
                switch (e)
                {
                    case '"': sb.Append('"'); break;
                    case '\\': sb.Append('\\'); break;
                    case '/': sb.Append('/'); break;
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'n': sb.Append('\n'); break;
                    case 'r': sb.Append('\r'); break;
                    case 't': sb.Append('\t'); break;
                    case 'u':
                        if (p + 4 > s.Length) throw Bad(p);
                        int code = 0;
                        for (int i = 0; i < 4; i++)
                        {
                            int h = s[p + i] >= '0' && s[p + i] <= '9' ? s[p + i] - '0'
                                : s[p + i] >= 'a' && s[p + i] <= 'f' ? s[p + i] - 'a' + 10
                                : s[p + i] >= 'A' && s[p + i] <= 'F' ? s[p + i] - 'A' + 10 : -1;
                            if (h < 0) throw Bad(p);
                            code = code * 16 + h;
                        }
                        p += 4;
                        sb.Append((char)code);
                        break;
                    default:
                        throw Bad(p);
                }
            }
        }

        /// <summary>JSON.stringify of a string: escapes quote, backslash, control characters and lone surrogates.</summary>
        public static void WriteString(StringBuilder sb, string s)
        {
            sb.Append('"');
            for (int i = 0; i < s.Length; i++)
            {
                char c = s[i];
                switch (c)
                {
                    case '"': sb.Append("\\\""); continue;
                    case '\\': sb.Append("\\\\"); continue;
                    case '\b': sb.Append("\\b"); continue;
                    case '\f': sb.Append("\\f"); continue;
                    case '\n': sb.Append("\\n"); continue;
                    case '\r': sb.Append("\\r"); continue;
                    case '\t': sb.Append("\\t"); continue;
                }
                if (c < ' ') sb.Append("\\u").Append(((int)c).ToString("x4"));
                else if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
                {
                    sb.Append(c).Append(s[i + 1]);
                    i++;
                }
                else if (char.IsSurrogate(c)) sb.Append("\\u").Append(((int)c).ToString("x4"));
                else sb.Append(c);
            }
            sb.Append('"');
        }

        /// <summary>JSON.stringify of a value: null, bool, numbers (non-finite → null), strings, dictionaries, lists; anything else as its ToString().</summary>
        public static void Write(StringBuilder sb, object v, int depth)
        {
            if (depth > MaxDepth) throw new InvalidOperationException("fields nested deeper than " + MaxDepth);
            if (v == null) sb.Append("null");
            else if (v is string) WriteString(sb, (string)v);
            else if (v is char) WriteString(sb, v.ToString());
            else if (v is bool) sb.Append((bool)v ? "true" : "false");
            else if (v is double || v is float || v is decimal)
            {
                string text = Codec.WireText(v);
                sb.Append(text == "NaN" || text.EndsWith("Infinity", StringComparison.Ordinal) ? "null" : text);
            }
            else if (Codec.IsInteger(v)) sb.Append(Convert.ToString(v, CultureInfo.InvariantCulture));
            else if (v is IEnumerable<KeyValuePair<string, object>>)
            {
                sb.Append('{');
                bool first = true;
                foreach (var kv in (IEnumerable<KeyValuePair<string, object>>)v)
                {
                    if (kv.Key == null) continue;
                    if (!first) sb.Append(',');
                    first = false;
                    WriteString(sb, kv.Key);
                    sb.Append(':');
                    Write(sb, kv.Value, depth + 1);
                }
                sb.Append('}');
            }
            else if (v is IDictionary)
            {
                sb.Append('{');
                bool first = true;
                foreach (DictionaryEntry kv in (IDictionary)v)
                {
                    if (!first) sb.Append(',');
                    first = false;
                    WriteString(sb, Convert.ToString(kv.Key, CultureInfo.InvariantCulture));
                    sb.Append(':');
                    Write(sb, kv.Value, depth + 1);
                }
                sb.Append('}');
            }
            else if (v is IEnumerable)
            {
                sb.Append('[');
                bool first = true;
                foreach (object item in (IEnumerable)v)
                {
                    if (!first) sb.Append(',');
                    first = false;
                    Write(sb, item, depth + 1);
                }
                sb.Append(']');
            }
            else WriteString(sb, Convert.ToString(v, CultureInfo.InvariantCulture));
        }
    }
}
