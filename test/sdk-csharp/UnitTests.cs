// Offline tests of the C# SDK: its encoder and decoder against docs/protocol-vectors.json (as
// test/unit/sdk/vectors.test.ts does for the TypeScript SDK), the typing rules, the JS number format,
// the bounded offline queue, and that nothing throws into the game. No daemon: a client here points
// at a port nothing listens on.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;

namespace Observerio.Tests
{
    internal static class UnitTests
    {
        const string Key = "AbCdEf012345";

        public static void Run(string vectorsPath)
        {
            object parsed;
            T.True(Json.TryParse(File.ReadAllText(vectorsPath, Encoding.UTF8), out parsed) && parsed is List<object>, "the vectors file is a JSON array");
            var all = new List<JsonObject>();
            foreach (var v in (List<object>)parsed) all.Add((JsonObject)v);
            var core = all.FindAll(v => !v.Has("since"));
            var devices = all.FindAll(v => v.Get("since") as string == "devices");
            var toDaemon = core.FindAll(v => (string)v.Get("direction") == "to_daemon");
            var toSdk = core.FindAll(v => (string)v.Get("direction") == "to_sdk");

            T.Test("reproduces every canonical to_daemon line exactly", () =>
            {
                var canonical = toDaemon.FindAll(v => v.Get("canonical") is bool && (bool)v.Get("canonical"));
                T.True(canonical.Count > 10, "more than 10 canonical cases, got " + canonical.Count);
                foreach (var v in canonical) T.Equal(v.Get("line"), Encode(Expect(v)), Note(v));
            });

            T.Test("encodes every accepted command so that it decodes back to the vector's value", () =>
            {
                int n = 0;
                foreach (var v in toDaemon)
                {
                    JsonObject e = Expect(v);
                    if ((string)e.Get("kind") == "error") continue;
                    T.Equal(e, DecodeOwnLine(Encode(e)), Note(v));
                    n++;
                }
                T.True(n > 15, "more than 15 accepted cases, got " + n);
            });

            T.Test("refuses locally the API keys and device ids the daemon refuses in v: lines", () =>
            {
                int n = 0;
                foreach (var v in toDaemon)
                {
                    string line = (string)v.Get("line");
                    JsonObject e = Expect(v);
                    if (!line.StartsWith("v:") || (string)e.Get("kind") != "error") continue;
                    string rest = line.Substring(2);
                    int sep = rest.IndexOf(':');
                    string code = Codec.CheckApiKey(sep < 0 ? rest : rest.Substring(0, sep)) != null ? "bad_api_key"
                        : sep >= 0 && Codec.CheckDeviceId(rest.Substring(sep + 1)) != null ? "bad_device_id" : null;
                    T.Equal(e.Get("code"), code, Note(v));
                    n++;
                }
                T.True(n > 5, "more than 5 refused v: lines, got " + n);
            });

            T.Test("refuses locally every refused variable and log the SDK's API can express", () =>
            {
                int n = 0;
                foreach (var v in toDaemon)
                {
                    string line = (string)v.Get("line");
                    JsonObject e = Expect(v);
                    if ((string)e.Get("kind") != "error" || (string)e.Get("code") != "bad_shape") continue;
                    List<JsonObject> items = PayloadObjects(line);
                    if (items == null) continue; // not an array of objects: nothing the SDK could write
                    bool refused = false;
                    foreach (var o in items)
                    {
                        string why = line.StartsWith("i:")
                            ? Codec.CheckVar(o.Get("name"), o.Get("type"), o.Get("value"))
                            : Codec.CheckLog(o.Get("message"), o.Has("level") ? o.Get("level") : "info", o.Has("timestamp") ? o.Get("timestamp") : 0.0);
                        if (why != null) refused = true;
                    }
                    T.True(refused, Note(v) + ": the SDK accepts what the daemon refuses");
                    n++;
                }
                T.True(n > 10, "more than 10 refused l:/i: payloads, got " + n);
            });

            T.Test("decodes every daemon line to the expected result and typed values", () =>
            {
                T.True(toSdk.Count > 15, "more than 15 to_sdk cases");
                foreach (var v in toSdk)
                {
                    JsonObject e = Expect(v);
                    ServerLine got = Codec.DecodeServerLine((string)v.Get("line"));
                    string kind = (string)e.Get("kind");
                    T.Equal(kind, got.Kind.ToString().ToLowerInvariant(), Note(v));
                    if (kind == "error")
                    {
                        T.Equal(e.Get("code"), got.Code, Note(v));
                        T.Equal(e.Get("message"), got.Message, Note(v));
                    }
                    if (kind != "vars") continue;
                    T.Equal(e.Get("apiKey"), got.ApiKey, Note(v));
                    var vars = new List<object>();
                    var values = new List<object>();
                    foreach (var w in got.Vars)
                    {
                        vars.Add(Driver.Var(w.Name, w.Type, w.Value));
                        values.Add(w.Typed);
                    }
                    T.Equal(e.Get("vars"), vars, Note(v));
                    T.Equal(e.Get("values"), values, Note(v) + " (typed)");
                }
            });

            T.Test("labels (devices extension): canonical d: lines, accepted labels and refused ones, when the vectors have them", () =>
            {
                if (devices.Count == 0)
                {
                    Console.WriteLine("# no \"since\": \"devices\" vectors in " + vectorsPath + "; label cases skipped");
                    return;
                }
                int canonical = 0, accepted = 0, refused = 0;
                foreach (var v in devices)
                {
                    string line = (string)v.Get("line");
                    JsonObject e = Expect(v);
                    if ((string)e.Get("kind") == "labels")
                    {
                        var labels = (JsonObject)e.Get("labels");
                        T.Equal(null, Codec.CheckLabels(labels), Note(v));
                        string encoded = EncodeLabels(labels);
                        if (v.Get("canonical") is bool && (bool)v.Get("canonical"))
                        {
                            T.Equal(line, encoded, Note(v));
                            canonical++;
                        }
                        T.Equal(e, DecodeOwnLine(encoded), Note(v));
                        accepted++;
                        continue;
                    }
                    string code = (string)e.Get("code");
                    string rest = line.Substring(2);
                    int sep = rest.IndexOf(':');
                    if (code == "bad_api_key")
                    {
                        T.True(Codec.CheckApiKey(sep < 0 ? rest : rest.Substring(0, sep)) != null, Note(v));
                        refused++;
                        continue;
                    }
                    if (code != "bad_shape" || sep < 0) continue; // base64 and JSON errors: the SDK always writes both right
                    byte[] bytes = Codec.DecodeBase64(rest.Substring(sep + 1));
                    object json;
                    if (bytes == null || !Json.TryParse(Codec.Utf8.GetString(bytes), out json) || !(json is JsonObject)) continue;
                    var obj = (JsonObject)json;
                    if (Codec.CheckLabels(obj) == null)
                    {
                        // Only the raw payload is wrong (over the size limit): the SDK writes these labels compactly.
                        string payload = rest.Substring(sep + 1);
                        T.True(payload.Length > ObserverioClient.MaxLabelsPayload && EncodeLabels(obj) != line, Note(v) + ": the SDK accepts what the daemon refuses");
                    }
                    refused++;
                }
                T.True(canonical >= 5 && accepted >= 7 && refused >= 15, "label cases: " + canonical + " canonical, " + accepted + " accepted, " + refused + " refused");
            });

            T.Test("infers types from the CLR type, never from the value: 800.0 is a float, 800 an integer", () =>
            {
                T.Equal("float|800", WireOf("spawn_ms", 800.0, null), "800.0");
                T.Equal("float|800", WireOf("spawn_ms", 800f, null), "800f");
                T.Equal("integer|800", WireOf("spawn_ms", 800, null), "800");
                T.Equal("integer|-9223372036854775808", WireOf("big", long.MinValue, null), "long.MinValue");
                T.Equal("integer|18446744073709551615", WireOf("big", ulong.MaxValue, null), "ulong.MaxValue");
                T.Equal("float|1.5", WireOf("d", 1.5m, null), "decimal");
                T.Equal("boolean|true", WireOf("b", true, null), "true");
                T.Equal("string|x", WireOf("s", 'x', null), "a char");
                T.Equal("string|Boss 2", WireOf("s", "Boss 2", null), "a string");
                T.Equal("color|#ff0000", WireOf("tint", "#ff0000", "color"), "an explicit type");
                T.Equal("float|0.1", WireOf("f", 0.1f, null), "0.1f is sent as the game wrote it");
                T.Equal("float|0.30000000000000004", WireOf("f", 0.1 + 0.2, null), "0.1 + 0.2");
            });

            T.Test("writes numbers as JavaScript's String(number) does", () =>
            {
                var cases = new Dictionary<double, string>
                {
                    { 1e21, "1e+21" }, { 1e20, "100000000000000000000" }, { 123456789012345680000.0, "123456789012345680000" },
                    { 1.5e-7, "1.5e-7" }, { 1e-6, "0.000001" }, { 1e-7, "1e-7" }, { -0.0, "0" }, { 100, "100" },
                    { -2.5, "-2.5" }, { 5e-324, "5e-324" }, { double.MaxValue, "1.7976931348623157e+308" }, { 9.81, "9.81" },
                    { 1700000000000, "1700000000000" }, { 0.000123, "0.000123" }, { 2e-7, "2e-7" }, { 123.456, "123.456" },
                };
                foreach (var c in cases) T.Equal(c.Value, Codec.FormatNumber(c.Key), "FormatNumber(" + c.Key.ToString("R") + ")");
                T.Equal("3.4028235e+38", Codec.FormatFloat(float.MaxValue), "float.MaxValue");
                T.Equal("1e-45", Codec.FormatFloat(float.Epsilon), "float.Epsilon");
                T.Equal("16777216", Codec.FormatFloat(16777216f), "2^24 as a float");
            });

            T.Test("reads wire values by type as the TypeScript SDK does", () =>
            {
                T.Equal(-1L, Codec.TypedValue("integer", "-1"), "integer");
                T.Equal(2.5, Codec.TypedValue("integer", "2.5"), "an integer var holding 2.5");
                T.Equal(1000L, Codec.TypedValue("int", "1e3"), "int with an exponent");
                T.Equal(255L, Codec.TypedValue("integer", "0xff"), "hex, as Number()");
                T.Equal(12.0, Codec.TypedValue("float", " 12 "), "white space around a float");
                T.Equal("many", Codec.TypedValue("integer", "many"), "unparsable stays a string");
                T.Equal("", Codec.TypedValue("float", ""), "empty stays a string");
                T.Equal("1e400", Codec.TypedValue("float", "1e400"), "not finite stays a string");
                T.Equal("Infinity", Codec.TypedValue("number", "Infinity"), "Infinity stays a string");
                T.Equal(true, Codec.TypedValue("BOOL", "TRUE"), "type and value case-insensitive");
                T.Equal(false, Codec.TypedValue("boolean", "0"), "0 is false");
                T.Equal("yes", Codec.TypedValue("boolean", "yes"), "yes stays a string");
                T.Equal("42", Codec.TypedValue("string", "42"), "a string var is a string");
            });

            T.Test("typed getters return the effective value, and the default for missing names and wrong types", () =>
            {
                var c = Offline(new Dictionary<string, object> { { "spawn_ms", 800.0 }, { "lives", 3 }, { "god_mode", true }, { "title", "Boss 1" }, { "ratio", 0.25f }, { "huge", 1e12 } });
                T.Equal(800f, c.GetFloat("spawn_ms", 1f), "GetFloat of a float");
                T.Equal(800.0, c.GetDouble("spawn_ms", 1), "GetDouble of a float");
                T.Equal(800, c.GetInt("spawn_ms", -1), "GetInt of a whole float");
                T.Equal(-1, c.GetInt("ratio", -1), "GetInt of 0.25 is the default");
                T.Equal(-1, c.GetInt("huge", -1), "GetInt out of int's range is the default");
                T.Equal(1000000000000L, c.GetLong("huge", -1), "GetLong of 1e12");
                T.Equal(3f, c.GetFloat("lives", 0f), "GetFloat of an integer");
                T.Equal(3, c.GetInt("lives", 0), "GetInt of an integer");
                T.Equal(true, c.GetBool("god_mode", false), "GetBool");
                T.Equal(false, c.GetBool("lives", false), "GetBool of an integer is the default");
                T.Equal("Boss 1", c.GetString("title", "d"), "GetString");
                T.Equal("d", c.GetString("lives", "d"), "GetString of an integer is the default");
                T.Equal(7.5f, c.GetFloat("title", 7.5f), "GetFloat of a string is the default");
                T.Equal(1.5f, c.GetFloat("missing", 1.5f), "a missing name");
                T.Equal(9, c.GetInt(null, 9), "a null name");
                T.Equal(0.25, c.GetAll()["ratio"], "GetAll types 0.25f as the double 0.25");
                c.Close();
            });

            T.Test("SetVar refuses what the daemon would refuse, returns false and sets LastError; SetVars applies all or nothing", () =>
            {
                var c = Offline(null);
                T.Equal(false, c.SetVar("x", double.NaN), "NaN");
                T.Equal("bad_var", c.LastError.Code, "LastError");
                T.Equal(false, c.SetVar("x", float.PositiveInfinity), "Infinity");
                T.Equal(false, c.SetVar("x", null), "null");
                T.Equal(false, c.SetVar("x", new object()), "an object");
                T.Equal(false, c.SetVar(null, 1), "a null name");
                T.Equal(false, c.SetVar("", 1), "an empty name");
                T.Equal(false, c.SetVar(new string('n', 129), 1), "a name of 129");
                T.Equal(false, c.SetVar("a\nb", 1), "a control character in a name");
                T.Equal(false, c.SetVar("t", 1, new string('t', 33)), "a type of 33");
                T.Equal(false, c.SetVar("huge", new string('x', 2 * 1024 * 1024)), "a value over the line limit");
                T.Equal(true, c.SetVar(new string('n', 128), 1), "a name of 128");
                T.Equal(false, c.SetVars(new Dictionary<string, object> { { "good", 1 }, { "bad", double.NaN } }), "SetVars with one bad value");
                object v;
                T.Equal(false, c.TryGet("good", out v), "nothing of a refused SetVars is applied");
                T.Equal(true, c.SetVars(new Dictionary<string, object> { { "a", 1 }, { "b", "two" } }), "SetVars");
                T.Equal("two", c.GetString("b", null), "SetVars applied");
                c.Close();
            });

            T.Test("offline, logs are bounded (oldest dropped and counted) and variables keep the latest value per name", () =>
            {
                var c = Offline(null, o => o.OfflineLogLimit = 5);
                for (int i = 0; i < 8; i++) T.Equal(true, c.Log("log " + i), "Log");
                T.Equal(5, c.QueuedLogs, "QueuedLogs");
                T.Equal(3L, c.DroppedLogs, "DroppedLogs");
                for (int i = 0; i < 1000; i++) c.SetVar("a", i);
                T.Equal(999, c.GetInt("a", -1), "latest value");
                T.Equal(1, c.GetAll().Count, "one variable");
                T.Equal(false, c.Flush(50), "Flush while offline times out false");
                c.Close();
            });

            T.Test("Log refuses entries the daemon would refuse (counted, reported) and keeps JSON fields", () =>
            {
                var c = Offline(null);
                var errors = new List<ObserverioError>();
                c.OnError += errors.Add;
                T.Equal(false, c.Log(null), "a null message");
                T.Equal(false, c.Log("x", "info", new Dictionary<string, object> { { "timestamp", "2024-01-01" } }), "a string timestamp");
                T.Equal(false, c.Log("x", "info", new Dictionary<string, object> { { "timestamp", double.NaN } }), "a NaN timestamp");
                T.Equal(false, c.Log(new string('x', 2 * 1024 * 1024)), "an entry over the line limit");
                T.Equal(4L, c.DroppedLogs, "DroppedLogs");
                c.Poll();
                T.Equal(4, errors.FindAll(e => e.Code == "bad_log").Count, "four bad_log errors through OnError");
                string json;
                var fields = new Dictionary<string, object> { { "stage", 3 }, { "tags", new[] { "a", "b" } }, { "pos", new Dictionary<string, double> { { "x", 1.5 }, { "y", -2 } } }, { "nan", double.NaN }, { "when", new DateTime(2024, 1, 2, 3, 4, 5, DateTimeKind.Utc) }, { "level", "ignored" } };
                T.Equal(null, Codec.LogJson("boss spawned", "warn", fields, 1700000000000, 1000, out json), "LogJson");
                T.Equal("{\"message\":\"boss spawned\",\"level\":\"warn\",\"timestamp\":1700000000000,\"stage\":3,\"tags\":[\"a\",\"b\"],\"pos\":{\"x\":1.5,\"y\":-2},\"nan\":null,\"when\":\"01/02/2024 03:04:05\"}", json, "the entry's JSON");
                c.Close();
            });

            T.Test("bad options never throw: the client is Closed, LastError says why, OnError is queued for Poll", () =>
            {
                var c = ObserverioClient.Connect(new ObserverioOptions { ApiKey = "short" });
                T.Equal(ClientState.Closed, c.State, "State");
                T.Equal("bad_api_key", c.LastError.Code, "LastError");
                var errors = new List<ObserverioError>();
                c.OnError += errors.Add;
                T.Equal(1, c.Poll(), "one event");
                T.Equal("bad_api_key", errors[0].Code, "OnError");
                T.Equal(false, c.SetVar("x", 1), "SetVar");
                T.Equal(2.5f, c.GetFloat("x", 2.5f), "GetFloat");
                T.Equal("bad_device_id", ObserverioClient.Connect(new ObserverioOptions { ApiKey = Key, DeviceId = "my device" }).LastError.Code, "a bad device id");
                T.Equal("bad_option", ObserverioClient.Connect(null).LastError.Code, "null options");
                T.Equal("bad_option", ObserverioClient.Connect(new ObserverioOptions { ApiKey = Key, Port = 0 }).LastError.Code, "port 0");
                T.Equal("bad_option", ObserverioClient.Connect(new ObserverioOptions { ApiKey = Key, ReconnectJitter = 2 }).LastError.Code, "jitter 2");
            });

            T.Test("bad labels and defaults are reported and left out; the client still connects", () =>
            {
                var c = Offline(new Dictionary<string, object> { { "ok", 1 }, { "bad", double.NaN } }, o => o.Labels = new Dictionary<string, string> { { "build", "1.4,1.5" } });
                var errors = new List<string>();
                c.OnError += e => errors.Add(e.Code);
                c.Poll();
                T.Equal(new List<object> { "bad_label", "bad_var" }, errors.ConvertAll(x => (object)x), "OnError codes");
                T.Equal(1, c.GetInt("ok", 0), "the good default");
                T.Equal(false, c.SetLabels(new Dictionary<string, string> { { "1build", "x" } }), "SetLabels refuses a bad key");
                T.Equal(true, c.SetLabels(new Dictionary<string, string> { { "platform", "linux" } }), "SetLabels");
                T.True(c.State != ClientState.Closed, "still running");
                c.Close();
            });

            T.Test("a closed client: nothing throws, calls answer false or the default", () =>
            {
                var c = Offline(new Dictionary<string, object> { { "speed", 2 } });
                c.Close();
                c.Close();
                T.Equal(ClientState.Closed, c.State, "State");
                T.Equal(false, c.Log("after close"), "Log");
                T.Equal(1L, c.DroppedLogs, "counted");
                T.Equal(false, c.SetVar("speed", 3), "SetVar");
                T.Equal("closed", c.LastError.Code, "LastError");
                T.Equal(false, c.SetVars(new Dictionary<string, object> { { "a", 1 } }), "SetVars");
                T.Equal(false, c.SetLabels(null), "SetLabels");
                T.Equal(false, c.Flush(), "Flush");
                T.Equal(2, c.GetInt("speed", 0), "the last value stays readable");
                c.Poll();
                c.Dispose();
            });

            T.Test("a handler that throws does not escape Poll(); it is reported through OnError", () =>
            {
                var c = Offline(new Dictionary<string, object> { { "bad", double.NaN } });
                var errors = new List<ObserverioError>();
                c.OnError += e => { errors.Add(e); throw new InvalidOperationException("game bug"); };
                c.OnError += e => errors.Add(e);
                T.Equal(1, c.Poll(), "one event dispatched");
                T.Equal(2, errors.Count, "both handlers ran");
                c.Close();
            });

            T.Test("a daemon that is down: the client waits with backoff and runs on its defaults", () =>
            {
                var c = Offline(new Dictionary<string, object> { { "enemy_speed", 1.5 } });
                T.Eventually(c, () => c.State == ClientState.Waiting, "state Waiting");
                T.Equal("connection_refused", c.LastError.Code, "LastError");
                T.Equal(1.5f, c.GetFloat("enemy_speed", 0), "the default");
                c.Close();
                T.Equal(ClientState.Closed, c.State, "closed while waiting");
            });

            T.Test("backoff: exponential from the initial delay, capped, spread by the jitter", () =>
            {
                var seen = new List<object>();
                for (int i = 0; i < 7; i++) seen.Add(Codec.BackoffDelay(i, 1000, 30000, 2, 0.2, 0.5));
                T.Equal(new List<object> { 1000, 2000, 4000, 8000, 16000, 30000, 30000 }, seen, "delays without jitter");
                T.Equal(800, Codec.BackoffDelay(0, 1000, 30000, 2, 0.2, 0.0), "lowest");
                T.Equal(1200, Codec.BackoffDelay(0, 1000, 30000, 2, 0.2, 0.99999999), "highest");
                T.Equal(30000, Codec.BackoffDelay(10000, 1000, 30000, 2, 0.2, 0.99), "never above the cap");
            });

            T.Test("the daemon's lines: OK, e: with colons in the message, unknown lines ignored, broken v: reported", () =>
            {
                var e = Codec.DecodeServerLine("e:bad_shape:logs[0]: message must be a string");
                T.Equal("bad_shape", e.Code, "code");
                T.Equal("logs[0]: message must be a string", e.Message, "message");
                T.Equal(ServerLineKind.Unknown, Codec.DecodeServerLine("x:future extension").Kind, "unknown");
                T.Equal(ServerLineKind.Invalid, Codec.DecodeServerLine("v:" + Key + ":W3sibmFtZSI6MX1d").Kind, "a var without a type");
                T.Equal(ServerLineKind.Invalid, Codec.DecodeServerLine("v:" + Key + ":W1 0=").Kind, "bad base64");
                T.Equal(ServerLineKind.Invalid, Codec.DecodeServerLine("v:" + Key + ":" + Convert.ToBase64String(Encoding.UTF8.GetBytes(new string('[', 100000)))).Kind, "deeply nested JSON");
                T.Equal(ServerLineKind.Invalid, Codec.DecodeServerLine("v:short:W10=").Kind, "a bad key");
                T.Equal(ServerLineKind.Invalid, Codec.DecodeServerLine("e:").Kind, "an error without a code");
            });

            T.Test("Dispatch = Immediate raises events on the SDK's thread; unknown lines are ignored, daemon errors reported", () =>
            {
                var daemon = FakeDaemon.Start(conn => conn == 1
                    ? new[] { "OK", "x:a future extension", "v:" + Key + ":" + Codec.EncodePayload("[{\"name\":\"speed\",\"type\":\"float\",\"value\":\"2.5\"}]"), "e:bad_shape:vars[0].value must be a string" }
                    : new[] { "OK" });
                var c = new ObserverioClient(new ObserverioOptions { Port = daemon.Port, ApiKey = Key, Dispatch = DispatchMode.Immediate });
                var threads = new List<int>();
                var errors = new List<ObserverioError>();
                double speed = 0;
                c.OnChange += (name, value) => { lock (threads) { threads.Add(Thread.CurrentThread.ManagedThreadId); speed = (double)value; } };
                c.OnError += e => { lock (threads) errors.Add(e); };
                c.Start();
                T.Eventually(null, () => { lock (threads) return errors.Count == 1 && threads.Count == 1; }, "OnChange and OnError without Poll()");
                T.True(threads[0] != Thread.CurrentThread.ManagedThreadId, "raised on the SDK's thread");
                T.Equal(2.5, speed, "the value");
                T.Equal("bad_shape", errors[0].Code, "the daemon's code");
                T.Equal(true, errors[0].FromDaemon, "FromDaemon");
                T.Equal(true, c.IsOnline, "still online");
                c.Close();
                daemon.Stop();
            });

            T.Test("a dashboard value sent again before its confirmation left still gets confirmed (the daemon re-sends an override that crossed a report)", () =>
            {
                string hard = "v:" + Key + ":" + Codec.EncodePayload("[{\"name\":\"difficulty\",\"type\":\"string\",\"value\":\"hard\"}]");
                // The change, and the same value again inside the confirmation's window.
                var daemon = FakeDaemon.Start(conn => new[] { "OK", FakeDaemon.AwaitVars, hard, hard });
                var c = new ObserverioClient(new ObserverioOptions { Port = daemon.Port, ApiKey = Key, VarsWindowMs = 200, Dispatch = DispatchMode.Immediate });
                c.SetVar("difficulty", "normal");
                c.Start();
                Func<List<string>> reported = () =>
                {
                    var values = new List<string>();
                    foreach (var line in daemon.Lines)
                    {
                        if (!line.StartsWith("i:")) continue;
                        foreach (var v in PayloadObjects(line) ?? new List<JsonObject>())
                            if ((string)v.Get("name") == "difficulty") values.Add((string)v.Get("value"));
                    }
                    return values;
                };
                // Without the confirmation the daemon's last report of this device stays "normal".
                T.Eventually(null, () => reported().Contains("hard"), "the dashboard's value confirmed in an i: line");
                T.Equal("hard", c.GetString("difficulty", ""), "the game sees the dashboard's value");
                T.Equal("hard", reported()[reported().Count - 1], "the last report is the dashboard's value: " + string.Join(",", reported().ToArray()));
                c.Close();
                daemon.Stop();
            });

            T.Test("a refused v: (e:unknown_api_key) is reported and retried with backoff", () =>
            {
                var daemon = FakeDaemon.Start(conn => new[] { "e:unknown_api_key:API key is not registered" });
                var c = new ObserverioClient(new ObserverioOptions { Port = daemon.Port, ApiKey = Key, ReconnectInitialMs = 20, ReconnectMaxMs = 50 });
                var errors = new List<string>();
                c.OnError += e => errors.Add(e.Code);
                c.Start();
                T.Eventually(c, () => daemon.Accepted >= 3 && errors.Count >= 2, "three attempts");
                T.True(errors.TrueForAll(e => e == "unknown_api_key"), "unknown_api_key each time: " + string.Join(",", errors.ToArray()));
                T.Equal(false, c.IsOnline, "never online");
                c.Close();
                daemon.Stop();
            });

            T.Test("the Unity-style example runs its frames without a daemon and without exceptions", () =>
            {
                var game = new GameLoop { Host = "127.0.0.1", Port = RefusedPort(), ApiKey = Key };
                game.Start();
                for (int i = 0; i < 5; i++) game.Update();
                T.Equal(1.5f, game.EnemySpeed, "the example runs on its default");
                game.OnApplicationQuit();
            });
        }

