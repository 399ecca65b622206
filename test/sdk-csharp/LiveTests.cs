// The C# SDK against the real daemon started by test/integration/sdk-csharp.test.ts: verify, defaults
// in the first i:, dashboard changes arriving as OnChange through Poll() on this thread, SetVar and Log
// reaching the daemon, reconnecting after the daemon closed the socket and after a restart with the
// offline queue kept, and a daemon that is down when the game starts. The daemon side is asked for
// through Driver.Call (the mocha test answers).
using System;
using System.Collections.Generic;
using System.Threading;

namespace Observerio.Tests
{
    internal static class LiveTests
    {
        static ObserverioOptions Options(string deviceId, IDictionary<string, object> defaults)
        {
            return new ObserverioOptions
            {
                Host = Environment.GetEnvironmentVariable("OBSERVERIO_HOST") ?? "127.0.0.1",
                Port = int.Parse(Environment.GetEnvironmentVariable("OBSERVERIO_PORT") ?? "4040"),
                ApiKey = Environment.GetEnvironmentVariable("OBSERVERIO_API_KEY"),
                DeviceId = deviceId,
                Defaults = defaults,
                ReconnectInitialMs = 100,
                ReconnectMaxMs = 1000,
                LogIntervalMs = 50,
                Logger = text => Console.WriteLine("# " + text),
            };
        }

        /// <summary>Events as this thread saw them, with the thread each ran on.</summary>
        sealed class Seen
        {
            public readonly List<string> Changes = new List<string>();
            public readonly List<object> Values = new List<object>();
            public readonly List<int> Threads = new List<int>();
            public readonly List<IReadOnlyList<VarChange>> Sets = new List<IReadOnlyList<VarChange>>();
            public readonly List<bool> Connected = new List<bool>();
            public readonly List<ObserverioError> Disconnected = new List<ObserverioError>();
            public readonly List<ObserverioError> Errors = new List<ObserverioError>();

            public Seen(ObserverioClient c)
            {
                c.OnChange += (name, value) =>
                {
                    Changes.Add(name);
                    Values.Add(value);
                    Threads.Add(Thread.CurrentThread.ManagedThreadId);
                };
                c.OnChanges += set => Sets.Add(set);
                c.OnConnected += Connected.Add;
                c.OnDisconnected += Disconnected.Add;
                c.OnError += Errors.Add;
            }
        }

        static JsonObject Hit(object body)
        {
            T.True(body is JsonObject, "a log hit");
            return (JsonObject)body;
        }

