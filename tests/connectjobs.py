"""Notebooks on their users' own Spark Connect servers in pods (issue 32), as one background run judged by
test_pods_connect.py: it mostly waits for token lifetimes, so in the whole suite the Kafka streaming test starts
it (a few minutes in, once the Spark 3.5 job beside it has its driver running) and it goes on while the tests
that follow run.

alice's notebook (a host process with pyspark's Connect client, no Java, and no ticket cache once `connect()`
returned) queries secure HDFS (the pod HDFS: 45 s / 120 s tokens) at intervals across more than three max
lifetimes, with an idle gap longer than one max lifetime in the middle, while the renew service (on the host)
renews and re-issues her server's Secret and the plugin follows it. bob's server is the control: the same server
without the plugin, whose queries fail once its first tokens pass their max date. Between them: alice's client
on bob's server with no token and with her own token is refused. At the end a second `connect()` of alice's
reuses her server; idle for its timeout, it deletes its pod, and the service cancels its tokens."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.secrets.tokensecret import KIND_HADOOP_TOKENS, LABEL_KIND
from spark_secrets.testbed.bed import KRB5_CONFIG_MAP, RENEWER, Testbed
from spark_secrets.testbed.hadoop import SecureHdfs
from spark_secrets.testbed.metastore import HiveMetastore
from spark_secrets.testbed.paths import hadoop_lib, hive_client_jars, hive_client_lib, notebook_python
from spark_secrets.testbed.spark import IMAGE_PLUGIN_JAR, node_job_conf, node_pod_template

from podjobs import POD_LIFETIMES, admin_api, driver_ports
from renewers import RenewerProcess

NAMESPACES = {"alice": "alice-nb", "bob": "bob-nb"}
#: Where the server's driver finds Hive's 4.0 client jars and Hadoop's (a user's image would carry them).
POD_HIVE_LIB, POD_HADOOP_LIB = Path("/opt/hive-client/lib"), Path("/opt/hadoop/lib")
TOKEN_SECRETS = f"{LABEL_KIND}={KIND_HADOOP_TOKENS}"
MAX_S = POD_LIFETIMES.max_lifetime_ms / 1000
#: alice's rounds, as the pause before each (from the end of the one before): three, an idle gap longer than a
#: max lifetime, then one every 25 s or so until past three max lifetimes.
GAP_S = MAX_S + 40
ROUNDS = [0, 25, 25, GAP_S, *[25] * int((2 * MAX_S + 60) // 30)]
IDLE_S = int(GAP_S) + 40  # longer than the gap; the end of the run waits for it
#: bob's control: a round every 20 s until one fails (its first token's max date), at most this many.
CONTROL_ROUNDS = [0, *[20] * int((2 * MAX_S + 20) // 20)]
#: alice's job secrets: a local file's value copied into her server's Secret, and a key of a Secret of her namespace
#: (mounted, never copied); where her server's pods find them.
SECRET_CONF = {"spark.secrets.file.nb-note": "file:{note}", "spark.secrets.file.ca.pem": "k8s:nb-tls#ca.pem"}
SECRET_FILES = {"note": "/mnt/secrets/spark-secrets/nb-note", "ca": "/mnt/secrets/spark-secrets-k8s/nb-tls/ca.pem"}

NOTEBOOK = """
import hashlib, importlib.metadata, json, os, shutil, sys, time
import pyspark
from submit_steps.notebook import connect
conf, target, pauses = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
secret_files = json.loads(os.environ.get("SECRET_FILES", "[]"))  # job secrets the server's pods mount

def digest(text):
    return hashlib.sha256(text.encode()).hexdigest()

def children():  # the commands of this process's children (a JVM would be one)
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat, open(f"/proc/{pid}/comm") as comm:
                if int(stat.read().rsplit(")", 1)[1].split()[1]) == os.getpid():
                    out.append(comm.read().strip())
        except (OSError, ValueError):
            pass
    return out