        // --- helpers -------------------------------------------------------------------------------

        static string Note(JsonObject v) { return (string)v.Get("note"); }
        static JsonObject Expect(JsonObject v) { return (JsonObject)v.Get("expect"); }

        static string WireOf(string name, object value, string type)
        {
            WireVar w;
            ObserverioError err = Codec.ToWireVar(name, value, type, Codec.JsonBudget(1024 * 1024), out w);
            if (err != null) throw new AssertionFailed("ToWireVar refused " + name + ": " + err);
            return w.Type + "|" + w.Value;
        }

        static string EncodeLabels(JsonObject labels)
        {
            var sorted = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var kv in labels) sorted[kv.Key] = (string)kv.Value;
            return Codec.EncodeLabels(Key, sorted);
        }

        /// <summary>A vector's expect, through the SDK's encoders.</summary>
        static string Encode(JsonObject e)
        {
            string apiKey = (string)e.Get("apiKey");
            switch ((string)e.Get("kind"))
            {
                case "verify":
                    return Codec.EncodeVerify(apiKey, e.Get("deviceId") as string);
                case "logs":
                {
                    var parts = new List<string>();
                    foreach (var log in (List<object>)e.Get("logs"))
                    {
                        var sb = new StringBuilder();
                        Json.Write(sb, log, 0);
                        parts.Add(sb.ToString());
                    }
                    return Codec.EncodeLogsJson(apiKey, parts);
                }
                case "vars":
                {
                    var vars = new List<WireVar>();
                    foreach (JsonObject v in (List<object>)e.Get("vars")) vars.Add(new WireVar((string)v.Get("name"), (string)v.Get("type"), (string)v.Get("value")));
                    return Codec.EncodeVars(apiKey, vars);
                }
                case "labels":
                {
                    var sorted = new SortedDictionary<string, string>(StringComparer.Ordinal);
                    foreach (var kv in (JsonObject)e.Get("labels")) sorted[kv.Key] = (string)kv.Value;
                    return Codec.EncodeLabels(apiKey, sorted);
                }
            }
            throw new AssertionFailed("no encoder for " + e.Get("kind"));
        }