        public static void Live()
        {
            int main = Thread.CurrentThread.ManagedThreadId;
            var o = Options("csharp-live", new Dictionary<string, object> { { "spawn_ms", 800.0 }, { "lives", 3 }, { "god_mode", false }, { "title", "Boss 1" } });
            o.Labels = new Dictionary<string, string> { { "platform", "linux" }, { "engine", "mono" } };
            var c = ObserverioClient.Connect(o);
            var seen = new Seen(c);

            T.Test("Connect returns at once and verifies in the background", () =>
            {
                T.Eventually(c, () => seen.Connected.Count == 1, "OnConnected");
                T.Equal(false, seen.Connected[0], "not a reconnect");
                T.Equal(true, c.IsOnline, "IsOnline");
                T.Equal(ClientState.Online, c.State, "State");
            });

            T.Test("the defaults are reported with the first i: line, typed by their CLR type", () =>
            {
                Driver.Call("waitVars", "vars", new List<object>
                {
                    Driver.Var("spawn_ms", "float", "800"), Driver.Var("lives", "integer", "3"),
                    Driver.Var("god_mode", "boolean", "false"), Driver.Var("title", "string", "Boss 1"),
                });
                T.Equal(800f, c.GetFloat("spawn_ms", 0), "the default until the dashboard changes it");
            });

            T.Test("a daemon without the devices extension: d: is tolerated, the connection carries on", () =>
            {
                T.True(c.Flush(5000), "Flush");
                // The daemon answers an unknown d: at once; a round trip through the dashboard makes sure it came.
                Driver.Call("put", "name", "probe", "value", 1);
                T.Eventually(c, () => seen.Changes.Contains("probe"), "the probe change");
                T.Equal(0, seen.Errors.FindAll(e => e.Code == "unknown_command").Count, "no unknown_command through OnError");
                T.Equal(true, c.IsOnline, "still online");
                if ((bool)Driver.Call("labelsKnown")) T.True(c.LabelsSupported != false, "a daemon that knows d: is not taken for one without labels");
                else T.Equal(false, c.LabelsSupported, "LabelsSupported after e:unknown_command to d:");
            });

            T.Test("a dashboard change arrives as OnChange through Poll(), on the thread that polls", () =>
            {
                seen.Changes.Clear();
                seen.Values.Clear();
                seen.Sets.Clear();
                Driver.Call("put", "name", "spawn_ms", "value", 650.5);
                T.Eventually(c, () => seen.Changes.Contains("spawn_ms"), "OnChange spawn_ms");
                int i = seen.Changes.IndexOf("spawn_ms");
                T.Equal(650.5, seen.Values[i], "the typed value");
                T.Equal(main, seen.Threads[i], "the polling thread");
                T.Equal(650.5f, c.GetFloat("spawn_ms", 0), "GetFloat: the dashboard's value wins over the default");
                var set = seen.Sets.Find(s => s.Count == 1 && s[0].Name == "spawn_ms");
                T.True(set != null, "OnChanges with the one change");
                T.Equal(800.0, set[0].Previous, "Previous");
                T.Equal("650.5", set[0].Raw, "Raw");
                T.Equal("float", set[0].Type, "Type");
            });

            T.Test("dashboard changes of each type read back typed", () =>
            {
                Driver.Call("put", "name", "lives", "value", 5);
                Driver.Call("put", "name", "god_mode", "value", true);
                Driver.Call("put", "name", "title", "value", "Boss 2");
                T.Eventually(c, () => c.GetString("title", null) == "Boss 2", "title");
                T.Equal(5, c.GetInt("lives", 0), "an integer");
                T.Equal(true, c.GetBool("god_mode", false), "a boolean");
                T.True(seen.Values[seen.Changes.LastIndexOf("lives")] is long, "OnChange gives an integer as a long");
                T.Equal(true, seen.Threads.TrueForAll(t => t == main), "every handler ran on the polling thread");
            });

            T.Test("SetVar reaches the daemon: 42 is an integer, 0.5f and 800.0 are floats", () =>
            {
                T.True(c.SetVar("score", 42), "SetVar");
                // A variable without an override: spawn_ms has the dashboard's 650.5, which wins over the
                // game's 800 and is echoed back (ConfirmRemoteVars), so <apiKey>:vs holds 800 only until then.
                T.True(c.SetVars(new Dictionary<string, object> { { "accuracy", 0.5f }, { "spawn_delay_ms", 800.0 } }), "SetVars");
                T.True(c.Flush(5000), "Flush");
                Driver.Call("waitVars", "vars", new List<object> { Driver.Var("score", "integer", "42"), Driver.Var("accuracy", "float", "0.5"), Driver.Var("spawn_delay_ms", "float", "800") });
            });

            T.Test("Log reaches the daemon with its level, fields and device", () =>
            {
                T.True(c.Log("hello from C#", "warn", new Dictionary<string, object> { { "stage", 3 }, { "tags", new List<object> { "a", "b" } } }), "Log");
                T.True(c.Flush(5000), "Flush");
                var hit = Hit(Driver.Call("waitLog", "message", "hello from C#"));
                T.Equal("warn", hit.Get("level"), "level");
                T.Equal("csharp-live", hit.Get("deviceId"), "deviceId");
                T.Equal(3, ((JsonObject)hit.Get("fields")).Get("stage"), "a field");
                T.Equal(new List<object> { "a", "b" }, ((JsonObject)hit.Get("fields")).Get("tags"), "a list field");
            });

            T.Test("reconnects after the daemon closes the socket, and carries on", () =>
            {
                Driver.Call("killConns");
                T.Eventually(c, () => seen.Connected.Count == 2, "OnConnected after the kill");
                T.Equal(true, seen.Connected[1], "a reconnect");
                T.Equal(1, seen.Disconnected.Count, "one OnDisconnected");
                T.True(seen.Disconnected[0] != null, "with an error");
                T.True(c.SetVar("after_kill", true), "SetVar");
                T.True(c.Flush(5000), "Flush");
                Driver.Call("waitVars", "vars", new List<object> { Driver.Var("after_kill", "boolean", "true") });
            });

            T.Test("across a daemon restart: queued logs and the latest value of each variable arrive after the reconnect", () =>
            {
                Driver.Call("stopDaemon");
                T.Eventually(c, () => seen.Disconnected.Count == 2 && !c.IsOnline, "OnDisconnected after the stop");
                T.True(c.Log("while offline"), "Log offline");
                c.SetVar("offline_var", 7);
                c.SetVar("offline_var", 8);
                T.Equal(false, c.Flush(100), "Flush offline times out");
                T.Equal(1, c.QueuedLogs, "queued");
                Driver.Call("startDaemon");
                T.Eventually(c, () => seen.Connected.Count == 3, "OnConnected after the restart", 20000);
                Driver.Call("waitVars", "vars", new List<object> { Driver.Var("offline_var", "integer", "8") });
                var hit = Hit(Driver.Call("waitLog", "message", "while offline"));
                T.Equal("csharp-live", hit.Get("deviceId"), "deviceId");
                T.Equal(0, c.QueuedLogs, "nothing left queued");
            });

            T.Test("a change made after the restart still arrives through Poll()", () =>
            {
                Driver.Call("put", "name", "title", "value", "Boss 3");
                T.Eventually(c, () => c.GetString("title", null) == "Boss 3", "title");
            });

            T.Test("Close sends what is queued, then every call is a no-op", () =>
            {
                c.Log("last words");
                c.Close();
                T.Equal(ClientState.Closed, c.State, "State");
                Driver.Call("waitLog", "message", "last words");
                T.Equal(false, c.Log("after close"), "Log");
                T.Equal(false, c.SetVar("x", 1), "SetVar");
                T.Equal(false, c.Flush(), "Flush");
                c.Poll();
                T.Equal(3, seen.Disconnected.Count, "OnDisconnected for the close");
                T.Equal(null, seen.Disconnected[2], "without an error");
                T.Equal(0, seen.Errors.Count, "no OnError in the whole session: " + string.Join("; ", seen.Errors.ConvertAll(e => e.ToString()).ToArray()));
            });
        }