spark = connect(conf)
os.remove(os.environ["KRB5CCNAME"].removeprefix("FILE:"))  # no Kerberos credentials here from now on
print("CONNECTED", json.dumps({"target": target}), flush=True)
for i, pause in enumerate(pauses):
    time.sleep(pause)
    start = time.time()
    try:
        out = f"{target}/round-{i}"
        spark.range(0, 1000, numPartitions=2).selectExpr(f"id + {i} AS v").write.mode("overwrite").parquet(out)
        spark.read.parquet(out).createOrReplaceTempView("r")
        total = spark.sql("SELECT count(*) AS n, sum(v) AS s FROM r").first()
        ok = (total.n, total.s) == (1000, sum(range(i, 1000 + i)))
        hive = None
        if os.environ.get("HIVE_DB"):  # a Hive table on the Kerberized metastore: a row a round
            db = os.environ["HIVE_DB"]
            spark.sql(f"CREATE DATABASE IF NOT EXISTS {db}")
            spark.sql(f"CREATE TABLE IF NOT EXISTS {db}.rounds (i INT) STORED AS PARQUET")
            spark.sql(f"INSERT INTO {db}.rounds VALUES ({i})")
            hive = spark.sql(f"SELECT count(*) AS n, max(i) AS m FROM {db}.rounds").first().asDict()
            ok = ok and hive == {"n": i + 1, "m": i}
        read = {}
        if i in (0, len(pauses) - 1):  # the job's secrets, as files in the server's pods (read there by Spark)
            read = {path: digest(spark.read.text("file://" + path).first()[0]) for path in secret_files}
        print("ROUND", json.dumps({"i": i, "began": start, "at": time.time(), "ok": ok, "hive": hive, "secrets": read}),
              flush=True)
    except Exception as exc:
        error = str(exc).replace(chr(10), " ")[:1500]
        print("ROUND", json.dumps({"i": i, "began": start, "at": time.time(), "error": error}), flush=True)
        if os.environ.get("STOP_AT_FAILURE"):
            break
print("DONE", json.dumps({"children": children(), "java": shutil.which("java"), "java_home": os.environ.get("JAVA_HOME"),
                          "kerberos": os.path.exists(os.environ["KRB5CCNAME"].removeprefix("FILE:")),
                          "spark_jars": os.path.isdir(os.path.join(os.path.dirname(pyspark.__file__), "jars")),
                          "pyspark": sorted(d.metadata["Name"] for d in importlib.metadata.distributions()
                                            if d.metadata["Name"].lower().startswith("pyspark"))}), flush=True)
"""
KNOCK = """
import sys
from pyspark.sql.connect.session import SparkSession
from spark_secrets.connect.channel import BearerChannelBuilder
url, token = sys.argv[1], sys.argv[2]
builder = SparkSession.builder.remote(url) if token == "-" else SparkSession.builder.channelBuilder(
    BearerChannelBuilder(url, token))
try:
    print("ACCEPTED", builder.getOrCreate().range(3).count())
except Exception as exc:
    print("REFUSED", str(exc).replace(chr(10), " ")[:600])
"""
#: A notebook inside the cluster (a pod of the Spark image, which has the Connect client's packages, resolving names
#: through the node's CoreDNS): where connect()'s ``auto`` address finds the server from there, and a query on it.
IN_CLUSTER = """
import json, os, sys
from pyspark.sql.connect.session import SparkSession
from spark_secrets.connect.channel import BearerChannelBuilder
from spark_secrets.connect.address import server_address
pod = json.loads(sys.argv[1])
host, port, answers = server_address(pod, "auto", 15002, service_ok=True)  # the Service is the pod's own
found = {"host": host, "port": port, "answers": answers}
try:
    builder = SparkSession.builder.channelBuilder(BearerChannelBuilder(f"sc://{host}:{port}", os.environ["TOKEN"]))
    found["count"] = builder.getOrCreate().range(3).count()
except Exception as exc:
    found["error"] = str(exc).replace(chr(10), " ")[:600]
