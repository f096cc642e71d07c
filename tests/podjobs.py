"""Jobs in real pods on the test bed's node, shared by the pod tests: submitting as alice, finding a job's
pods, the long namespace with its short-lived HDFS, and the Spark 3.5 job that runs beside the Kafka
streaming job (long waits share the one bed, so the CI waits for each token lifetime once)."""

from __future__ import annotations

import base64
import contextlib
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import gssapi
import requests
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from spark_secrets.hadoop.conf import HadoopConf
from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.hadoop.token import Token
from spark_secrets.login.kerberos import keytab_login
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.testbed.bed import KRB5_CONFIG_MAP, RENEWER, RENEWER_PRINCIPAL, Testbed
from spark_secrets.testbed.hadoop import SecureHdfs, TokenLifetimes
from spark_secrets.testbed.spark import (IMAGE_PLUGIN_JAR, JOBS_CONFIG_MAP, JOBS_DIR, node_job_conf,
                                         node_pod_template, spark_env)
from spark_secrets.tokens.fetcher import obtain_tokens, renew_token

from renewers import wait_until

SCRIPTS = Path(__file__).parent / "scripts"
#: Token lifetimes of the long jobs' HDFS. kubelet (syncFrequency 10 s) shows a changed Secret in running
#: containers after about 11 s (at most 12 s measured), so a re-issued token must be written well before the
#: old one lapses: renewing at half-life (--ratio 0.5) leaves every token at least 22 s, and --reissue-before
#: 40s leaves 40 s before the max date. A shorter interval would race kubelet; a longer one makes three max
#: lifetimes take longer than the whole CI run should.
POD_LIFETIMES = TokenLifetimes(renew_interval_ms=45_000, max_lifetime_ms=120_000, key_update_interval_ms=45_000)
LONG_NAMESPACE = "alice-long"
#: The ConfigMap of a namespace's Hadoop client configuration (a SparkApplication's ``spec.hadoopConfigMap``).
HADOOP_CONF_MAP = "alice-hadoop-conf"


def admin_api(bed: Testbed) -> k8s.CoreV1Api:
    assert bed.kube is not None
    return k8s.CoreV1Api(k8s_config.new_client_from_config(str(bed.kube.kubeconfig("admin"))))


