using System.Security.Cryptography;
using Vpn.Cli.Output;

namespace Vpn.Cli.Client;

// connect and reconnect: the device key made here, the session started with an Idempotency-Key, the wg-quick file
// written 0600 with the key filled in, and the QR code of that file for a phone.
public static partial class ClientCommands
{
    private sealed record ConfigOutput(Option<FileInfo?> Out, Option<bool> NoQr, Option<bool> Invert);

    private static ConfigOutput OutputOptions() => new(
        new Option<FileInfo?>("--out") { Description = "the wg-quick file to write (default: <state-dir>/wg-vpn.conf; wg-quick names the interface after it)" },
        new Option<bool>("--no-qr") { Description = "do not print the QR code" },
        new Option<bool>("--qr-invert") { Description = "draw the QR code's dark modules (for dark-on-light terminals)" });

    private static Command CreateConnect(GlobalOptions options, CliContext context, Func<Invocation, string> stateDir)
    {
        var region = new Option<string>("--region") { Description = "the region to connect in (your plan's allowed_regions)", Required = true };
        var country = new Option<string?>("--country") { Description = "only servers in this country (ISO code)" };
        var city = new Option<string?>("--city") { Description = "only servers in this city" };
        var pool = new Option<string?>("--pool") { Description = "only servers of this pool" };
        var hint = new Option<string?>("--node") { Description = "a server's id to prefer (it must be a candidate)" };
        var replace = new Option<bool>("--replace") { Description = "end your other active session (one per account) and connect here" };
        var deviceName = new Option<string?>("--device-name") { Description = "the device's name at its first connect (default: this machine's name)" };
        var output = OutputOptions();
        return new Command("connect", "register this device (key made here) if needed, start a session, write the wg-quick file and show its QR code")
            .With(region, country, city, pool, hint, replace, deviceName, output.Out, output.NoQr, output.Invert).Handle(options, context, async run =>
            {
                var directory = stateDir(run);
                var configPath = ConfigPath(run, output, directory);
                var state = ClientState.Load(directory);
                using var entry = SignedIn(run, state);
                state.Device ??= await RegisterDeviceAsync(run, entry, state, directory, run.Get(deviceName) ?? Environment.MachineName);

                var body = new JsonObject
                {
                    ["device_id"] = state.Device.Id,
                    ["region"] = run.Get(region),
                    ["country_code"] = run.Get(country),
                    ["city_code"] = run.Get(city),
                    ["pool"] = run.Get(pool),
                    ["node_hint"] = run.Get(hint),
                    ["replace_existing"] = run.Get(replace),
                }.ToJsonString();
                // A start whose answer was lost is sent again with its key (entry starts it at most once); a new request gets a new key.
                if (state.PendingStart is null || state.PendingStart.Body != body)
                {
                    state.PendingStart = new PendingStart(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)), body);
                    state.Save(directory);
                }
                var answer = await entry.PostAsync("/v1/sessions", JsonNode.Parse(body), run.CancellationToken,
                    new Dictionary<string, string> { ["Idempotency-Key"] = state.PendingStart.IdempotencyKey });
                // An answer is final for this key, except one that says to retry with it: 409 idempotency_key_in_progress
                // (the first start still runs), 429 and 5xx (entry records no such answer). A lost answer keeps it too.
                var code = answer.IsSuccess ? null : (string?)(answer.Json as JsonObject)?["code"];
                var retryWithKey = code == "idempotency_key_in_progress" || answer.Status == HttpStatusCode.TooManyRequests || (int)answer.Status >= 500;
                if (!retryWithKey)
                {
                    state.PendingStart = null;
                    state.Save(directory);
                }
                if (!answer.IsSuccess)
                {
                    throw Explained(ApiProblemException.From(answer.Status, answer.ContentType, answer.Body));
                }
                return await WriteSessionAsync(run, state, directory, answer.EnsureObject(), configPath, output, "connected");
            });
    }

    private static Command CreateReconnect(GlobalOptions options, CliContext context, Func<Invocation, string> stateDir)
    {
        var output = OutputOptions();
        return new Command("reconnect", "reconnect with the session key (a moved session gets its new server's config); writes the file again")
            .With(output.Out, output.NoQr, output.Invert).Handle(options, context, async run =>
            {
                var directory = stateDir(run);
                var state = ClientState.Load(directory);
                var session = state.Session ?? throw new CliException(ExitCodes.Refused, "no session to reconnect: run 'vpnctl client connect'");
                var configPath = run.Get(output.Out)?.FullName ?? session.ConfigPath ?? ConfigPath(run, output, directory);
                WgQuickFile.CheckName(configPath);
                using var entry = SignedIn(run, state);
                var answer = await entry.PostAsync("/v1/sessions/reconnect", new JsonObject { ["session_key"] = session.Key }, run.CancellationToken);
                if (!answer.IsSuccess)
                {
                    var problem = ApiProblemException.From(answer.Status, answer.ContentType, answer.Body);
                    if (problem.Code == "invalid_session_key")
                    {
                        // Dead for good (the session ended or the key rotated elsewhere): keep no key that can never work.
                        state.Session = null;
                        state.Save(directory);
                    }
                    throw Explained(problem);
                }
                var reconnected = answer.EnsureObject();
                var moved = session.NodeName is not null && session.NodeName != reconnected["node"].Str("name");
                return await WriteSessionAsync(run, state, directory, reconnected, configPath, output, moved ? "reconnected (moved to another server)" : "reconnected");
            });
    }

    private static string ConfigPath(Invocation run, ConfigOutput output, string directory)
    {
        var path = run.Get(output.Out)?.FullName ?? Path.Combine(directory, "wg-vpn.conf");
        WgQuickFile.CheckName(path);
        return path;
    }

    private static async Task<DeviceState> RegisterDeviceAsync(Invocation run, EntryHttp entry, ClientState state, string directory, string name)
    {
        var keys = DeviceKeys.Generate();
        var device = (await entry.PostAsync("/v1/devices", new JsonObject { ["name"] = name, ["public_key"] = keys.PublicKey }, run.CancellationToken)).EnsureObject();
        var registered = new DeviceState(device.Str("id")!, device.Str("name") ?? name, keys.PublicKey, keys.PrivateKey);
        state.Device = registered;
        state.Save(directory);
        if (!run.Json)
        {
            run.Out.WriteLine($"registered this device as {registered.Name} ({registered.Id}), public key {registered.PublicKey}");
        }
        return registered;
    }

    private static Task<int> WriteSessionAsync(Invocation run, ClientState state, string directory, JsonObject session, string configPath,
        ConfigOutput output, string what)
    {
        var config = WgQuickFile.Fill(session.Str("wireguard_config")
            ?? throw new CliException(ExitCodes.Unavailable, "the session answer carries no wireguard_config"), state.Device!.PrivateKey);
        PrivateFiles.Write(configPath, config);
        state.Session = new SessionState(session.Str("session_id")!, session.Str("session_key")!, session["node"].Str("name"), configPath);
        state.Save(directory);

        var node = session["node"];
        var addresses = string.Join(", ", session["interface"].Items("addresses").Select(a => a?.GetValue<string>()));
        var summary = new JsonObject
        {
            ["session_id"] = session.Str("session_id"),
            ["state"] = session.Str("state"),
            ["device_id"] = state.Device.Id,
            ["node"] = node?.DeepClone(),
            ["interface"] = session["interface"]?.DeepClone(),
            ["config_path"] = configPath,
        };
        run.Print(summary, w =>
        {
            w.WriteLine($"{what}: session {session.Str("session_id")} on {node.Str("name")} ({node.Str("region")}, {node.Str("endpoint")}), addresses {addresses}");
            w.WriteLine($"wrote {configPath} (mode 0600; it holds this device's private key)");
            w.WriteLine($"bring the tunnel up with: sudo wg-quick up {configPath}");
            if (!run.Get(output.NoQr))
            {
                w.WriteLine();
                w.Write(QrText.Render(config, run.Get(output.Invert)));
                w.WriteLine("scan it with the WireGuard app; the code holds the private key: show it only to your own device");
            }
        });
        return Task.FromResult(ExitCodes.Ok);
    }
}