print("IN-CLUSTER", json.dumps(found), flush=True)
"""


def prepare_notebook_namespace(bed: Testbed, user: str) -> str:
    """``user``'s own namespace for notebook servers: their admin rights, the job account, krb5.conf, and the renew
    service's Role there."""
    from renewers import CONF, manifest

    assert bed.kube is not None
    kube, ns = bed.kube, NAMESPACES[user]
    rbac = "rbac.authorization.k8s.io"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    kube.apply(manifest(CONF / "rbac" / "common.yaml", "ClusterRole", "spark-secrets-renewer"))
    for name, role, subject in ((f"{user}-admin", "admin", {"apiGroup": rbac, "kind": "User", "name": user}),
                                ("spark-edit", "edit", {"kind": "ServiceAccount", "name": "spark", "namespace": ns}),
                                ("spark-secrets-renewer-user", "spark-secrets-renewer",
                                 {"apiGroup": rbac, "kind": "User", "name": RENEWER})):
        kube.apply({"apiVersion": f"{rbac}/v1", "kind": "RoleBinding", "metadata": {"name": name, "namespace": ns},
                    "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": role}, "subjects": [subject]})
    kube.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "spark", "namespace": ns}})
    kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": KRB5_CONFIG_MAP, "namespace": ns},
                "data": {"krb5.conf": bed.kdc_required().krb5_conf.read_text()}})
    return ns


def notebook_env(bed: Testbed, cluster: SecureHdfs, user: str, **extra: str) -> dict[str, str]:
    """A notebook process of ``user``'s: their kubeconfig, a fresh ticket cache of theirs and ``cluster``'s client
    configuration (XML files); no Java or Spark."""
    env = {k: v for k, v in bed.env(user, bed.ticket_cache(user)).items()
           if k not in ("JAVA_HOME", "SPARK_HOME", "SPARK_SUBMIT_OPTS")}
    env["HADOOP_CONF_DIR"] = str(cluster.client_conf_dir())
    assert bed.kube is not None
    env["KUBECONFIG"] = str(bed.kube.kubeconfig(user, namespace=NAMESPACES[user]))
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and not (Path(p) / "java").exists())
    return {**env, **extra}


def lines(text: str, tag: str) -> list[dict[str, Any]]:
    return [json.loads(x.split(" ", 1)[1]) for x in text.splitlines() if x.startswith(tag + " ")]


