#!/usr/bin/env python3
"""Checks deploy/ against the real tools and the real binary.

Run by ctest (tests/deploy/CMakeLists.txt) from the repository root:

  BLOCKSERVE_BIN=build/bin/blockserve python3 tests/deploy/manifests_test.py

- Kubernetes: `kubectl kustomize` renders the base and the example overlay;
  every rendered object (and every other manifest under deploy/k8s)
  validates against the checked-in schema of its kind
  (tests/deploy/k8s_schemas.json); then cross-checks: selectors match pod
  labels, Service target ports exist, probes are gRPC on the container's
  listen port (readiness: the server's health, liveness:
  blockserve.liveness), terminationGracePeriodSeconds covers the preStop
  wait plus --grace-period, every flag in a container's args is one the
  built `blockserve ROLE --help` lists, worker discovery names the ready-only
  headless worker Service, the gateway lists every context replica, the
  model volume is mounted read-only where --model points, the autoscaler's
  metric is the one the Prometheus Adapter rule defines.
- Prometheus: `promtool check config` on the Kubernetes configuration (see
  PrometheusConfigTest for Debian's promtool, which lacks Kubernetes SD).
- Container image: the runtime stage installs the Debian package of every
  shared library `ldd` finds in the built binary; the build stage installs
  every non-test package tools/setup.sh does; non-root user.
- Grafana: dashboard JSON is provisioning-ready (uid, no __inputs, unique
  panel ids, every query on the ${datasource} variable).

Needs python3-yaml and python3-jsonschema (tools/setup.sh installs them);
without kubectl or promtool the tests that need them fail, unless
BLOCKSERVE_ALLOW_MISSING_TOOLS=1 (local use) makes them skip.
"""

import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import unittest

import yaml

try:
    import jsonschema
except ImportError:  # reported by SchemaTest
    jsonschema = None

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy")
K8S = os.path.join(DEPLOY, "k8s")
BLOCKSERVE_BIN = os.environ.get("BLOCKSERVE_BIN", os.path.join(ROOT, "build", "bin", "blockserve"))
ALLOW_MISSING = os.environ.get("BLOCKSERVE_ALLOW_MISSING_TOOLS") == "1"
LIVENESS_SERVICE = "blockserve.liveness"  # services/common/server_runner.h


def need_tool(test, name):
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found (tools/setup.sh installs it)"
        if ALLOW_MISSING:
            test.skipTest(message)
        test.fail(message)
    return path


_renders = {}


def kustomize(test, directory):
    """The objects `kubectl kustomize DIRECTORY` renders (a fresh copy)."""
    if directory not in _renders:
        kubectl = need_tool(test, "kubectl")
        result = subprocess.run([kubectl, "kustomize", directory], capture_output=True, text=True)
        test.assertEqual(result.returncode, 0, f"kubectl kustomize {directory}: {result.stderr}")
        _renders[directory] = result.stdout
    return [d for d in yaml.safe_load_all(_renders[directory]) if d]


