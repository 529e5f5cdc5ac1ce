namespace Vpn.EndToEnd;

/// <summary>
/// One container of a rendered manifest, as podman runs it here with what the kubelet would give it: its environment
/// (values, ConfigMap and Secret references, envFrom), its volume mounts (secret, Secrets Store CSI, configMap and
/// emptyDir volumes as temporary directories), its merged pod and container securityContext (user, read-only root, capabilities, no_new_privs) and
/// its command and args. Secret contents come from the caller (the manifests hold none); the image is the caller's.
/// </summary>
internal sealed class ManifestContainer : IDisposable
{
    private readonly List<string> _options = [];
    private readonly List<string> _arguments = [];
    private readonly DirectoryInfo _volumes = Directory.CreateTempSubdirectory("vpn-manifest-volumes-");

    private ManifestContainer(string name)
    {
        Name = name;
        // The container's user is not root: it must be able to reach its volumes.
        File.SetUnixFileMode(_volumes.FullName, (UnixFileMode)0b111_101_101);
    }

    public string Name { get; }

    /// <summary>The environment the container gets (secret values included: never print it).</summary>
    public Dictionary<string, string> Environment { get; } = new(StringComparer.Ordinal);

    /// <summary>Files written into secret volumes, by path in the container (contents not kept).</summary>
    public List<string> SecretFiles { get; } = [];

    /// <summary>securityContext.runAsNonRoot without runAsUser: the kubelet then needs the image's user to be numeric and not 0.</summary>
    public bool NeedsNumericImageUser { get; private set; }

    /// <summary>podman run options (before the image).</summary>
    public IReadOnlyList<string> Options => _options;

    /// <summary>What follows the image: the container's args.</summary>
    public IReadOnlyList<string> Arguments => _arguments;