class ConnectRun:
    """The run described in the module's docstring; :meth:`join` hands its record to the judging test."""

    def __init__(self, bed: Testbed, cluster: SecureHdfs, metastore: HiveMetastore, workdir: Path) -> None:
        self.bed, self.cluster, self.metastore, self.workdir = bed, cluster, metastore, workdir
        self.principal = metastore.client_conf()["hive.metastore.kerberos.principal"]
        self.api = admin_api(bed)
        self.out: dict[str, subprocess.CompletedProcess[str]] = {}
        #: Each server's token files, with when each was first seen (epoch s).
        self.history: dict[str, list[tuple[float, bytes]]] = {user: [] for user in NAMESPACES}
        self.servers: dict[str, Any] = {}  # each user's driver pod, as first seen
        self.knocks: dict[str, str] = {}
        self.bearers: dict[str, str] = {}  # alice's server's bearer token, to search other outputs for
        self.logs: dict[str, str] = {}  # alice's driver log, while her server ran
        self.cli: dict[str, subprocess.CompletedProcess[str]] = {}  # alice's status and doctor --connect, meanwhile
        self.config_maps: list[dict[str, str]] = []  # the servers' namespaces' ConfigMaps, while they ran
        self.gone_after: float | None = None  # seconds from alice's last call to her pod's deletion
        self.service: RenewerProcess | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.delay = 0.0
        #: alice's job secrets' values (made here; the notebook prints only their digests).
        self.secrets = {"note": f"note-{os.urandom(8).hex()}", "ca": f"ca-{os.urandom(8).hex()}"}
        self.thread = threading.Thread(target=self._run, name="connect-run", daemon=True)

    def start(self, delay: float = 0) -> ConnectRun:
        """Start the run after ``delay`` seconds (once; a later call does nothing)."""
        if not self.thread.is_alive() and self.thread.ident is None:
            self.delay = delay
            self.thread.start()
        return self

    def join(self, seconds: float) -> None:
        self.thread.join(seconds)
        assert not self.thread.is_alive(), f"the Connect run did not end in {seconds:.0f} s"
        if self.error is not None:
            raise self.error

    def conf(self, user: str, plugin: bool) -> dict[str, str]:
        assert self.bed.kube is not None
        # The Hadoop client files: the notebook's HADOOP_CONF_DIR, which connect() ships as spark-submit does.
        template = node_pod_template(self.workdir / f"{user}-template.json", KRB5_CONFIG_MAP, jobs_config_map=None)
        ports = driver_ports(7198 if user == "alice" else 7208)
        return {**node_job_conf(self.bed.image("spark"), self.bed.kube.server, template, executors=1), **ports,
                "spark.master": f"k8s://{self.bed.kube.server}", "spark.kubernetes.namespace": NAMESPACES[user],
                "spark.app.name": f"{user}-notebook", "spark.secrets.hadoop.filesystems": self.cluster.uri,
                "spark.secrets.renewer": RENEWER, "spark.secrets.plugin.jar": IMAGE_PLUGIN_JAR if plugin else "none",
                "spark.secrets.connect.idleTimeout": f"{IDLE_S}s",
                # Every round opens a new connection, so it presents the token the JVM holds now.
                "spark.hadoop.ipc.client.connection.maxidletime": "1000",
                **({**self.hive(), **{k: v.format(note=self.workdir / "nb-note") for k, v in SECRET_CONF.items()}}
                   if user == "alice" else {})}

    def hive(self) -> dict[str, str]:
        """alice's server also uses the Kerberized metastore (20 s / 40 s tokens): Hive's 4.0 client jars and the
        metastore's warehouse mounted from this host, as a user's image and storage would provide them."""
        ms = self.metastore
        conf = {"spark.secrets.hive.metastoreUris": ms.uri, "spark.secrets.hive.principal": self.principal,
                "spark.sql.catalogImplementation": "hive", "spark.sql.hive.metastore.version": "4.0.1",
                "spark.sql.hive.metastore.jars": "path",
                "spark.sql.hive.metastore.jars.path": hive_client_jars(POD_HIVE_LIB, POD_HADOOP_LIB),
                "spark.hadoop.hive.metastore.uris": ms.uri, "spark.hadoop.hive.metastore.sasl.enabled": "true",
                "spark.hadoop.hive.metastore.kerberos.principal": self.principal,
                "spark.sql.warehouse.dir": f"file://{ms.warehouse}"}
        for role, name, host, path in (("driver", "hive-client", hive_client_lib(), POD_HIVE_LIB),
                                       ("driver", "hadoop-jars", hadoop_lib(), POD_HADOOP_LIB),
                                       ("driver", "warehouse", ms.warehouse, ms.warehouse),
                                       ("executor", "warehouse", ms.warehouse, ms.warehouse)):
            prefix = f"spark.kubernetes.{role}.volumes.hostPath.{name}"
            conf.update({f"{prefix}.mount.path": str(path), f"{prefix}.options.path": str(host),
                         f"{prefix}.mount.readOnly": str(name != "warehouse").lower()})
        return conf

    def script(self, name: str, text: str) -> str:
        """A notebook's code as a file (run as a script: pyspark-client's Connect package, imported from ``-c`` code,
        takes itself for a doctest run and looks for a Spark home)."""
        path = self.workdir / f"{name}.py"
        path.write_text(text)
        return str(path)

    def notebook(self, name: str, user: str, pauses: list[float], **env: str) -> subprocess.Popen[str]:
        """A notebook process: the notebook venv's Python (pyspark-client, no Spark jars); its output goes to files
        (pipes nobody reads while it runs would fill)."""
        target = f"{self.cluster.uri}/user/{user}/notebook-{time.time_ns() % 10**6}"
        # Each notebook its own record of the servers it started: the reusing one ("again") finds alice's server
        # through the API (her token Secret, the bearer Secret her pod owns), as from another machine of hers.
        env.setdefault("XDG_STATE_HOME", str(self.workdir / f"state-{name}"))
        with open(self.workdir / f"{name}.out", "w") as out, open(self.workdir / f"{name}.err", "w") as err:
            return subprocess.Popen([str(notebook_python()), self.script("notebook", NOTEBOOK),
                                     json.dumps(self.conf(user, user == "alice")),
                                     target, json.dumps(pauses)], env=notebook_env(self.bed, self.cluster, user, **env),
                                    text=True, stdout=out, stderr=err)

    def ended(self, name: str, proc: subprocess.Popen[str], seconds: float) -> subprocess.CompletedProcess[str]:
        try:
            proc.wait(seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        done = subprocess.CompletedProcess(proc.args, proc.returncode, (self.workdir / f"{name}.out").read_text(),
                                           (self.workdir / f"{name}.err").read_text())
        self.out[name] = done
        return done

    def knock(self, user: str, url: str, token: str) -> str:
        done = subprocess.run([str(notebook_python()), self.script("knock", KNOCK), url, token],
                              env=notebook_env(self.bed, self.cluster, user),
                              capture_output=True, text=True, timeout=120)
        return done.stdout + done.stderr[-1500:]

    def _watch(self) -> None:
        """Each server's token file, as its Secret changes (and its driver pod, once)."""
        while not self.done.wait(2):
            for user, ns in NAMESPACES.items():
                try:
                    for pod in self.api.list_namespaced_pod(ns, label_selector="spark-secrets.io/connect-user").items:
                        self.servers.setdefault(user, pod)
                    for s in self.api.list_namespaced_secret(ns, label_selector=TOKEN_SECRETS).items:
                        data = base64.b64decode((s.data or {}).get("hadoop-tokens", ""))
                        files = self.history[user]
                        if data and (not files or files[-1][1] != data):
                            files.append((time.time(), data))
                except Exception:  # noqa: BLE001 - the next look will do
                    continue

    def _run(self) -> None:
        watcher = threading.Thread(target=self._watch, daemon=True)
        try:
            time.sleep(self.delay)
            for user in NAMESPACES:
                prepare_notebook_namespace(self.bed, user)
            self.service = RenewerProcess(self.bed, self.cluster, self.workdir / "renewer",
                                          namespaces=tuple(NAMESPACES.values()),
                                          extra=("--hive-metastore-uris", self.metastore.uri,
                                                 "--hive-principal", self.principal))
            self.service.wait_ready()
            watcher.start()
            (self.workdir / "nb-note").write_text(self.secrets["note"])
            self.api.create_namespaced_secret(NAMESPACES["alice"], {
                "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "nb-tls"},
                "stringData": {"ca.pem": self.secrets["ca"]}})
            files = json.dumps(list(SECRET_FILES.values()))
            alice = self.notebook("alice", "alice", ROUNDS, HIVE_DB=f"nb{time.time_ns() % 10**6}", SECRET_FILES=files)
            bob = self.notebook("bob", "bob", CONTROL_ROUNDS, STOP_AT_FAILURE="1")
            self.ended("bob", bob, 900)
            self._knock_on_bobs_server()
            self.ended("alice", alice, 1500)
            self.ended("again", self.notebook("again", "alice", [0], SECRET_FILES=files), 600)
            last_call = time.monotonic()
            while self.api.list_namespaced_pod(NAMESPACES["alice"], label_selector="spark-secrets.io/connect-user").items:
                assert time.monotonic() - last_call < IDLE_S + 180, "alice's idle server was not deleted"
                time.sleep(2)
            self.gone_after = time.monotonic() - last_call
        except BaseException as exc:  # noqa: BLE001 - handed to the test that joins
            self.error = exc
        finally:
            self.done.set()
            for user, ns in NAMESPACES.items():  # bob's control server, and anything a failure left
                for pod in self.api.list_namespaced_pod(ns, label_selector="spark-secrets.io/connect-user").items:
                    self.api.delete_namespaced_pod(pod.metadata.name, ns, grace_period_seconds=0)

    def _knock_on_bobs_server(self) -> None:
        """alice's client on bob's server: with no token, and with her own server's token (both refused)."""
        pods = self.api.list_namespaced_pod(NAMESPACES["bob"], label_selector="spark-secrets.io/connect-user=bob").items
        url = next((line.split("Connect server at ", 1)[1].split()[0] for line in self.out["bob"].stderr.splitlines()
                    if "Connect server at " in line), "")
        alice_pod = self.servers.get("alice")
        if not pods or not url or alice_pod is None:
            self.knocks["missing"] = f"bob's server {pods and pods[0].metadata.name}, url {url!r}, alice's {alice_pod}"
            return
        secret = alice_pod.metadata.annotations["spark-secrets.io/connect-token-secret"]
        alice_token = base64.b64decode(self.api.read_namespaced_secret(secret, NAMESPACES["alice"]).data["token"]).decode()
        self.bearers["alice"] = alice_token
        self.logs["alice"] = self.api.read_namespaced_pod_log(alice_pod.metadata.name, NAMESPACES["alice"])
        self.config_maps = [c.data or {} for ns in NAMESPACES.values() for c in self.api.list_namespaced_config_map(ns).items]
        self.knocks = {"none": self.knock("alice", url, "-"), "alice's": self.knock("alice", url, alice_token)}
        self.knocks["in-cluster"] = self._knock_in_cluster(alice_pod.metadata.name, secret)
        # What alice's status and doctor say while her server runs.
        assert self.bed.kube is not None
        env = notebook_env(self.bed, self.cluster, "alice")
        python = str(notebook_python())  # the notebook's own: status and doctor from a host with pyspark-client only
        self.cli["status"] = subprocess.run([python, "-m", "spark_secrets", "status", "-n", NAMESPACES["alice"]],
                                            env=env, capture_output=True, text=True, timeout=120)
        self.cli["doctor"] = subprocess.run(
            [python, "-m", "spark_secrets", "doctor", "--connect", "--", "--master", f"k8s://{self.bed.kube.server}",
             "--conf", f"spark.kubernetes.namespace={NAMESPACES['alice']}",
             "--conf", f"spark.secrets.hadoop.filesystems={self.cluster.uri}", "--conf", f"spark.secrets.renewer={RENEWER}"],
            env=env, capture_output=True, text=True, timeout=180)

    def _knock_in_cluster(self, server: str, bearer: str) -> str:
        """:data:`IN_CLUSTER` in a pod of alice's namespace (host network and the cluster's DNS, as the bed's job pods
        run), given her server's pod as the API shows it and its bearer token from its Secret (``secretKeyRef``)."""
        ns = NAMESPACES["alice"]
        pod = self.api.api_client.sanitize_for_serialization(self.api.read_namespaced_pod(server, ns))
        self.api.create_namespaced_config_map(ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "nb-knock"},
                                                   "data": {"knock.py": IN_CLUSTER}})
        name = "nb-in-cluster"
        self.api.create_namespaced_pod(ns, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet",
                     "containers": [{"name": "notebook", "image": self.bed.image("spark"), "imagePullPolicy": "Never",
                                     "command": ["python3", "/knock/knock.py", json.dumps(pod)],
                                     "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": bearer, "key": "token"}}}],
                                     "volumeMounts": [{"name": "knock", "mountPath": "/knock"}]}],
                     "volumes": [{"name": "knock", "configMap": {"name": "nb-knock"}}]}})
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            phase = self.api.read_namespaced_pod(name, ns).status.phase
            if phase in ("Succeeded", "Failed"):
                break
            time.sleep(2)
        log = str(self.api.read_namespaced_pod_log(name, ns))
        self.api.delete_namespaced_pod(name, ns, grace_period_seconds=0)
        return log[-2000:]

    def tokens(self, user: str) -> list[tuple[float, Credentials]]:
        return [(seen, Credentials.from_bytes(data)) for seen, data in self.history[user]]
