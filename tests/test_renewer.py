"""The renew service on the real test bed, around token Secrets made by the submission steps (HA
cluster, tokens live 20 s and at most 40 s): its manifests, two replicas behind a Lease, outages,
kills and restarts, and owner-less Secrets. A long job kept alive by the service in real pods, and the
cancellation at its end: ``test_pods.py``; first-sight renewal under kills: ``test_first_sight.py``."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.errors import InvalidTokenError, TokenExpiredError
from spark_secrets.tokens.fetcher import renew_token
from spark_secrets.hadoop.conf import HadoopConf
from spark_secrets.login.kerberos import keytab_login
from spark_secrets.kube.client import KubeClient
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.testbed.bed import RENEWER, RENEWER_NAMESPACE, RENEWER_PRINCIPAL, Testbed
from spark_secrets.testbed.hadoop import SecureHdfs
from spark_secrets.testbed.kube import resource_of
from submit_steps.submission import Submission

from renewers import CONF, RenewerProcess, manifests, wait_until
from conftest import KEY, MAX_LIFETIME_S

pytestmark = pytest.mark.testbed


def _admin(bed: Testbed) -> k8s.CoreV1Api:
    assert bed.kube is not None
    return k8s.CoreV1Api(k8s_config.new_client_from_config(str(bed.kube.kubeconfig("admin"))))


#: Not Kubernetes objects: Prometheus' rule file (tests/test_alerts_unit.py parses it).
NOT_MANIFESTS = {"renewer/alerts.yaml"}


@pytest.mark.parametrize("path", sorted(p for p in CONF.rglob("*.yaml") if str(p.relative_to(CONF)) not in NOT_MANIFESTS),
                         ids=lambda p: str(p.relative_to(CONF)))
def test_deployment_manifests_are_accepted_by_the_api_server(testbed: Testbed, path: Path) -> None:
    """Server-side dry run of every object in conf/: schema, references and RBAC rules are valid."""
    assert testbed.kube is not None
    for manifest in manifests(path):
        if manifest["kind"] == "Namespace":  # really made: a dry run makes nothing to put objects in
            testbed.kube.apply(manifest)
    for manifest in manifests(path):
        meta = manifest["metadata"]
        api = manifest["apiVersion"]
        base = "/api/v1" if api == "v1" else f"/apis/{api}"
        kind = resource_of(str(manifest["kind"]))
        url = f"{base}/namespaces/{meta['namespace']}/{kind}" if meta.get("namespace") else f"{base}/{kind}"
        try:
            testbed.kube.request("POST", f"{url}?dryRun=All&fieldValidation=Strict", manifest)
        except Exception as exc:  # noqa: BLE001 - an existing object (409) is fine, nothing else is
            assert "HTTP 409" in str(exc), f"{path.name} {manifest['kind']}/{meta['name']}: {exc}"


def _make_secret(testbed: Testbed, cluster: SecureHdfs, app: str, monkeypatch: pytest.MonkeyPatch) -> str:
    assert testbed.kube is not None
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{testbed.ticket_cache('alice')}")
    monkeypatch.setenv("HADOOP_CONF_DIR", str(cluster.client_conf_dir()))
    alice = KubeClient.from_config(str(testbed.kube.kubeconfig("alice", namespace="alice")))
    conf = {"spark.app.name": app, "spark.kubernetes.namespace": "alice", "spark.secrets.hadoop.filesystems": "hdfs://ns1",
            "spark.secrets.renewer": RENEWER, "spark.secrets.plugin.jar": "none"}
    spec = Submission(conf, alice, progress=lambda _: None).prepare()
    return spec.secrets[0].name


def _current_token_works(api: k8s.CoreV1Api, name: str, cluster: SecureHdfs, tmp_path: Path) -> None:
    """A JVM with only the token file the Secret holds now lists alice's home directory."""
    token_file = tmp_path / "current.tokens"
    token_file.write_bytes(base64.b64decode(api.read_namespaced_secret(name, "alice").data[KEY]))
    ls = cluster.fs("-ls", "hdfs://ns1/user/alice", token_file=token_file)
    assert ls.returncode == 0, ls.stderr.decode()[-1500:]


def _valid_now(api: k8s.CoreV1Api, name: str) -> bool:
    notes = api.read_namespaced_secret(name, "alice").metadata.annotations
    from spark_secrets.secrets.tokensecret import parse_rfc3339
    return parse_rfc3339(notes["spark-secrets.io/expiry"]) > time.time() * 1000


