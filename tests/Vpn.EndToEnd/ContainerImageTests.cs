namespace Vpn.EndToEnd;

/// <summary>
/// The images as built here (deploy/docker/build-local.sh: a debootstrap base, a self-contained publish, podman with
/// runc) and run: entry's migrate step with exactly the environment, volumes and securityContext its manifest (the
/// rendered dev overlay) gives it, entry answering /readyz on PostgreSQL as uid 10001 with no capability, the node
/// (the core and wireguard-go images, only NET_ADMIN, in a network namespace the test made) carrying a real session,
/// and the node's resolver (core's resolver-config, then the unbound image as uid 10053) answering on the gateway.
/// </summary>
public sealed class ContainerImageTests(ContainerStackFixture stack) : IClassFixture<ContainerStackFixture>
{
    private static readonly string DevOverlay = Path.Combine(RepoLayout.Root, "deploy", "k8s", "overlays", "dev");

    [Fact] // every podman run has its own deadline
    public async Task EntryImage_MigrateStepWithItsManifestEnvironment_MigratesAnEmptyDatabase()
    {
        var images = stack.EnsureImages();
        var output = TestContext.Current.TestOutputHelper;
        output?.WriteLine($"images built in {VpnStackFixture.Seconds(images.BuildTime)}:\n{images.BuildLog}");
        var documents = await KubernetesManifests.RenderAsync(DevOverlay);
        var (podSpec, container, where) = MigrationStep(documents);
        var url = PostgresServer.ToUrl(await stack.Postgres.CreateDatabaseAsync("img_migrate"));
        var filledAtRandom = new List<string>();
        // Only the database URL is real; any other secret the step were given gets a random token (named in the output).
        using var step = ManifestContainer.From(documents, podSpec, container, (variable, secret, key) =>
        {
            if (variable is "DATABASE_URL" or "DATABASE_URL_FILE")
            {
                return url;
            }
            filledAtRandom.Add($"{variable ?? "(no variable)"} ← secret {secret}/{key}");
            return Convert.ToHexString(RandomNumberGenerator.GetBytes(24)).ToLowerInvariant();
        });
        output?.WriteLine($"{where}: args [{string.Join(' ', step.Arguments)}], settings {string.Join(", ", step.Environment.Keys)}, " +
            $"secret files {string.Join(", ", step.SecretFiles)}; random secrets: {(filledAtRandom.Count == 0 ? "none" : string.Join(", ", filledAtRandom))}");
        Assert.Null(await step.KubeletRefusalAsync(images.Entry));

        var first = await RunEntryStepAsync(images, step);
        Assert.True(first.ExitCode == 0, $"{where} exited {first.ExitCode}:\n{first.StandardError}\n{first.StandardOutput}");
        Assert.Matches(@"migrate: [1-9][0-9]* migration\(s\) applied", first.StandardOutput);
        // Idempotent, as replicas starting together need: a second run finds the schema current.
        var second = await RunEntryStepAsync(images, step);
        Assert.True(second.ExitCode == 0, $"second {where} exited {second.ExitCode}:\n{second.StandardError}");
        Assert.Contains("migrate: 0 migration(s) applied", second.StandardOutput, StringComparison.Ordinal);
        output?.WriteLine($"{first.StandardOutput.Trim()}\n{second.StandardOutput.Trim()}");
    }