        /// <summary>A line this SDK wrote, read back into a vector's expect shape.</summary>
        static JsonObject DecodeOwnLine(string line)
        {
            var e = new JsonObject();
            string rest = line.Substring(2);
            int sep = rest.IndexOf(':');
            string apiKey = sep < 0 ? rest : rest.Substring(0, sep);
            if (line.StartsWith("v:"))
            {
                e.Set("kind", "verify");
                e.Set("apiKey", apiKey);
                e.Set("deviceId", sep < 0 ? null : rest.Substring(sep + 1));
                return e;
            }
            byte[] bytes = Codec.DecodeBase64(rest.Substring(sep + 1));
            object json;
            if (bytes == null || !Json.TryParse(Codec.Utf8.GetString(bytes), out json)) throw new AssertionFailed("the SDK wrote an unreadable payload: " + line);
            e.Set("kind", line[0] == 'l' ? "logs" : line[0] == 'i' ? "vars" : "labels");
            e.Set("apiKey", apiKey);
            e.Set(line[0] == 'l' ? "logs" : line[0] == 'i' ? "vars" : "labels", json);
            return e;
        }

        /// <summary>The objects of an l:/i: payload that is a JSON array of objects, else null.</summary>
        static List<JsonObject> PayloadObjects(string line)
        {
            string rest = line.Substring(2);
            int sep = rest.IndexOf(':');
            if (sep < 0) return null;
            byte[] bytes = Codec.DecodeBase64(rest.Substring(sep + 1));
            object json;
            if (bytes == null || !Json.TryParse(Codec.Utf8.GetString(bytes), out json) || !(json is List<object>)) return null;
            var items = new List<JsonObject>();
            foreach (var item in (List<object>)json)
            {
                if (!(item is JsonObject)) return null;
                items.Add((JsonObject)item);
            }
            return items.Count > 0 ? items : null;
        }