    /// <param name="secret">(the env var that names the value or file, e.g. DATABASE_URL_FILE; the secret; its key) → content.</param>
    public static ManifestContainer From(IReadOnlyList<JsonObject> documents, JsonNode podSpec, JsonNode container,
        Func<string?, string, string, string> secret)
    {
        ArgumentNullException.ThrowIfNull(documents);
        ArgumentNullException.ThrowIfNull(podSpec);
        ArgumentNullException.ThrowIfNull(container);
        ArgumentNullException.ThrowIfNull(secret);
        var result = new ManifestContainer((string)container["name"]!);
        try
        {
            result.AddEnvironment(documents, container, secret);
            result.AddVolumes(documents, podSpec, container, secret);
            result.AddSecurityContext(podSpec, container);
            if (container["command"] is JsonArray command)
            {
                result._options.AddRange(["--entrypoint", command.ToJsonString()]);
            }
            result._arguments.AddRange((container["args"] as JsonArray ?? []).Select(a => (string)a!));
            result._options.AddRange(Podman.EnvironmentOptions(result.Environment.Select(e => KeyValuePair.Create(e.Key, (string?)e.Value))));
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    private void AddEnvironment(IReadOnlyList<JsonObject> documents, JsonNode container, Func<string?, string, string, string> secret)
    {
        foreach (var source in container["envFrom"] as JsonArray ?? [])
        {
            if (source!["configMapRef"]?["name"] is { } configMap)
            {
                foreach (var (key, value) in ConfigMapData(documents, (string)configMap!))
                {
                    Environment[key] = value;
                }
            }
            else
            {
                throw new NotSupportedException($"envFrom {source.ToJsonString()} (only configMapRef) in container {Name}");
            }
        }
        foreach (var variable in container["env"] as JsonArray ?? [])
        {
            var name = (string)variable!["name"]!;
            var from = variable["valueFrom"];
            Environment[name] = from switch
            {
                null => (string?)variable["value"] ?? "",
                _ when from["configMapKeyRef"] is { } r => ConfigMapData(documents, (string)r["name"]!)[(string)r["key"]!],
                _ when from["secretKeyRef"] is { } r => secret(name, (string)r["name"]!, (string)r["key"]!),
                _ => throw new NotSupportedException($"env {name}: valueFrom {from.ToJsonString()} in container {Name}"),
            };
        }
    }

    private static Dictionary<string, string> ConfigMapData(IReadOnlyList<JsonObject> documents, string name)
    {
        var configMap = KubernetesManifests.Single(documents, "ConfigMap", name);
        return (configMap["data"] as JsonObject ?? []).ToDictionary(p => p.Key, p => (string?)p.Value ?? "", StringComparer.Ordinal);
    }

    private void AddVolumes(IReadOnlyList<JsonObject> documents, JsonNode podSpec, JsonNode container, Func<string?, string, string, string> secret)
    {
        var volumes = (podSpec["volumes"] as JsonArray ?? []).ToDictionary(v => (string)v!["name"]!, v => v!, StringComparer.Ordinal);
        var index = 0;
        foreach (var mount in container["volumeMounts"] as JsonArray ?? [])
        {
            var name = (string)mount!["name"]!;
            var mountPath = (string)mount["mountPath"]!;
            var readOnly = (bool?)mount["readOnly"] == true;
            var volume = volumes.TryGetValue(name, out var v) ? v : throw new InvalidOperationException($"container {Name} mounts {name}, which the pod does not declare");
            var directory = Directory.CreateDirectory(Path.Combine(_volumes.FullName, $"{index++}-{name}")).FullName;
            // World-readable like a secret volume's files (defaultMode 0644): the container's user is not root.
            File.SetUnixFileMode(directory, (UnixFileMode)0b111_101_101);
            // A secret, or a Secrets Store CSI volume (its files are secrets too; named by the SecretProviderClass).
            var secretVolume = volume["secret"] ?? volume["csi"];
            if (volume["configMap"] is { } configMapVolume)
            {
                foreach (var (key, value) in ConfigMapData(documents, (string)configMapVolume["name"]!))
                {
                    File.WriteAllText(Path.Combine(directory, key), value);
                    File.SetUnixFileMode(Path.Combine(directory, key), (UnixFileMode)0b110_100_100);
                }
            }
            else if (secretVolume is not null)
            {
                var secretName = (string?)secretVolume["secretName"] ?? (string?)secretVolume["volumeAttributes"]?["secretProviderClass"] ?? name;
                foreach (var (key, path) in SecretFilesOf(secretVolume, mountPath))
                {
                    var inContainer = Path.Combine(mountPath, path);
                    var variable = Environment.FirstOrDefault(e => e.Key.EndsWith("_FILE", StringComparison.Ordinal) && e.Value == inContainer).Key;
                    var file = Path.Combine(directory, path);
                    Directory.CreateDirectory(Path.GetDirectoryName(file)!);
                    File.WriteAllText(file, secret(variable, secretName, key));
                    File.SetUnixFileMode(file, (UnixFileMode)0b110_100_100);
                    SecretFiles.Add(inContainer);
                }
            }
            else if (volume["emptyDir"] is null)
            {
                throw new NotSupportedException($"volume {name} of container {Name}: only secret, CSI (secrets), configMap and emptyDir volumes are run here");
            }
            _options.AddRange(["--volume", $"{directory}:{mountPath}:{(readOnly ? "ro" : "rw")}"]);
        }

        // A secret's files: its items (key → path) when listed; otherwise the keys the container's *_FILE settings name.
        IEnumerable<(string Key, string Path)> SecretFilesOf(JsonNode secretVolume, string mountPath)
        {
            if (secretVolume["items"] is JsonArray items)
            {
                return items.Select(i => ((string)i!["key"]!, (string)i["path"]!));
            }
            var prefix = mountPath.TrimEnd('/') + "/";
            return Environment.Where(e => e.Key.EndsWith("_FILE", StringComparison.Ordinal) && e.Value.StartsWith(prefix, StringComparison.Ordinal))
                .Select(e => (e.Value[prefix.Length..], e.Value[prefix.Length..]));
        }
    }

    private void AddSecurityContext(JsonNode podSpec, JsonNode container)
    {
        var pod = podSpec["securityContext"];
        var own = container["securityContext"];
        JsonNode? Setting(string name) => own?[name] ?? pod?[name];
        var user = Setting("runAsUser");
        var group = Setting("runAsGroup");
        if (user is not null)
        {
            // Numbers as YAML wrote them (ToJsonString: an int stays "10001").
            _options.AddRange(["--user", group is null ? user.ToJsonString() : $"{user.ToJsonString()}:{group.ToJsonString()}"]);
        }
        else if ((bool?)Setting("runAsNonRoot") == true)
        {
            NeedsNumericImageUser = true;
        }
        if ((bool?)own?["readOnlyRootFilesystem"] == true)
        {
            _options.Add("--read-only");
        }
        if ((bool?)own?["allowPrivilegeEscalation"] == false)
        {
            _options.AddRange(["--security-opt", "no-new-privileges"]);
        }
        if ((bool?)own?["privileged"] == true)
        {
            throw new NotSupportedException($"container {Name} is privileged");
        }
        foreach (var drop in own?["capabilities"]?["drop"] as JsonArray ?? [])
        {
            _options.AddRange(["--cap-drop", (string)drop!]);
        }
        foreach (var add in own?["capabilities"]?["add"] as JsonArray ?? [])
        {
            _options.AddRange(["--cap-add", (string)add!]);
        }
    }

    /// <summary>
    /// Null when the kubelet would start the container on <paramref name="image"/>; else why not (runAsNonRoot with no
    /// runAsUser needs a numeric, non-zero image user).
    /// </summary>
    public async Task<string?> KubeletRefusalAsync(string image)
    {
        if (!NeedsNumericImageUser)
        {
            return null;
        }
        var user = (await Podman.RunAsync(["image", "inspect", "--format", "{{.Config.User}}", image])).EnsureSuccess($"podman image inspect {image}").StandardOutput.Trim();
        var uid = user.Split(':')[0];
        return long.TryParse(uid, NumberStyles.None, CultureInfo.InvariantCulture, out var number)
            ? number == 0 ? $"container {Name}: runAsNonRoot but the image runs as uid 0" : null
            : $"container {Name}: runAsNonRoot with no runAsUser and the image's non-numeric user '{user}' (the kubelet refuses: non-numeric user)";
    }

    public void Dispose()
    {
        try
        {
            _volumes.Delete(recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