def test_two_replicas_one_acts_the_other_takes_over_when_it_is_killed(
        testbed: Testbed, ha_hdfs: SecureHdfs, renewer_rbac: None, lease_rbac: None, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    name = _make_secret(testbed, ha_hdfs, "replicated-job", monkeypatch)
    api = _admin(testbed)
    lease = ("--lease", f"{RENEWER_NAMESPACE}/renewer-test-{time.time_ns()}", "--lease-duration", "6s")
    replicas = [RenewerProcess(testbed, ha_hdfs, tmp_path / n, extra=lease) for n in ("a", "b")]
    try:
        for r in replicas:
            r.wait_ready()
        deadline = time.monotonic() + 2 * MAX_LIFETIME_S
        while sum(r.actions() for r in replicas) < 3:  # a renewal and a re-issue or two
            assert time.monotonic() < deadline and _valid_now(api, name)
            time.sleep(0.5)
        leaders = [r for r in replicas if r.metrics()["leader"] == 1]
        assert len(leaders) == 1, [r.metrics() for r in replicas]
        (leader,) = leaders
        (standby,) = [r for r in replicas if r is not leader]
        assert standby.actions() == 0  # exactly one replica acts on the token

        leader.proc.kill()  # a crash mid-cycle: no goodbye, the lease has to run out
        deadline = time.monotonic() + 1.5 * MAX_LIFETIME_S
        while standby.actions() < 2:
            assert time.monotonic() < deadline, standby.log.read_text()[-2000:]
            assert _valid_now(api, name), "the token expired during the takeover"
            time.sleep(0.5)
        assert standby.metrics()["leader"] == 1

        restarted = RenewerProcess(testbed, ha_hdfs, tmp_path / "a2", extra=lease)
        replicas.append(restarted)
        restarted.wait_ready()
        time.sleep(3)
        assert restarted.metrics()["leader"] == 0 and restarted.actions() == 0
        # A graceful stop (SIGTERM, as a deleted pod gets) gives the Lease up: the other replica takes over at
        # its next check (every 2 s here), well before the 6 s lease would have run out.
        # The Lease itself says who holds it (the replicas' leader gauge lags by up to a loop turn).
        assert testbed.kube is not None
        path = f"/apis/coordination.k8s.io/v1/namespaces/{RENEWER_NAMESPACE}/leases/{lease[1].split('/')[1]}"

        def holder() -> str:
            return str((testbed.kube.request("GET", path).get("spec") or {}).get("holderIdentity") or "")  # type: ignore[union-attr]
        before = holder()
        standby.stop()  # returns once the process has exited
        took = wait_until("the Lease was not handed over", lambda: holder() not in ("", before), 15, restarted)
        # Without the release the lease would last its 6 s from the last renewal (every 2 s) after the exit.
        assert took < 4, f"took {took:.1f} s: the stopped leader did not release the Lease"
        assert "released the lease" in standby.log.read_text()
        wait_until("the new holder does not act", lambda: restarted.metrics()["leader"] == 1, 10, restarted)
        print(f"\nhandover after the leader's exit on SIGTERM: {took:.1f} s")
        # The token the Secret holds now still works for a JVM, after all that.
        _current_token_works(api, name, ha_hdfs, tmp_path)
    finally:
        for r in replicas:
            r.stop()
        api.delete_namespaced_secret(name, "alice")


@pytest.mark.parametrize("outage", ["api-server", "namenode"])
def test_an_outage_shorter_than_the_margin_misses_no_renewal(
        testbed: Testbed, ha_hdfs: SecureHdfs, renewer_rbac: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        outage: str) -> None:
    """Renewals fall due during the outage (--ratio 0.3: 6 s after each renewal of a 20 s token), fail,
    are retried within the token's remaining life, and succeed once the server is back."""
    assert testbed.kube is not None
    name = _make_secret(testbed, ha_hdfs, f"outage-{outage}", monkeypatch)
    api = _admin(testbed)
    # A small re-issue window, so that the first token still needs renewals.
    renewer = RenewerProcess(testbed, ha_hdfs, tmp_path, reissue_before="5s", extra=("--ratio", "0.3"))
    try:
        renewer.wait_ready()
        deadline = time.monotonic() + MAX_LIFETIME_S
        while renewer.metrics()["renewals_total"] < 1:
            assert time.monotonic() < deadline, renewer.log.read_text()[-2000:]
            time.sleep(0.2)
        before = renewer.metrics()
        began = time.monotonic()
        if outage == "api-server":
            testbed.kube.stop_apiserver()
            time.sleep(9)
            testbed.kube.start_apiserver()
        else:
            ha_hdfs.namenode.stop()
            time.sleep(7)
            ha_hdfs.start_namenode(ha_hdfs.active)  # restarts, then haadmin makes it active again
        down = time.monotonic() - began
        deadline = time.monotonic() + 30
        acted = before["renewals_total"] + before["reissues_total"]
        while renewer.actions() < acted + 2:  # caught up: renewed or re-issued twice since
            assert time.monotonic() < deadline, renewer.log.read_text()[-3000:]
            time.sleep(0.2)
        after = renewer.metrics()
        assert after["failures_total"] > before["failures_total"], f"nothing fell due in {down:.0f} s of outage"
        assert _valid_now(api, name)
        _current_token_works(api, name, ha_hdfs, tmp_path)
        assert "retrying in" in renewer.log.read_text()
    finally:
        renewer.stop()
        if not testbed.kube.apiserver.running:
            testbed.kube.start_apiserver()
        api.delete_namespaced_secret(name, "alice")


def test_killed_and_restarted_service_resyncs_without_repeating_or_missing(
        testbed: Testbed, ha_hdfs: SecureHdfs, renewer_rbac: None, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Stateless: a restart reads the renewal state from the Secret's annotations, so it neither redoes
    the action the killed process just did nor lets the token lapse."""
    name = _make_secret(testbed, ha_hdfs, "restarted", monkeypatch)
    api = _admin(testbed)
    first = RenewerProcess(testbed, ha_hdfs, tmp_path / "first")
    second = None
    try:
        first.wait_ready()
        deadline = time.monotonic() + MAX_LIFETIME_S
        while first.actions() < 1:
            assert time.monotonic() < deadline, first.log.read_text()[-2000:]
            time.sleep(0.2)
        first.proc.kill()  # mid-cycle, no clean shutdown
        second = RenewerProcess(testbed, ha_hdfs, tmp_path / "second")
        second.wait_ready()
        time.sleep(1.5)
        assert second.actions() == 0, "the restarted service repeated an action that was not due"
        deadline = time.monotonic() + 1.5 * MAX_LIFETIME_S
        while second.actions() < 2:
            assert time.monotonic() < deadline, second.log.read_text()[-2000:]
            assert _valid_now(api, name), "the token lapsed across the restart"
            time.sleep(0.5)
        assert second.metrics()["failures_total"] == 0
        _current_token_works(api, name, ha_hdfs, tmp_path)
    finally:
        first.stop()
        if second is not None:
            second.stop()
        api.delete_namespaced_secret(name, "alice")


def _driver_pod(api: k8s.CoreV1Api, name: str, secret: str) -> k8s.V1Pod:
    """A driver pod object that mounts ``secret`` (the bed has no kubelet, so it stays Pending)."""
    body = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"spark-role": "driver"}},
            "spec": {"containers": [{"name": "spark-kubernetes-driver", "image": "apache/spark:4.0.0",
                                         "imagePullPolicy": "Never"}],
                     "volumes": [{"name": "hadoop-tokens", "secret": {"secretName": secret}}]}}
    return api.create_namespaced_pod("alice", body)


def _gone(api: k8s.CoreV1Api, name: str) -> bool:
    try:
        api.read_namespaced_secret(name, "alice")
        return False
    except k8s.exceptions.ApiException as exc:
        return exc.status == 404


def _cancelled(bed: Testbed, cluster: SecureHdfs, token_file: bytes, tmp_path: Path) -> None:
    """The NameNode no longer knows the token: renewing it as its renewer fails."""
    token = Credentials.from_bytes(token_file).tokens["ha-webhdfs:ns1"]
    login = keytab_login(bed.kdc_required().principal(RENEWER_PRINCIPAL), bed.renewer_keytab, tmp_path / "cc")
    with pytest.raises((InvalidTokenError, TokenExpiredError)):
        renew_token(token, SpnegoAuth(login.credentials), conf=HadoopConf.load(cluster.client_conf_dir()))


def test_owner_less_secrets_are_adopted_by_their_driver_or_cleaned_up(
        testbed: Testbed, ha_hdfs: SecureHdfs, renewer_rbac: None, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets from `conf`/`render` have no owner: the service gives one to the driver pod that mounts it
    (so the garbage collector deletes it with the pod, and the service cancels its token), and deletes
    one that no pod uses after the grace period."""
    api = _admin(testbed)
    used = _make_secret(testbed, ha_hdfs, "adopted", monkeypatch)
    unused = _make_secret(testbed, ha_hdfs, "never-started", monkeypatch)
    files = {n: base64.b64decode(api.read_namespaced_secret(n, "alice").data[KEY]) for n in (used, unused)}
    pod = _driver_pod(api, "adopted-driver", used)
    renewer = RenewerProcess(testbed, ha_hdfs, tmp_path, reissue_before="5s",
                             extra=("--sweep-interval", "1s", "--orphan-grace", "6s"))
    try:
        renewer.wait_ready()

        def owner() -> list[str]:
            refs = api.read_namespaced_secret(used, "alice").metadata.owner_references or []
            return [r.uid for r in refs]
        wait_until("the driver pod did not become the Secret's owner", lambda: owner() == [pod.metadata.uid], 30, renewer)
        wait_until("the unused Secret was not cleaned up", lambda: _gone(api, unused), 30, renewer)
        assert not _gone(api, used), "a Secret in use was deleted"

        # The job ends: its pod goes, the garbage collector takes the Secret, the service cancels its token.
        api.delete_namespaced_pod(pod.metadata.name, "alice", grace_period_seconds=0)
        wait_until("the Secret outlived its driver pod", lambda: _gone(api, used), 30, renewer)
        wait_until("the tokens were not cancelled", lambda: renewer.metrics()["cancellations_total"] >= 2, 30, renewer)
        metrics = renewer.metrics()
        assert (metrics["adoptions_total"], metrics["cleanups_total"]) == (1, 1), metrics
        for data in files.values():
            _cancelled(testbed, ha_hdfs, data, tmp_path)
    finally:
        renewer.stop()
        for name in (used, unused):
            if not _gone(api, name):
                api.delete_namespaced_secret(name, "alice")
        try:
            api.delete_namespaced_pod("adopted-driver", "alice", grace_period_seconds=0)
        except k8s.exceptions.ApiException:
            pass
    assert "now belongs to driver pod adopted-driver" in renewer.log.read_text()


def test_a_real_api_servers_metadata_events_decode_as_json_less_managed_fields(testbed: Testbed) -> None:
    """The watch's cut decode (:mod:`spark_secrets.kube.metadata`) on the real API server's own lines: every
    listed Secret's event is cut (managedFields last, as the decode assumes) and equals ``json.loads`` less that
    field, an annotation holding the field's text included. Control: the lines do carry managedFields."""
    import json

    from spark_secrets.kube.metadata import decode_metadata_event
    from spark_secrets.kube.session import stream_events
    from spark_secrets.kube.client import METADATA_ITEM
    from spark_secrets.secrets.tokensecret import TOKEN_SECRET_SELECTOR

    assert testbed.kube is not None
    ns = "watch-codec"
    testbed.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    labels = dict(part.split("=") for part in TOKEN_SECRET_SELECTOR.split(","))
    tricky = 'x","managedFields":[]}}}'
    for i, note in enumerate(("plain", tricky)):
        testbed.kube.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {
            "name": f"s{i}", "namespace": ns, "labels": labels, "annotations": {"note": note}}, "data": {}})
    kube = KubeClient.from_config(str(testbed.kube.kubeconfig("admin")))
    lines: list[bytes] = []

    def keep(line: bytes) -> dict[str, object]:
        lines.append(line)
        return json.loads(line)  # type: ignore[no-any-return]

    params: dict[str, str | int] = {"watch": "true", "labelSelector": TOKEN_SECRET_SELECTOR, "timeoutSeconds": 5,
                                    "allowWatchBookmarks": "true", "sendInitialEvents": "true",
                                    "resourceVersionMatch": "NotOlderThan"}
    for event in stream_events(kube._session(), kube.access, f"{kube.access.server}/api/v1/namespaces/{ns}/secrets",
                               params, METADATA_ITEM, 5, kube._authorize, "test", keep):
        if event["type"] == "BOOKMARK":
            break
    added = [line for line in lines if line.startswith(b'{"type":"ADDED"')]
    assert len(added) == 2 and all(b'"managedFields":[' in line for line in added)  # control
    for line in added:
        assert line.rfind(b',"managedFields":[') > 0 and line.endswith(b"]}}}")  # the cut applies
        expected = json.loads(line)
        expected["object"]["metadata"].pop("managedFields")
        assert decode_metadata_event(line) == expected
    assert {json.loads(line)["object"]["metadata"]["annotations"]["note"] for line in added} == {"plain", tricky}
