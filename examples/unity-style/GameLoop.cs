// A Unity-style game loop on the observerio C# SDK: connect in Start, Poll() in Update (so OnChange
// runs on the main thread), read tuned values every frame, log, and close on quit. In Unity, put this
// file and Observerio.cs under Assets/ and add GameLoop to a GameObject; outside Unity (this repo's
// tests compile and run it with mono) the same class is plain C#, driven by calling Start/Update.
using System.Collections.Generic;
using Observerio;
#if UNITY_5_3_OR_NEWER
using UnityEngine;

public class GameLoop : MonoBehaviour
#else
public class GameLoop
#endif
{
    public string Host = "127.0.0.1";
    public int Port = 4040;
    public string ApiKey = "AbCdEf012345";

    ObserverioClient _observerio;
    int _frame;

    /// <summary>What the game plays with this frame: the dashboard's value once set there, else the default.</summary>
    public float EnemySpeed { get; private set; }

    public void Start()
    {
        _observerio = ObserverioClient.Connect(new ObserverioOptions
        {
            Host = Host,
            Port = Port,
            ApiKey = ApiKey,
            DeviceId = "unity-editor",
            Labels = new Dictionary<string, string> { { "engine", "unity" }, { "build", "1.4.2" } },
            // The game's own values: reported to the dashboard, used until someone changes them there.
            Defaults = new Dictionary<string, object> { { "enemy_speed", 1.5f }, { "spawn_ms", 800.0 }, { "god_mode", false } },
        });
        _observerio.OnChange += (name, value) => Say("observerio: " + name + " is now " + value);
        _observerio.OnError += error => Say("observerio: " + error);
    }

    public void Update()
    {
        // Raises the queued OnChange/OnError events here, on the game's thread.
        _observerio.Poll();
        EnemySpeed = _observerio.GetFloat("enemy_speed", 1.5f);
        bool godMode = _observerio.GetBool("god_mode", false);
        if (++_frame % 600 == 0) _observerio.Log("frame " + _frame, "debug", new Dictionary<string, object> { { "godMode", godMode } });
    }

    public void OnApplicationQuit()
    {
        _observerio.Log("quit after " + _frame + " frames");
        _observerio.Close();
    }

    static void Say(string text)
    {
#if UNITY_5_3_OR_NEWER
        Debug.Log(text);
#else
        System.Console.WriteLine("# " + text);
#endif
    }
}