def submit_as_alice(bed: Testbed, app: str, template: Path, conf: dict[str, str], script: str, *args: str,
                    hadoop_conf: Path | None = None, namespace: str = "alice", line: str = "4",
                    env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`spark-secrets submit -- spark-submit --deploy-mode cluster ...` as alice, waiting for the job;
    ``line`` "3.5" submits with Spark 3.5 and runs its image."""
    assert bed.kube is not None
    ref = bed.image("spark" if line == "4" else f"spark-{line}")
    settings = {**node_job_conf(ref, bed.kube.server, template), "spark.kubernetes.namespace": namespace, **conf}
    env = spark_env(bed.env("alice", bed.ticket_cache("alice")), line)
    if hadoop_conf is not None:
        env["HADOOP_CONF_DIR"] = str(hadoop_conf)
    env.update(env_extra or {})
    argv = [sys.executable, "-m", "spark_secrets", "submit", "--", "--master", f"k8s://{bed.kube.server}",
            "--deploy-mode", "cluster", "--name", app]
    for key, value in settings.items():
        argv += ["--conf", f"{key}={value}"]
    argv += [f"local://{JOBS_DIR}/{script}", *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)


def job_pods(api: k8s.CoreV1Api, app: str, role: str, namespace: str = "alice") -> list[k8s.V1Pod]:
    drivers = api.list_namespaced_pod(namespace, label_selector=f"spark-role=driver,spark-app-name={app}").items
    if role == "driver":
        return drivers
    selector = drivers[0].metadata.labels["spark-app-selector"]
    return api.list_namespaced_pod(namespace,
                                   label_selector=f"spark-role=executor,spark-app-selector={selector}").items


def driver_ports(base: int) -> dict[str, str]:
    """Ports of a driver's own: declared driver ports are host ports on a host-network node, and two drivers
    asking for the same ones would run one after the other."""
    return {"spark.driver.port": str(base), "spark.driver.blockManager.port": str(base + 1),
            "spark.ui.port": str(base - 3000), "spark.connect.grpc.binding.port": str(base + 7900)}


def prepare_long_namespace(bed: Testbed, cluster: SecureHdfs) -> str:
    """A namespace of alice's for the long jobs, so the renew service pods see only its Secrets: her admin
    rights and SparkApplications there, the job account, krb5.conf, the job scripts and ``cluster``'s client
    configuration."""
    assert bed.kube is not None
    kube, ns = bed.kube, LONG_NAMESPACE
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "alice-admin", "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]})
    kube.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "spark", "namespace": ns}})
    kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "spark-edit", "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                "subjects": [{"kind": "ServiceAccount", "name": "spark", "namespace": ns}]})
    kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": KRB5_CONFIG_MAP, "namespace": ns},
                "data": {"krb5.conf": bed.kdc_required().krb5_conf.read_text()}})
    prepare_job_files(bed, ns, cluster.client_conf_dir())
    return ns


def prepare_job_files(bed: Testbed, namespace: str, hadoop_conf: Path) -> None:
    """alice may manage SparkApplications in ``namespace`` (as a platform team grants); it holds the job
    scripts and the Hadoop client configuration."""
    assert bed.kube is not None
    kube, group, plural = bed.kube, "sparkoperator.k8s.io", "sparkapplications"
    kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "spark-applications", "namespace": namespace},
                "rules": [{"apiGroups": [group], "resources": [plural, f"{plural}/status"],
                           "verbs": ["create", "get", "list", "watch", "delete", "patch", "update"]}]})
    kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "alice-spark-applications", "namespace": namespace},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "spark-applications"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]})
    for name, data in ((HADOOP_CONF_MAP, {f: (hadoop_conf / f).read_text() for f in ("core-site.xml", "hdfs-site.xml")}),
                       (JOBS_CONFIG_MAP, {p.name: p.read_text() for p in sorted(SCRIPTS.glob("*.py"))})):
        kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
                    "data": data})


def webhdfs_status(url: str, token: Token) -> tuple[int, str]:
    """The NameNode's answer to a GETFILESTATUS of alice's home made with ``token`` alone (no Kerberos)."""
    reply = requests.get(f"{url}/webhdfs/v1/user/alice", timeout=60,
                         params={"op": "GETFILESTATUS", "delegation": token.encode_url()})
    return reply.status_code, reply.text[:500]


def log_story(log: str, tail: int = 3000) -> str:
    """A driver log for a failure message: its first lines about tokens, refreshes and failures (where the
    trouble began, which a tail alone loses in a long job), then its last ``tail`` characters."""
    marks = re.compile(r"FAILED|ERROR|Exception|refresh|token file|is missing|expired", re.IGNORECASE)
    early = [line for line in log.splitlines() if marks.search(line)][:40]
    return "\n".join(["first lines of note:", *early, "... last lines:", log[-tail:]])


class Spark35Job:
    """Spark 3.5 in cluster mode (the plugin's Java 8 bytecode, Spark 3.5's pod builders and image) reading
    the pod HDFS until told to stop (a marker file, once its first token is dead). This thread plays the renew
    service on the job's Secret, and kubelet projects each change: garbage bytes, then the key removed, then a
    new token. It starts from the first test that asks for it (the Kafka streaming test, whose wait it shares);
    test_pods.py joins it and judges what it recorded."""

    def __init__(self, bed: Testbed, cluster: SecureHdfs, namespace: str, workdir: Path) -> None:
        self.bed, self.cluster, self.namespace, self.workdir = bed, cluster, namespace, workdir
        self.app = f"spark35-{time.time_ns() % 10**6}"
        #: The job ends at the round that finds this file: after the first token is dead, before the fresh one's
        #: max date (nothing re-issues it here), however long kubelet took to project each change.
        self.marker = f"{cluster.uri}/user/alice/{self.app}-stop"
        self.api = admin_api(bed)
        self.hadoop = HadoopConf.load(cluster.client_conf_dir())
        self.runs: list[subprocess.CompletedProcess[str]] = []
        self.first: list[Token] = []
        self.fresh: list[Token] = []
        self.expiry: dict[str, float] = {}  # each renewed token's last expiry the NameNode gave (epoch s)
        self.renew_errors: list[str] = []  # the test's renewals that failed (each retried)
        #: The NameNode's answers when the job ended, to a read with the first token and with the fresh one.
        self.probes: dict[str, tuple[int, str]] = {}
        self.error: BaseException | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="spark35", daemon=True)

    def start(self) -> Spark35Job:
        self.thread.start()
        return self

    def join(self, seconds: float) -> None:
        self.thread.join(seconds)
        assert not self.thread.is_alive(), f"the Spark 3.5 job did not end in {seconds:.0f} s:\n{self.driver_log()[-3000:]}"
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(60)

    def renewer_auth(self) -> SpnegoAuth:
        login = keytab_login(self.bed.kdc_required().principal(RENEWER_PRINCIPAL), self.bed.renewer_keytab,
                             self.workdir / "renewer-cc")
        return SpnegoAuth(login.credentials)

    def driver_log(self) -> str:
        drivers = job_pods(self.api, self.app, "driver", self.namespace)
        if not drivers or drivers[0].status.phase == "Pending":
            return ""
        return str(self.api.read_namespaced_pod_log(drivers[0].metadata.name, self.namespace, timestamps=True))

    def _secret(self) -> k8s.V1Secret:
        (found,) = self.api.list_namespaced_secret(
            self.namespace, label_selector=f"spark-secrets.io/app-name={self.app}").items
        return found

    def _await_log(self, text: str, what: str, seconds: float) -> None:
        """Until the driver's log shows ``text`` (read every 2 s: the whole log each time); else what the
        driver logged last and which keys the Secret holds, to tell kubelet's delay from the plugin's."""
        began = time.monotonic()
        while text not in (log := self.driver_log()):
            if time.monotonic() - began > seconds or "FAILED at" in log:
                keys = sorted((self._secret().data or {}).keys())
                when = "before the job failed" if "FAILED at" in log else f"in {seconds:.0f} s"
                raise AssertionError(f"{what} {when} (the Secret's keys now: {keys}; the test's failed "
                                     f"renewals: {self.renew_errors[-5:]}):\n{log_story(log)}")
            time.sleep(2)

    def _write(self, data: dict[str, str | None]) -> None:
        self.api.patch_namespaced_secret(self._secret().metadata.name, self.namespace, {"data": data})

    def _run(self) -> None:
        try:
            self._play()
        except BaseException as exc:  # noqa: BLE001 - handed to the test that joins
            self.error = exc

    def _play(self) -> None:
        template = node_pod_template(self.workdir / "template.json", KRB5_CONFIG_MAP)
        conf = {"spark.secrets.hadoop.filesystems": self.cluster.uri, "spark.secrets.renewer": RENEWER,
                "spark.secrets.plugin.jar": IMAGE_PLUGIN_JAR, "spark.executor.instances": "1",
                "spark.hadoop.ipc.client.connection.maxidletime": "1000",  # every round opens a new connection
                **driver_ports(7148)}  # beside the Kafka streaming job's drivers
        job = threading.Thread(target=lambda: self.runs.append(submit_as_alice(
            self.bed, self.app, template, conf, "refresh_job.py", f"{self.cluster.uri}/user/alice/{self.app}",
            "600", "2.5", self.marker, hadoop_conf=self.cluster.client_conf_dir(), namespace=self.namespace, line="3.5")),
            daemon=True)
        job.start()
        auth = self.renewer_auth()
        # The renew service's part, from the Secret's first sight (a busy node may take longer than the 45 s
        # renew interval from the submission to the job's first read): keep whichever tokens the job should
        # hold alive.
        wait_until("the job's Secret never appeared", lambda: bool(self.api.list_namespaced_secret(
            self.namespace, label_selector=f"spark-secrets.io/app-name={self.app}").items), 300)
        self.first = list(Credentials.from_bytes(base64.b64decode(self._secret().data["hadoop-tokens"])))
        first = next(t for t in self.first if t.is_delegation_token)
        renewing = {"first": first}

        def renew() -> None:
            # As the renew service does: a failed renewal (a NameNode slow under the whole suite's load) is
            # tried again soon, not the end of renewing; what failed is kept for the judge's message.
            while not self.stopping.is_set():
                failed = False
                for name, token in list(renewing.items()):
                    try:
                        self.expiry[name] = renew_token(token, auth, conf=self.hadoop) / 1000
                    except Exception as exc:  # noqa: BLE001 - recorded, and retried in 2 s
                        self.renew_errors.append(f"{time.strftime('%H:%M:%S')} {name}: {exc!r}"[:500])
                        failed = True
                self.stopping.wait(2 if failed else 10)

        renewer = threading.Thread(target=renew, daemon=True)
        renewer.start()
        try:
            self._await_log("ROUND 1 ok", "the Spark 3.5 job never read HDFS", 300)
            self._write({"hadoop-tokens": base64.b64encode(b"HDTS\x00\x02garbage").decode()})
            self._await_log("is not a complete Hadoop token file", "the plugin never saw the corrupt file", 120)
            self._write({"hadoop-tokens": None})  # the key goes, and with it the file
            self._await_log("is missing", "the plugin never saw the file missing", 120)
            alice = gssapi.Credentials(usage="initiate", store={"ccache": f"FILE:{self.bed.ticket_cache('alice')}"})
            fresh = obtain_tokens([self.cluster.uri], RENEWER, SpnegoAuth(alice), conf=self.hadoop)
            self.fresh = list(fresh)
            self._write({"hadoop-tokens": base64.b64encode(fresh.to_bytes()).decode()})
            renewing["fresh"] = next(t for t in fresh if t.is_delegation_token)
            del renewing["first"]  # from now on the first token lapses at its last renewal's expiry
            while time.time() < self.expiry["first"] + 15 and job.is_alive():
                time.sleep(1)
            made = self.cluster.fs("-touchz", self.marker, ccache=self.bed.ticket_cache("alice"))
            assert made.returncode == 0, made.stderr.decode()[-2000:]
            job.join(timeout=300)
            # While the fresh token is still renewed here: each token used alone, for the judge.
            self.probes = {name: webhdfs_status(self.cluster.webhdfs_url, token) for name, token in
                           (("first", first), ("fresh", renewing["fresh"]))}
        finally:
            self.stopping.set()
            with contextlib.suppress(RuntimeError):
                renewer.join()