    [Fact(Timeout = 300_000)]
    public async Task EntryImage_OnPostgres_AnswersReadyzAsUnprivilegedUser()
    {
        var images = stack.EnsureImages();
        var ct = TestContext.Current.CancellationToken;
        var url = PostgresServer.ToUrl(await stack.Postgres.CreateDatabaseAsync("img_ready"));
        var secrets = Directory.CreateTempSubdirectory("vpn-entry-secrets-");
        var name = Podman.UniqueName("entry");
        BackgroundProcess? entry = null;
        try
        {
            File.SetUnixFileMode(secrets.FullName, (UnixFileMode)0b111_101_101);
            foreach (var (file, content) in new[] { ("database-url", url), ("admin-token", Convert.ToHexString(RandomNumberGenerator.GetBytes(24))) })
            {
                File.WriteAllText(Path.Combine(secrets.FullName, file), content);
                File.SetUnixFileMode(Path.Combine(secrets.FullName, file), (UnixFileMode)0b110_100_100);
            }
            // As the pod runs it: the image's user, read-only root with an empty /tmp, no capability, no_new_privs;
            // the host's network, to reach the throwaway PostgreSQL on loopback. Development settings (the dev overlay's
            // APP_ENV): production would also need the sign-in and core TLS secrets.
            string[] options =
            [
                "--network", "host", "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                "--volume", $"{secrets.FullName}:/var/run/secrets/vpn:ro",
                "--env", "DATABASE_URL_FILE=/var/run/secrets/vpn/database-url", "--env", "ADMIN_API_TOKEN_FILE=/var/run/secrets/vpn/admin-token",
                "--env", "APP_ENV=development",
            ];
            var migrate = await Podman.RunToCompletionAsync(Podman.UniqueName("migrate"), options, images.Entry, ["migrate"], TimeSpan.FromMinutes(2));
            Assert.True(migrate.ExitCode == 0, $"migrate exited {migrate.ExitCode}:\n{migrate.StandardError}\n{migrate.StandardOutput}");

            var baseAddress = new Uri($"http://127.0.0.1:{VpnStackFixture.FreeLoopbackPort()}/");
            entry = Podman.Start(name, [.. options, "--env", $"ASPNETCORE_URLS={baseAddress.ToString().TrimEnd('/')}"], images.Entry, []);
            await VpnStackFixture.WaitForEntryReadyAsync(entry, baseAddress, TimeSpan.FromSeconds(90), "entry container", ct);

            var pid = await Podman.MainPidAsync(name);
            var status = File.ReadAllLines($"/proc/{pid}/status");
            Assert.Equal("10001", status.Single(l => l.StartsWith("Uid:", StringComparison.Ordinal)).Split('\t', StringSplitOptions.RemoveEmptyEntries)[1]);
            Assert.Equal("10001", status.Single(l => l.StartsWith("Gid:", StringComparison.Ordinal)).Split('\t', StringSplitOptions.RemoveEmptyEntries)[1]);
            Assert.Equal(0UL, Podman.EffectiveCapabilities(pid));
            TestContext.Current.TestOutputHelper?.WriteLine($"entry container {name} ready on {baseAddress} as uid/gid 10001, no capability");
        }
        catch (Exception e) when (entry is not null && e is not Xunit.Sdk.XunitException)
        {
            throw new Xunit.Sdk.XunitException($"{e.Message}\n--- entry container output:\n{entry.Output}", e);
        }
        finally
        {
            if (entry is not null)
            {
                await entry.DisposeAsync();
            }
            await Podman.RemoveAsync(name);
            secrets.Delete(recursive: true);
        }
    }