        public static void DownAtStart()
        {
            var o = Options("csharp-late", new Dictionary<string, object> { { "enemy_speed", 1.5 } });
            o.OfflineLogLimit = 3;
            o.SynchronizationContext = new QueueContext();
            var ctx = (QueueContext)o.SynchronizationContext;
            var c = ObserverioClient.Connect(o);
            var seen = new Seen(c);

            T.Test("the daemon is down: the game runs on its defaults, the SDK retries in the background", () =>
            {
                T.Eventually(null, () => c.State == ClientState.Waiting, "state Waiting");
                T.Equal("connection_refused", c.LastError.Code, "LastError");
                T.Equal(1.5f, c.GetFloat("enemy_speed", 0), "the default");
                for (int i = 1; i <= 5; i++) c.Log("offline " + i);
                T.Equal(3, c.QueuedLogs, "the queue keeps OfflineLogLimit logs");
                T.Equal(2L, c.DroppedLogs, "and counts the dropped ones");
            });

            T.Test("the daemon comes up: the client connects, reports its defaults and sends the newest queued logs", () =>
            {
                Driver.Call("startDaemon");
                T.Eventually(null, () =>
                {
                    ctx.RunPending();
                    return seen.Connected.Count == 1;
                }, "OnConnected", 20000);
                Driver.Call("waitVars", "vars", new List<object> { Driver.Var("enemy_speed", "float", "1.5") });
                Driver.Call("waitLog", "message", "offline 5");
                var messages = (List<object>)Driver.Call("logMessages");
                foreach (var m in new[] { "offline 3", "offline 4", "offline 5" }) T.True(messages.Contains(m), m + " arrived");
                foreach (var m in new[] { "offline 1", "offline 2" }) T.True(!messages.Contains(m), m + " was dropped");
            });

            T.Test("with a SynchronizationContext, events are posted to it and run where it runs them", () =>
            {
                int me = Thread.CurrentThread.ManagedThreadId;
                Driver.Call("put", "name", "enemy_speed", "value", 3.25);
                T.Eventually(null, () =>
                {
                    ctx.RunPending();
                    return seen.Changes.Contains("enemy_speed");
                }, "OnChange through the context");
                T.Equal(me, seen.Threads[0], "the context's thread");
                T.Equal(3.25f, c.GetFloat("enemy_speed", 0), "GetFloat");
                c.Close();
            });
        }

        /// <summary>A game's main-thread context: posted work waits until the game runs it (as Unity's does each frame).</summary>
        sealed class QueueContext : SynchronizationContext
        {
            readonly Queue<KeyValuePair<SendOrPostCallback, object>> _work = new Queue<KeyValuePair<SendOrPostCallback, object>>();

            public override void Post(SendOrPostCallback d, object state)
            {
                lock (_work) _work.Enqueue(new KeyValuePair<SendOrPostCallback, object>(d, state));
            }

            public void RunPending()
            {
                while (true)
                {
                    KeyValuePair<SendOrPostCallback, object> next;
                    lock (_work)
                    {
                        if (_work.Count == 0) return;
                        next = _work.Dequeue();
                    }
                    next.Key(next.Value);
                }
            }
        }
    }
}
