// The C# SDK's test program: a minimal test runner (there is no NUnit here), built with mcs together
// with src/sdk-csharp/Observerio.cs and run with mono by test/integration/sdk-csharp.test.ts.
//
//   ObserverioSdkTests.exe unit <protocol-vectors.json>   offline: vectors, typing, queues, errors
//   ObserverioSdkTests.exe live                            against the real daemon (env below)
//   ObserverioSdkTests.exe down-at-start                   same, the daemon starting after the client
//
// Live modes read OBSERVERIO_HOST, OBSERVERIO_PORT and OBSERVERIO_API_KEY, and drive the daemon side
// through the mocha test: a line "@@ <json request>" on stdout is answered by one JSON line on stdin,
// {"ok":true,"body":...} or {"ok":false,"error":"..."} (see Driver). Each test prints "ok <name>" or
// "not ok <name>: <why>"; the last line is "N passed, M failed", and the exit code is 1 on any failure.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;
using System.Threading;

namespace Observerio.Tests
{
    internal sealed class AssertionFailed : Exception
    {
        public AssertionFailed(string message) : base(message) { }
    }

    internal static class T
    {
        static int _passed;
        static int _failed;

        public static void Test(string name, Action body)
        {
            try
            {
                body();
                _passed++;
                Console.WriteLine("ok " + name);
            }
            catch (Exception e)
            {
                _failed++;
                string why = e is AssertionFailed ? e.Message : e.GetType().Name + ": " + e.Message + "\n" + e.StackTrace;
                Console.WriteLine("not ok " + name + ": " + why.Replace("\n", "\n    "));
            }
        }

        public static int Finish()
        {
            Console.WriteLine(_passed + " passed, " + _failed + " failed");
            Console.Out.Flush();
            return _failed == 0 && _passed > 0 ? 0 : 1;
        }

        public static void True(bool cond, string what)
        {
            if (!cond) throw new AssertionFailed(what);
        }

        public static void Equal(object expected, object actual, string what)
        {
            if (!Same(expected, actual)) throw new AssertionFailed(what + ": expected " + Show(expected) + ", got " + Show(actual));
        }

        /// <summary>Deep equality of JSON-like values; numbers compare by value whatever their CLR type.</summary>
        public static bool Same(object a, object b)
        {
            if (a == null || b == null) return a == null && b == null;
            if (IsNumber(a) && IsNumber(b)) return Convert.ToDouble(a, CultureInfo.InvariantCulture) == Convert.ToDouble(b, CultureInfo.InvariantCulture);
            var la = a as System.Collections.IList;
            var lb = b as System.Collections.IList;
            if (la != null && lb != null && !(a is string))
            {
                if (la.Count != lb.Count) return false;
                for (int i = 0; i < la.Count; i++) if (!Same(la[i], lb[i])) return false;
                return true;
            }
            var oa = a as JsonObject;
            var ob = b as JsonObject;
            if (oa != null && ob != null)
            {
                if (oa.Count != ob.Count) return false;
                foreach (var kv in oa) if (!ob.Has(kv.Key) || !Same(kv.Value, ob.Get(kv.Key))) return false;
                return true;
            }
            return a.GetType() == b.GetType() && a.Equals(b);
        }

        static bool IsNumber(object v) { return Codec.IsInteger(v) || Codec.IsFloating(v); }

        public static string Show(object v)
        {
            if (v == null) return "null";
            var sb = new StringBuilder();
            Json.Write(sb, v, 0);
            return sb.ToString() + " (" + v.GetType().Name + ")";
        }

        /// <summary>Calls Poll() on this thread until the condition holds; no fixed sleeps in the assertions.</summary>
        public static void Eventually(ObserverioClient client, Func<bool> cond, string what, int timeoutMs = 10000)
        {
            var until = DateTime.UtcNow.AddMilliseconds(timeoutMs);
            while (true)
            {
                if (client != null) client.Poll();
                if (cond()) return;
                if (DateTime.UtcNow > until) throw new AssertionFailed("timed out waiting for " + what);
                Thread.Sleep(10);
            }
        }
    }

    /// <summary>Requests to the mocha test that runs this program (it owns the daemon and its HTTP API).</summary>
    internal static class Driver
    {
        public static object Call(string op, params object[] kv)
        {
            var req = new JsonObject();
            req.Set("op", op);
            for (int i = 0; i + 1 < kv.Length; i += 2) req.Set((string)kv[i], kv[i + 1]);
            var sb = new StringBuilder("@@ ");
            Json.Write(sb, req, 0);
            Console.WriteLine(sb.ToString());
            Console.Out.Flush();
            string line = Console.In.ReadLine();
            if (line == null) throw new AssertionFailed("the driver closed stdin during " + op);
            object reply;
            if (!Json.TryParse(line, out reply) || !(reply is JsonObject)) throw new AssertionFailed("bad driver reply " + line);
            var o = (JsonObject)reply;
            if (!(o.Get("ok") is bool) || !(bool)o.Get("ok")) throw new AssertionFailed(op + " failed on the daemon side: " + o.Get("error"));
            return o.Get("body");
        }

        public static JsonObject Var(string name, string type, string value)
        {
            var v = new JsonObject();
            v.Set("name", name);
            v.Set("type", type);
            v.Set("value", value);
            return v;
        }
    }

    internal static class Program
    {
        static int Main(string[] args)
        {
            string mode = args.Length > 0 ? args[0] : "";
            try
            {
                switch (mode)
                {
                    case "unit":
                        if (args.Length < 2) return Usage();
                        UnitTests.Run(args[1]);
                        break;
                    case "live":
                        LiveTests.Live();
                        break;
                    case "down-at-start":
                        LiveTests.DownAtStart();
                        break;
                    default:
                        return Usage();
                }
            }
            catch (Exception e)
            {
                T.Test("the test program itself", () => { throw e; });
            }
            return T.Finish();
        }

        static int Usage()
        {
            Console.Error.WriteLine("usage: ObserverioSdkTests.exe unit <protocol-vectors.json> | live | down-at-start");
            return 2;
        }
    }
}