        /// <summary>A port nothing listens on: bound a moment ago and released.</summary>
        public static int RefusedPort()
        {
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            int port = ((IPEndPoint)l.LocalEndpoint).Port;
            l.Stop();
            return port;
        }

        static ObserverioClient Offline(IDictionary<string, object> defaults, Action<ObserverioOptions> more = null)
        {
            var o = new ObserverioOptions { Host = "127.0.0.1", Port = RefusedPort(), ApiKey = Key, Defaults = defaults, ReconnectInitialMs = 50, ReconnectMaxMs = 200 };
            if (more != null) more(o);
            return ObserverioClient.Connect(o);
        }
    }

    /// <summary>A scripted daemon on a real socket: answers a connection's v: line with the given lines.</summary>
    internal sealed class FakeDaemon
    {
        readonly TcpListener _listener = new TcpListener(IPAddress.Loopback, 0);
        readonly Func<int, string[]> _script;
        readonly List<TcpClient> _clients = new List<TcpClient>();
        readonly List<string> _lines = new List<string>();
        int _accepted;

        FakeDaemon(Func<int, string[]> script) { _script = script; }

        public int Port { get { return ((IPEndPoint)_listener.LocalEndpoint).Port; } }
        public int Accepted { get { return Volatile.Read(ref _accepted); } }

        /// <summary>In a script: the lines after it are written once the SDK has sent its first i: line.</summary>
        public const string AwaitVars = "@await i:";

        /// <summary>The lines the SDK wrote after its v: line, over every connection, in order.</summary>
        public List<string> Lines { get { lock (_lines) return new List<string>(_lines); } }

        public static FakeDaemon Start(Func<int, string[]> script)
        {
            var d = new FakeDaemon(script);
            d._listener.Start();
            new Thread(d.AcceptLoop) { IsBackground = true }.Start();
            return d;
        }

        void AcceptLoop()
        {
            try
            {
                while (true)
                {
                    TcpClient client = _listener.AcceptTcpClient();
                    int n = Interlocked.Increment(ref _accepted);
                    lock (_clients) _clients.Add(client);
                    new Thread(() => Serve(client, n)) { IsBackground = true }.Start();
                }
            }
            catch (Exception) { }
        }

        void Serve(TcpClient client, int n)
        {
            try
            {
                var stream = client.GetStream();
                var reader = new StreamReader(stream, Encoding.UTF8);
                string first = reader.ReadLine();
                if (first == null || !first.StartsWith("v:")) return;
                string[] script = _script(n);
                int awaitAt = Array.IndexOf(script, AwaitVars);
                string[] now = awaitAt < 0 ? script : script.Take(awaitAt).ToArray();
                byte[] reply = Encoding.UTF8.GetBytes(string.Join("\n", now) + "\n");
                stream.Write(reply, 0, reply.Length);
                if (script[0] != "OK") client.Close();
                else
                {
                    string line;
                    while ((line = reader.ReadLine()) != null)
                    {
                        lock (_lines) _lines.Add(line);
                        if (awaitAt < 0 || !line.StartsWith("i:")) continue;
                        byte[] rest = Encoding.UTF8.GetBytes(string.Join("\n", script.Skip(awaitAt + 1).ToArray()) + "\n");
                        stream.Write(rest, 0, rest.Length);
                        awaitAt = -1;
                    }
                }
            }
            catch (Exception) { }
        }

        public void Stop()
        {
            _listener.Stop();
            lock (_clients) foreach (var c in _clients) c.Close();
        }
    }
}
