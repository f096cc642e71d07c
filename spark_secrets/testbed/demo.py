"""The main job on the embedded default: the whole flow as user alice, on the real local test bed.

A development tool like the rest of the test bed: it ships with the source checkout, not the wheel."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from spark_secrets.secrets.tokensecret import ANNOTATION_EXPIRY
from spark_secrets.hadoop.token import describe_token
from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.errors import SparkSecretsError
from spark_secrets.tokens.fetcher import obtain_tokens
from spark_secrets.login.kerberos import current_ticket_cache, keytab_login
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.testbed.bed import RENEWER, RENEWER_PRINCIPAL, Testbed
from spark_secrets.tokens.webhdfs import WebHdfsClient


class _Steps:
    def __init__(self) -> None:
        self.n = 0
        self.failed = 0

    def run(self, title: str, action: Callable[[], list[str]]) -> None:
        self.n += 1
        print(f"\n[{self.n}] {title}", flush=True)
        began = time.monotonic()
        try:
            lines = action()
        except SparkSecretsError as exc:
            self.failed += 1
            print(f"    FAILED: {exc}", flush=True)
            return
        for line in lines:
            print(f"    {line}")
        print(f"    ({time.monotonic() - began:.1f} s)", flush=True)


def run_demo(keep: bool = False) -> int:
    print("spark-secrets demo: a Kerberized HDFS and a Kubernetes cluster with a real node, started locally for you.")
    workdir = Path(tempfile.mkdtemp(prefix="spark-secrets-demo-"))
    bed = Testbed(workdir)
    steps = _Steps()
    try:
        bed.start()
        _flow(bed, steps)
    finally:
        bed.stop()
        if keep:
            print(f"\ntest-bed directory kept: {workdir}")
        else:
            bed.remove()
    print(f"\n{steps.n - steps.failed} of {steps.n} steps succeeded.")
    return 0 if steps.failed == 0 else 1


def _flow(bed: Testbed, steps: _Steps) -> None:
    import os

    assert bed.hdfs is not None and bed.kube is not None
    hdfs, kube = bed.hdfs, bed.kube
    ccache = bed.dir / "krb5cc_alice"
    token_file = bed.dir / "alice.tokens"
    os.environ["KRB5CCNAME"] = f"FILE:{ccache}"
    os.environ["HADOOP_CONF_DIR"] = str(hdfs.client_conf_dir())  # as a Hadoop client machine has it

    for line in bed.describe():
        print(f"    {line}")

    def kinit() -> list[str]:
        bed.ticket_cache("alice", path=ccache)
        cache = current_ticket_cache()
        return [f"ticket cache {ccache}: TGT for {cache.principal}, valid until {cache.expires:%H:%M:%S} UTC"]

    def fetch() -> list[str]:
        creds = obtain_tokens([hdfs.webhdfs_url], renewer=RENEWER, auth=SpnegoAuth())
        creds.save(token_file)
        out = [f"{len(creds)} tokens written to {token_file} (Hadoop token-file format v0, mode 0600):"]
        for alias, token in creds.tokens.items():
            d = describe_token(alias, token)
            out.append(f"  {d['kind']} for {d['service']}: owner {d['owner']}, renewer {d['renewer']}, "
                       f"max {d['max_date']}")
        return out

    def jvm_reads() -> list[str]:
        no_ticket = bed.dir / "no-ticket-cache"
        payload = b"hello from a Spark-less JVM that holds only a delegation token\n"
        put = hdfs.fs("-put", "-f", "-", "/user/alice/demo.txt", ccache=no_ticket, token_file=token_file, input=payload)
        cat = hdfs.fs("-cat", "/user/alice/demo.txt", ccache=no_ticket, token_file=token_file)
        if put.returncode or cat.stdout != payload:
            raise SparkSecretsError("the JVM could not use the token", (put.stderr + cat.stderr).decode()[-300:])
        return ["hadoop fs -put / -cat hdfs:///user/alice/demo.txt with HADOOP_TOKEN_FILE_LOCATION only "
                "(no ticket cache): OK", f"read back: {cat.stdout.decode().strip()!r}"]

    def renew() -> list[str]:
        login = keytab_login(bed.kdc_required().principal(RENEWER_PRINCIPAL), bed.renewer_keytab,
                             bed.dir / "krb5cc_renewer")
        token = Credentials.load(token_file).tokens[hdfs.rpc_token_service]
        expiry = WebHdfsClient(hdfs.webhdfs_url, SpnegoAuth(login.credentials)).renew_delegation_token(token)
        return [f"{login.principal} (keytab) renewed alice's token: expires "
                f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(expiry / 1000))} UTC"]

    def submit() -> list[str]:
        from kubernetes import client as k8s
        from kubernetes import config as k8s_config

        from spark_secrets.kube.client import KubeClient
        from spark_secrets.testbed.bed import KRB5_CONFIG_MAP
        from spark_secrets.testbed.spark import (IMAGE_PLUGIN_JAR, JOBS_CONFIG_MAP, JOBS_DIR, cluster_submit_argv,
                                                 node_job_conf, node_pod_template, spark_env, spark_version)
        from submit_steps.sparkconf import conf_from_submit_args
        from submit_steps.submission import Submission

        conf = {"spark.secrets.hadoop.filesystems": hdfs.uri, "spark.secrets.renewer": RENEWER,
                "spark.secrets.plugin.jar": IMAGE_PLUGIN_JAR}
        admin = k8s.CoreV1Api(k8s_config.new_client_from_config(str(kube.kubeconfig("admin"))))
        if bed.node is not None:  # the job runs in pods on the node, to the end
            job = Path(__file__).parent / "jobs" / "etl_job.py"
            kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": JOBS_CONFIG_MAP, "namespace": "alice"},
                        "data": {job.name: job.read_text()}})
            template = node_pod_template(bed.dir / "pod-template.json", KRB5_CONFIG_MAP)
            conf.update(node_job_conf(bed.node.images_imported["spark"], kube.server, template))
            argv = cluster_submit_argv(kube.server, "alice", "demo-etl", conf=conf, main_class=None,
                                       resource=f"local://{JOBS_DIR}/{job.name}", args=["/user/alice/demo-etl"])
        else:
            argv = cluster_submit_argv(kube.server, "alice", "demo-etl", conf=conf)
        env = spark_env(bed.env("alice", ccache))
        notes: list[str] = []
        alice = KubeClient.from_config(str(kube.kubeconfig("alice", namespace="alice")))
        submission = Submission(conf_from_submit_args(argv[1:], env), alice, progress=notes.append)
        rc = submission.run_spark_submit(argv[1:], spark_submit=argv[0], env=env, log=bed.dir / "spark-submit.log")
        if rc != 0 or submission.owner is None:
            raise SparkSecretsError(f"spark-secrets submit failed (exit {rc})", "; ".join(notes)[-300:])
        pod = alice.read_pod("alice", submission.owner.name)
        secret = alice.read_secret("alice", submission.created[0].name if submission.created else "")
        env_vars = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0].get("env") or []}
        meta, owner = secret["metadata"], secret["metadata"]["ownerReferences"][0]
        phase = pod.get("status", {}).get("phase")
        out = [f"spark-secrets submit -- spark-submit (Spark {spark_version()}) --deploy-mode cluster, as alice:",
               *[f"  {n}" for n in notes],
               f"Secret {meta['name']}: labels " + ", ".join(f"{k}={v}" for k, v in sorted(meta["labels"].items())),
               f"  owned by {owner['kind']} {owner['name']}; expiry {meta['annotations'][ANNOTATION_EXPIRY]}"
               " (an estimate until the renew service's first renewal)",
               f"driver pod {submission.owner.name}: "
               f"HADOOP_TOKEN_FILE_LOCATION={env_vars.get('HADOOP_TOKEN_FILE_LOCATION')}",
               "  no token bytes in its spec, env or Spark conf: only the Secret's name"]
        if bed.node is not None:
            log = admin.read_namespaced_pod_log(submission.owner.name, "alice")
            done = [line for line in log.splitlines() if line.startswith("DEMO ")]
            if phase != "Succeeded" or not done:
                raise SparkSecretsError(f"the job's driver pod ended {phase}", log[-400:])
            out += [f"  ran in pods on the node and ended {phase}: {done[0][5:]}"]
        return out

    def cancel() -> list[str]:
        token = Credentials.load(token_file).tokens[hdfs.rpc_token_service]
        WebHdfsClient(hdfs.webhdfs_url, SpnegoAuth()).cancel_delegation_token(token)
        after = hdfs.fs("-cat", "/user/alice/demo.txt", ccache=bed.dir / "no-ticket-cache", token_file=token_file)
        if after.returncode == 0:
            raise SparkSecretsError("the cancelled token still works")
        return ["alice cancelled her token; the same JVM read now fails, as it must"]

    steps.run("alice runs kinit (MIT KDC, realm " + bed.kdc_required().realm + ")", kinit)
    steps.run("delegation tokens from alice's TGT, over WebHDFS with SPNEGO", fetch)
    steps.run("a JVM with only the token file reads and writes secure HDFS", jvm_reads)
    steps.run("the renew service renews the token with its own keytab", renew)
    steps.run("spark-submit in cluster mode with a per-job token Secret (Kubernetes API server with RBAC)", submit)
    steps.run("end of job: the token is cancelled", cancel)