def load_yaml_documents(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def flag_values(args, name):
    """Values of --name=VALUE (or --name VALUE) in a container's args."""
    values = []
    for i, arg in enumerate(args):
        if arg.startswith(f"--{name}="):
            values.append(arg.split("=", 1)[1])
        elif arg == f"--{name}" and i + 1 < len(args):
            values.append(args[i + 1])
    return values


def flag_value(args, name):
    values = flag_values(args, name)
    return values[-1] if values else None


def workloads(docs):
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def find(docs, kind, name):
    for d in docs:
        if d["kind"] == kind and d["metadata"]["name"] == name:
            return d
    return None


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def prestop_seconds(container):
    """Seconds the preStop hook waits (sleep N, or context-admin --then-sleep=N)."""
    hook = container.get("lifecycle", {}).get("preStop")
    if not hook:
        return 0.0
    if "sleep" in hook:
        return float(hook["sleep"]["seconds"])
    command = hook["exec"]["command"]
    if os.path.basename(command[0]) == "sleep":
        return float(command[1])
    if command[0].endswith("/sh") and len(command) >= 3:
        match = re.search(r"sleep\s+([0-9.]+)", command[2])
        return float(match.group(1)) if match else 0.0
    value = flag_value(command, "then-sleep")
    return float(value) if value else 0.0


_help_cache = {}


def blockserve_flags(test, role):
    """Flags `blockserve ROLE --help` lists."""
    if role not in _help_cache:
        if not os.access(BLOCKSERVE_BIN, os.X_OK):
            test.fail(f"{BLOCKSERVE_BIN} is not built")
        result = subprocess.run([BLOCKSERVE_BIN, role, "--help"], capture_output=True, text=True)
        test.assertEqual(result.returncode, 0, f"blockserve {role} --help: {result.stderr}")
        _help_cache[role] = set(re.findall(r"--([a-z0-9-]+)", result.stdout + result.stderr))
    return _help_cache[role]


class KustomizationFilesTest(unittest.TestCase):
    def test_every_referenced_file_exists(self):
        for path in glob.glob(os.path.join(K8S, "**", "kustomization.yaml"), recursive=True):
            directory = os.path.dirname(path)
            with open(path) as f:
                k = yaml.safe_load(f)
            for field in ("resources", "bases", "patchesStrategicMerge"):
                for entry in k.get(field, []):
                    target = os.path.join(directory, entry)
                    self.assertTrue(os.path.exists(target), f"{path}: {field} entry {entry} is missing")


class SchemaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(ROOT, "tests", "deploy", "k8s_schemas.json")) as f:
            cls.schemas = json.load(f)

    def validate(self, doc, where):
        if jsonschema is None:
            self.fail("python3-jsonschema is not installed (tools/setup.sh installs it)")
        key = f"{doc.get('apiVersion')}/{doc.get('kind')}"
        self.assertIn(key, self.schemas["kinds"], f"{where}: no schema for {key}")
        schema = dict(self.schemas["kinds"][key])
        schema["definitions"] = self.schemas["definitions"]
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
        self.assertEqual(
            [], [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors],
            f"{where}: {key} {doc['metadata'].get('name')} does not match its schema")

    def test_rendered_base_and_overlay(self):
        for directory in (os.path.join(K8S, "base"), os.path.join(K8S, "overlays", "example")):
            docs = kustomize(self, directory)
            self.assertGreaterEqual(len(docs), 10)
            for doc in docs:
                self.validate(doc, os.path.relpath(directory, ROOT))

    def test_standalone_manifests(self):
        path = os.path.join(K8S, "autoscaling", "keda-scaledobject.yaml")
        for doc in load_yaml_documents(path):
            self.validate(doc, os.path.relpath(path, ROOT))

    def test_schema_rejects_a_misspelt_field(self):
        docs = kustomize(self, os.path.join(K8S, "base"))
        worker = find(docs, "Deployment", "blockserve-worker")
        container = worker["spec"]["template"]["spec"]["containers"][0]
        container["readinesProbe"] = container.pop("readinessProbe")
        with self.assertRaises(AssertionError):
            self.validate(worker, "mutated")