    [Fact(Timeout = 180_000)]
    public async Task NodeImages_OnlyNetAdminInTheTestsNamespace_CarryASessionThroughNat()
    {
        stack.EnsureReady();
        var ct = TestContext.Current.CancellationToken;
        await stack.ReportNodeHealthyAsync(cancellationToken: ct);
        var keys = await WireGuardKeys.GenerateAsync();
        var device = await stack.CreateCustomerWithDeviceAsync(keys, ct);
        var session = await stack.ExpectStatusAsync(await stack.StartSessionAsync(device, ct), HttpStatusCode.Created);
        await stack.Lab.ConfigureClientAsync(WgQuickConfig.Parse(session.Text("wireguard_config")).WithPrivateKey(keys.PrivateKey));

        var (ok, body, attempts) = await stack.Lab.ClientCurlUntilSuccessAsync(TimeSpan.FromSeconds(30), ct);
        await stack.CheckAsync(ok, $"client → {VpnLab.InetUrl} through the containerized node failed:\n{attempts}");
        await stack.CheckAsync(body == VpnLab.NodeInetSideIp, $"inet saw source '{body}', expected the node's NATed address {VpnLab.NodeInetSideIp}.");
        var peers = await stack.NodeWgShowPeersAsync();
        await stack.CheckAsync(peers.Contains(keys.PublicKey), $"node peers [{string.Join(", ", peers)}] lack the device key.");

        // The manifest probes the device with an exec in its container (no shell there): that command must work in the image.
        var documents = await KubernetesManifests.RenderAsync(DevOverlay);
        var deviceSpec = KubernetesManifests.Single(documents, "Deployment", "core-node")["spec"]!["template"]!["spec"]!["containers"]!.AsArray()
            .Single(c => (string?)c!["name"] == "wireguard-go")!;
        var probe = deviceSpec["readinessProbe"]!["exec"]!["command"]!.AsArray().Select(a => ((string)a!).Replace("wg0", stack.NodeLab.NodeInterface, StringComparison.Ordinal));
        var probed = await Podman.RunAsync(["exec", stack.DeviceContainer, .. probe]);
        await stack.CheckAsync(probed.ExitCode == 0 && probed.StandardOutput.Contains(keys.PublicKey, StringComparison.Ordinal),
            $"the manifest's wireguard-go probe failed in the image ({probed.ExitCode}): {probed.StandardError.Trim()}");

        var nodeNamespace = await InodeAsync($"/run/netns/{stack.NodeLab.Node.Name}");
        foreach (var container in new[] { stack.CoreContainer, stack.DeviceContainer })
        {
            var pid = await Podman.MainPidAsync(container);
            var capabilities = Podman.EffectiveCapabilities(pid);
            await stack.CheckAsync(capabilities == Podman.NetAdmin, $"{container} runs with capabilities 0x{capabilities:x}, expected only NET_ADMIN (0x{Podman.NetAdmin:x}).");
            await stack.CheckAsync(await InodeAsync($"/proc/{pid}/ns/net") == nodeNamespace, $"{container} is not in the node namespace {stack.NodeLab.Node.Name}.");
        }
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"inet saw {body}; {stack.CoreContainer} and {stack.DeviceContainer} in {stack.NodeLab.Node.Name} with only NET_ADMIN");
    }

    [Fact(Timeout = 180_000)]
    public async Task ResolverImages_ConfigRenderedByCoreImage_UnboundAnswersOnTheGatewayAsUid10053()
    {
        stack.EnsureReady();
        Prerequisites.RequireExecutable("dig");
        var ct = TestContext.Current.CancellationToken;
        var images = stack.EnsureImages();
        var node = stack.NodeLab.Node;
        var work = stack.NodeLab.WorkDirectory;
        var config = Directory.CreateDirectory(Path.Combine(work, "resolver-config")).FullName;
        File.SetUnixFileMode(config, (UnixFileMode)0b111_101_101);
        var name = Podman.UniqueName("unbound");
        BackgroundProcess? unbound = null;
        try
        {
            // The pod's resolver-config init container: the core image with core's settings, writing the shared volume.
            var render = await Podman.RunToCompletionAsync(Podman.UniqueName("resolver-config"),
                [
                    "--network", $"ns:/run/netns/{node.Name}", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--read-only",
                    "--tmpfs", "/tmp", "--volume", $"{config}:/run/unbound", "--volume", $"{work}:{work}",
                    .. Podman.EnvironmentOptions(stack.CoreEnvironment()),
                ],
                images.Core, ["resolver-config", "--out", "/run/unbound/unbound.conf"], TimeSpan.FromMinutes(2));
            Assert.True(render.ExitCode == 0, $"resolver-config exited {render.ExitCode}:\n{render.StandardError}\n{render.StandardOutput}");

            // The unbound sidecar as the pod runs it: the image's uid 10053, only NET_BIND_SERVICE (no no_new_privs: the
            // binary's file capability binds port 53), read-only root, the rendered config read-only.
            unbound = Podman.Start(name,
                [
                    "--network", $"ns:/run/netns/{node.Name}", "--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE", "--read-only",
                    "--volume", $"{config}:/run/unbound:ro",
                ],
                images.Unbound, []);
            var answer = "";
            await VpnLab.WaitUntilAsync(async () =>
            {
                if (unbound.HasExited)
                {
                    throw new InvalidOperationException($"the unbound container exited: {unbound.Output}");
                }
                // From the gateway address itself: a source in the client pool, which the rendered access-control allows.
                var r = await node.ExecAsync("dig", "+time=1", "+tries=1", "-b", "10.64.0.1", "@10.64.0.1", "localhost", "A");
                answer = r.StandardOutput + r.StandardError;
                return r.ExitCode == 0 && answer.Contains("status: NOERROR", StringComparison.Ordinal);
            }, TimeSpan.FromSeconds(60), () => $"the unbound container did not answer on 10.64.0.1:53 (last: {answer}); output: {unbound.Output}", ct);
            Assert.Contains("127.0.0.1", answer, StringComparison.Ordinal);

            var pid = await Podman.MainPidAsync(name);
            var status = File.ReadAllLines($"/proc/{pid}/status");
            Assert.Equal("10053", status.Single(l => l.StartsWith("Uid:", StringComparison.Ordinal)).Split('\t', StringSplitOptions.RemoveEmptyEntries)[1]);
            Assert.Equal(1UL << 10, Podman.EffectiveCapabilities(pid)); // CAP_NET_BIND_SERVICE only
            TestContext.Current.TestOutputHelper?.WriteLine($"unbound container {name} in {node.Name} answered as uid 10053:\n{answer}");
        }
        finally
        {
            if (unbound is not null)
            {
                await unbound.DisposeAsync();
            }
            await Podman.RemoveAsync(name);
        }
    }

    /// <summary>The one container of the rendered manifests that runs entry's <c>migrate</c> (an init container or a Job).</summary>
    private static (JsonNode PodSpec, JsonNode Container, string Where) MigrationStep(IEnumerable<JsonObject> documents)
    {
        var steps = (
            from document in documents
            let kind = (string?)document["kind"]
            where kind is "Deployment" or "Job" or "StatefulSet"
            let podSpec = document["spec"]!["template"]!["spec"]!
            from list in new[] { "initContainers", "containers" }
            from container in podSpec[list] as JsonArray ?? []
            where ((string?)container!["image"] ?? "").Contains("entry", StringComparison.Ordinal)
                && (container["args"] as JsonArray ?? []).Concat(container["command"] as JsonArray ?? []).Any(a => (string?)a == "migrate")
            select (podSpec, container, $"{kind} {document["metadata"]!["name"]} {list} {container["name"]}")).ToList();
        return Assert.Single(steps);
    }

    private static Task<ProcessResult> RunEntryStepAsync(LocalImages images, ManifestContainer step)
    {
        var name = Podman.UniqueName("migrate");
        return RunAndRemoveAsync();

        async Task<ProcessResult> RunAndRemoveAsync()
        {
            try
            {
                // The host's network: the throwaway PostgreSQL listens on loopback.
                return await Podman.RunToCompletionAsync(name, ["--network", "host", .. step.Options], images.Entry, step.Arguments, TimeSpan.FromMinutes(2));
            }
            finally
            {
                await Podman.RemoveAsync(name);
            }
        }
    }

    private static async Task<string> InodeAsync(string path) =>
        (await ProcessRunner.RunCheckedAsync("stat", "-L", "-c", "%i", path)).Trim();
}