class CrossCheckTest(unittest.TestCase):
    """Consistency of the rendered manifests with each other and the binary."""

    def docs(self, overlay):
        return kustomize(self, os.path.join(K8S, overlay))

    def each_render(self):
        return [(overlay, self.docs(overlay)) for overlay in ("base", "overlays/example")]

    def test_workload_selectors_match_their_pods(self):
        for _, docs in self.each_render():
            for w in workloads(docs):
                labels = w["spec"]["template"]["metadata"]["labels"]
                self.assertTrue(selects(w["spec"]["selector"]["matchLabels"], labels), w["metadata"]["name"])

    def test_services_select_pods_and_ports_exist(self):
        for _, docs in self.each_render():
            for service in by_kind(docs, "Service"):
                selected = [w for w in workloads(docs)
                            if selects(service["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])]
                self.assertEqual(len(selected), 1, f"Service {service['metadata']['name']} selects {len(selected)} workloads")
                ports = {p.get("name"): p["containerPort"]
                         for c in selected[0]["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
                for port in service["spec"]["ports"]:
                    target = port.get("targetPort", port["port"])
                    if isinstance(target, str):
                        self.assertIn(target, ports, f"Service {service['metadata']['name']}: no container port {target}")
                    else:
                        self.assertIn(target, ports.values())

    def test_disruption_budgets_select_a_workload(self):
        for _, docs in self.each_render():
            for pdb in by_kind(docs, "PodDisruptionBudget"):
                selected = [w for w in workloads(docs)
                            if selects(pdb["spec"]["selector"]["matchLabels"], w["spec"]["template"]["metadata"]["labels"])]
                self.assertEqual(len(selected), 1, pdb["metadata"]["name"])
            self.assertEqual(len(by_kind(docs, "PodDisruptionBudget")), 3)

    def test_containers_use_real_flags_probes_and_drain_times(self):
        for _, docs in self.each_render():
            for w in workloads(docs):
                pod = w["spec"]["template"]["spec"]
                for c in pod["containers"]:
                    name = f"{w['metadata']['name']}/{c['name']}"
                    args = c["args"]
                    role = args[0]
                    self.assertIn(role, ("gateway", "context", "worker"), name)
                    known = blockserve_flags(self, role)
                    for arg in args[1:]:
                        self.assertTrue(arg.startswith("--"), f"{name}: {arg}")
                        flag = arg[2:].split("=", 1)[0]
                        self.assertIn(flag, known, f"{name}: `blockserve {role}` has no --{flag}")
                    # gRPC port: --listen, the container port `grpc`, both probes.
                    listen_port = int(flag_value(args, "listen").rsplit(":", 1)[1])
                    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
                    self.assertEqual(ports["grpc"], listen_port, name)
                    self.assertEqual(ports["metrics"], int(flag_value(args, "metrics-port")), name)
                    annotations = w["spec"]["template"]["metadata"].get("annotations", {})
                    self.assertEqual(annotations.get("prometheus.io/port"), str(ports["metrics"]), name)
                    readiness, liveness = c["readinessProbe"], c["livenessProbe"]
                    self.assertEqual(readiness["grpc"]["port"], listen_port, name)
                    self.assertEqual(readiness["grpc"].get("service", ""), "", f"{name}: readiness asks the server's health")
                    self.assertEqual(liveness["grpc"]["port"], listen_port, name)
                    self.assertEqual(liveness["grpc"].get("service"), LIVENESS_SERVICE, name)
                    # Drain: preStop + --grace-period (default 30) + margin.
                    grace = float(flag_value(args, "grace-period") or 30)
                    wait = prestop_seconds(c)
                    self.assertGreater(pod["terminationGracePeriodSeconds"], wait + grace,
                                       f"{name}: terminationGracePeriodSeconds must cover preStop {wait} s + drain {grace} s")
                    hook = c.get("lifecycle", {}).get("preStop", {}).get("exec")
                    if hook and hook["command"][0].endswith("blockserve"):
                        sub = hook["command"][1]
                        sub_flags = blockserve_flags(self, sub)
                        for arg in hook["command"][2:]:
                            self.assertIn(arg[2:].split("=", 1)[0], sub_flags, f"{name} preStop: {arg}")
                        target = flag_value(hook["command"], "context")
                        self.assertEqual(target, f"127.0.0.1:{listen_port}",
                                         f"{name}: preStop must call ContextAdmin on loopback")
                    # Requests, non-root, the model volume.
                    self.assertIn("cpu", c["resources"]["requests"], name)
                    self.assertIn("memory", c["resources"]["requests"], name)
                    self.assertTrue(pod["securityContext"]["runAsNonRoot"], name)
                    self.assertFalse(c["securityContext"]["allowPrivilegeEscalation"], name)
                    model = flag_value(args, "model")
                    self.assertIsNotNone(model, f"{name}: --model")
                    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
                    self.assertIn(model, mounts, f"{name}: --model {model} is not a mount")
                    self.assertTrue(mounts[model].get("readOnly"), name)
                    volume = [v for v in pod["volumes"] if v["name"] == mounts[model]["name"]][0]
                    claim = volume["persistentVolumeClaim"]["claimName"]
                    self.assertIsNotNone(find(docs, "PersistentVolumeClaim", claim), f"{name}: no claim {claim}")
            # The gateway and context drain with a preStop hook.
            for name, kind in (("blockserve-gateway", "Deployment"), ("blockserve-context", "StatefulSet")):
                c = find(docs, kind, name)["spec"]["template"]["spec"]["containers"][0]
                self.assertGreater(prestop_seconds(c), 0, f"{name} needs a preStop wait")

    def test_worker_discovery_follows_the_ready_workers(self):
        for _, docs in self.each_render():
            context = find(docs, "StatefulSet", "blockserve-context")
            args = context["spec"]["template"]["spec"]["containers"][0]["args"]
            workers = flag_value(args, "workers")
            match = re.fullmatch(r"dns:///([a-z0-9-]+):(\d+)", workers)
            self.assertIsNotNone(match, f"context --workers={workers}: expected dns:///SERVICE:PORT")
            service = find(docs, "Service", match.group(1))
            self.assertIsNotNone(service, f"no Service {match.group(1)}")
            self.assertEqual(service["spec"].get("clusterIP"), "None", "worker Service must be headless")
            self.assertFalse(service["spec"].get("publishNotReadyAddresses", False),
                             "worker DNS must list ready pods only")
            worker = find(docs, "Deployment", "blockserve-worker")
            self.assertTrue(selects(service["spec"]["selector"], worker["spec"]["template"]["metadata"]["labels"]))
            worker_port = int(flag_value(worker["spec"]["template"]["spec"]["containers"][0]["args"], "listen").rsplit(":", 1)[1])
            self.assertEqual(int(match.group(2)), worker_port)

    def test_gateway_lists_every_context_replica(self):
        for _, docs in self.each_render():
            context = find(docs, "StatefulSet", "blockserve-context")
            replicas = context["spec"]["replicas"]
            headless = find(docs, "Service", context["spec"]["serviceName"])
            self.assertIsNotNone(headless)
            self.assertEqual(headless["spec"].get("clusterIP"), "None")
            port = int(flag_value(context["spec"]["template"]["spec"]["containers"][0]["args"], "listen").rsplit(":", 1)[1])
            gateway = find(docs, "Deployment", "blockserve-gateway")
            listed = flag_value(gateway["spec"]["template"]["spec"]["containers"][0]["args"], "context").split(",")
            expected = [f"{context['metadata']['name']}-{i}.{headless['metadata']['name']}:{port}" for i in range(replicas)]
            self.assertEqual(sorted(listed), sorted(expected))

    def test_autoscaler_targets_workers_on_the_adapter_metric(self):
        with open(os.path.join(K8S, "autoscaling", "prometheus-adapter-values.yaml")) as f:
            adapter = yaml.safe_load(f)
        defined = {rule["name"]["as"] for rule in adapter["rules"]["custom"]}
        for _, docs in self.each_render():
            hpas = by_kind(docs, "HorizontalPodAutoscaler")
            self.assertEqual(len(hpas), 1)
            hpa = hpas[0]
            target = hpa["spec"]["scaleTargetRef"]
            self.assertEqual((target["kind"], target["name"]), ("Deployment", "blockserve-worker"))
            self.assertIsNotNone(find(docs, "Deployment", "blockserve-worker"))
            self.assertLessEqual(hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"])
            for metric in hpa["spec"]["metrics"]:
                self.assertIn(metric["pods"]["metric"]["name"], defined)
        keda = load_yaml_documents(os.path.join(K8S, "autoscaling", "keda-scaledobject.yaml"))[0]
        self.assertEqual(keda["spec"]["scaleTargetRef"]["name"], "blockserve-worker")

    def test_overlay_changes_what_it_says(self):
        docs = self.docs("overlays/example")
        for d in docs:
            if d["kind"] != "Namespace":
                self.assertEqual(d["metadata"].get("namespace"), "blockserve", d["metadata"]["name"])
        for w in workloads(docs):
            image = w["spec"]["template"]["spec"]["containers"][0]["image"]
            self.assertEqual(image, "registry.example.com/blockserve:0.1.0")
        self.assertEqual(find(docs, "StatefulSet", "blockserve-context")["spec"]["replicas"], 3)
        self.assertEqual(find(docs, "Service", "blockserve-gateway")["spec"]["type"], "LoadBalancer")


class PrometheusConfigTest(unittest.TestCase):
    def test_kubernetes_config(self):
        """promtool check config deploy/prometheus/prometheus.yml.

        Debian 12's Prometheus is built without Kubernetes service discovery
        (its promtool rejects `kubernetes_sd_configs`). Then the check runs
        on a copy whose kubernetes_sd_configs are replaced by an empty
        static_configs, so promtool still checks everything else (relabel
        rules, the rule files), and the SD block is checked here.
        """
        promtool = need_tool(self, "promtool")
        source = os.path.join(DEPLOY, "prometheus", "prometheus.yml")
        result = subprocess.run([promtool, "check", "config", source], capture_output=True, text=True)
        if result.returncode == 0:
            return
        self.assertIn("kubernetes_sd_configs", result.stdout + result.stderr,
                      f"promtool check config: {result.stdout}{result.stderr}")
        with open(source) as f:
            config = yaml.safe_load(f)
        meta = re.compile(r"__meta_kubernetes_(namespace|pod_[a-z_]+)$")
        for job in config["scrape_configs"]:
            sd = job.pop("kubernetes_sd_configs")
            self.assertEqual([s["role"] for s in sd], ["pod"])
            for rule in job["relabel_configs"]:
                for label in rule.get("source_labels", []):
                    self.assertRegex(label, meta)
            job["static_configs"] = [{"targets": []}]
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(os.path.join(DEPLOY, "prometheus", "rules"), os.path.join(tmp, "rules"))
            path = os.path.join(tmp, "prometheus.yml")
            with open(path, "w") as f:
                yaml.safe_dump(config, f)
            result = subprocess.run([promtool, "check", "config", path], capture_output=True, text=True)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_local_config_jobs_match_the_kubernetes_jobs(self):
        with open(os.path.join(DEPLOY, "prometheus", "prometheus-local.yml")) as f:
            local = yaml.safe_load(f)
        jobs = {job["job_name"] for job in local["scrape_configs"]}
        self.assertEqual(jobs, {"blockserve-gateway", "blockserve-context", "blockserve-worker"})
        with open(os.path.join(DEPLOY, "prometheus", "prometheus.yml")) as f:
            k8s = yaml.safe_load(f)
        replacement = [r for r in k8s["scrape_configs"][0]["relabel_configs"] if r.get("target_label") == "job"]
        self.assertEqual(replacement[0]["replacement"], "blockserve-$1")


class ContainerImageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(DEPLOY, "docker", "Dockerfile")) as f:
            cls.dockerfile = f.read()

    def stage(self, name):
        match = re.search(rf"^FROM \S+ AS {name}\n(.*?)(?=^FROM |\Z)", self.dockerfile, re.M | re.S)
        self.assertIsNotNone(match, f"no stage {name}")
        return match.group(1)

    @staticmethod
    def installed_packages(stage_text):
        packages = set()
        for run in re.findall(r"apt-get install([^&]*)", stage_text.replace("\\\n", " ")):
            packages.update(w for w in run.split() if not w.startswith("-"))
        return packages

    def test_runtime_stage_has_every_linked_library(self):
        if not os.access(BLOCKSERVE_BIN, os.X_OK):
            self.fail(f"{BLOCKSERVE_BIN} is not built")
        runtime = self.installed_packages(self.stage("runtime"))
        ldd = subprocess.run(["ldd", BLOCKSERVE_BIN], capture_output=True, text=True, check=True).stdout
        libraries = re.findall(r"=> (/\S+)", ldd)
        self.assertGreater(len(libraries), 5)
        # One dpkg query for all (it is slow to start): "package[:arch]: path".
        candidates = sorted({p for lib in libraries for p in (lib, os.path.realpath(lib))})
        result = subprocess.run(["dpkg", "-S"] + candidates, capture_output=True, text=True)
        owners = {}
        for line in result.stdout.splitlines():
            package, path = line.split(": ", 1)
            owners[path] = package.split(":")[0]
        needed = {}
        for library in libraries:
            owner = owners.get(library) or owners.get(os.path.realpath(library))
            if owner is None:
                continue  # not from a Debian package (a CUDA toolkit in a CUDA build)
            needed.setdefault(owner, library)
        missing = {p: lib for p, lib in needed.items() if p not in runtime and p not in ("libc6",)}
        self.assertEqual(missing, {}, "runtime stage lacks the packages of these linked libraries")

    def test_build_stage_has_the_setup_packages(self):
        with open(os.path.join(ROOT, "tools", "setup.sh")) as f:
            setup = f.read()
        block = re.search(r"^PACKAGES=\((.*?)^\)", setup, re.M | re.S).group(1)
        packages = set(re.sub(r"#.*", "", block).split())
        # Tests, benchmarks and tools, not the build of the binary.
        # The GEMM libraries only serve bench/kernels/gemm_libraries (the image
        # builds with BLOCKSERVE_BUILD_BENCHMARKS=OFF).
        test_only = {"git", "libgtest-dev", "libgmock-dev", "libbenchmark-dev", "prometheus",
                     "kubernetes-client", "libopenblas-pthread-dev", "libblis-openmp-dev",
                     "libdnnl-dev", "libxsmm-dev", "libeigen3-dev"}
        build = {p for p in packages - test_only if not p.startswith("python3-")}
        missing = build - self.installed_packages(self.stage("build"))
        self.assertEqual(missing, set(), "the image's build stage lacks packages tools/setup.sh installs")

    def test_cuda_variant_keeps_up_with_the_cpu_image(self):
        with open(os.path.join(DEPLOY, "docker", "Dockerfile.cuda")) as f:
            cuda = f.read()
        runtime = re.search(r"^FROM \S+ AS runtime\n(.*)", cuda, re.M | re.S).group(1)
        build = re.search(r"^FROM \S+ AS build\n(.*?)(?=^FROM )", cuda, re.M | re.S).group(1)
        cpu_runtime = self.installed_packages(self.stage("runtime")) - {"ca-certificates"}
        cpu_build = self.installed_packages(self.stage("build"))
        self.assertEqual(cpu_runtime - self.installed_packages(runtime), set(),
                         "Dockerfile.cuda's runtime stage lacks packages the CPU image has")
        self.assertEqual(cpu_build - self.installed_packages(build), set(),
                         "Dockerfile.cuda's build stage lacks packages the CPU image has")
        self.assertIn("-DBLOCKSERVE_CUDA=ON", build)
        self.assertRegex(runtime, r"(?m)^USER 10001")

    def test_runs_blockserve_as_non_root(self):
        runtime = self.stage("runtime")
        user = re.findall(r"^USER (\S+)", runtime, re.M)
        self.assertTrue(user and not user[-1].startswith(("root", "0")), "runtime stage must end as a non-root USER")
        self.assertIn('ENTRYPOINT ["/usr/bin/blockserve"]', runtime)
        uid = user[-1].split(":")[0]
        for overlay in ("base",):
            for w in workloads(kustomize(self, os.path.join(K8S, overlay))):
                self.assertEqual(str(w["spec"]["template"]["spec"]["securityContext"]["runAsUser"]), uid)


class GrafanaTest(unittest.TestCase):
    def test_dashboard_is_provisioning_ready(self):
        with open(os.path.join(DEPLOY, "grafana", "blockserve-dashboard.json")) as f:
            dashboard = json.load(f)
        self.assertNotIn("__inputs", dashboard)
        self.assertTrue(dashboard["uid"])
        self.assertIsNone(dashboard.get("id"))
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        self.assertEqual(variables["datasource"]["type"], "datasource")
        self.assertEqual(variables["datasource"]["query"], "prometheus")
        ids = [p["id"] for p in dashboard["panels"]]
        self.assertEqual(len(ids), len(set(ids)), "panel ids must be unique")
        queries = 0
        for panel in dashboard["panels"]:
            grid = panel["gridPos"]
            self.assertLessEqual(grid["x"] + grid["w"], 24, panel["title"])
            if panel["type"] == "row":
                continue
            self.assertEqual(panel["datasource"]["uid"], "${datasource}", panel["title"])
            self.assertTrue(panel["targets"], panel["title"])
            for target in panel["targets"]:
                self.assertEqual(target["datasource"]["uid"], "${datasource}", panel["title"])
                self.assertTrue(target["expr"].strip(), panel["title"])
                self.assertEqual(target["expr"].count("("), target["expr"].count(")"), target["expr"])
                queries += 1
        self.assertGreaterEqual(queries, 20)

    def test_provisioning_files(self):
        with open(os.path.join(DEPLOY, "grafana", "provisioning", "dashboards", "blockserve.yaml")) as f:
            providers = yaml.safe_load(f)
        self.assertEqual(providers["apiVersion"], 1)
        self.assertEqual(providers["providers"][0]["type"], "file")
        with open(os.path.join(DEPLOY, "grafana", "provisioning", "datasources", "prometheus.yaml")) as f:
            sources = yaml.safe_load(f)
        self.assertEqual(sources["datasources"][0]["type"], "prometheus")


if __name__ == "__main__":
    unittest.main(verbosity=2)
