"""The renew service as a confused deputy, tried as an attacker would, in every RBAC layout: a forged
identifier, a planted genuine token of someone else's, copied cancel handles, a forged seal and an edited
one; each beside the legitimate case, which the service still renews and re-issues. Real KDC, NameNode and
API server with the owner policy of ``spark-secrets rbac common`` bound (the test bed applies it at start)."""

from __future__ import annotations

import base64
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from spark_secrets.kube import rbac
from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.tokens.fetcher import obtain_tokens
from spark_secrets.hadoop.conf import HadoopConf
from spark_secrets.hadoop.identifier import DelegationTokenIdentifier
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.testbed.bed import RENEWER, Testbed
from spark_secrets.testbed.hadoop import SecureHdfs
from spark_secrets.hadoop.token import Token
from spark_secrets.secrets.tokensecret import (ANNOTATION_FILESYSTEMS, ANNOTATION_LAST_ACTION, ANNOTATION_TOKENS,
                                       ANNOTATION_VERIFIED, DEFAULT_TOKEN_KEY, KIND_HADOOP_TOKENS, LABEL_KIND,
                                       LABEL_MANAGED_BY, LABEL_OWNER, MANAGED_BY)

from renewers import RenewerProcess, SubmittedJob, wait_until
from test_rbac import NAMESPACES, identities, layouts, submit  # noqa: F401 - layouts is a fixture

pytestmark = pytest.mark.testbed


def _api(kubeconfig: Path) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(k8s_config.new_client_from_config(str(kubeconfig)))


def _tokens(bed: Testbed, cluster: SecureHdfs, user: str, monkeypatch: pytest.MonkeyPatch) -> Credentials:
    """Genuine delegation tokens of ``user`` (their own TGT), renewable by the renew service."""
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{bed.ticket_cache(user)}")
    return obtain_tokens([cluster.uri], RENEWER, SpnegoAuth(), conf=HadoopConf.load(cluster.client_conf_dir()))


def _forged(genuine: Credentials, owner: str) -> Credentials:
    """``genuine``'s tokens with the identifier's owner replaced and a random password: what anyone can write."""
    out = Credentials()
    for alias, token in genuine.tokens.items():
        ident = token.decode_identifier()
        assert ident is not None
        fake = DelegationTokenIdentifier(owner, ident.renewer, "", ident.issue_date, ident.max_date,
                                         ident.sequence_number + 1_000_000, ident.master_key_id)
        out.add(Token(fake.encode(), os.urandom(20), token.kind, token.service), alias)
    return out


def _body(name: str, owner: str, creds: Credentials | None, cluster: SecureHdfs,
          annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A Secret labelled and annotated like a submission's token Secret."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": name, "labels": {LABEL_MANAGED_BY: MANAGED_BY, LABEL_KIND: KIND_HADOOP_TOKENS, LABEL_OWNER: owner},
        "annotations": {ANNOTATION_FILESYSTEMS: cluster.uri, **(annotations or {})}},
        "data": {DEFAULT_TOKEN_KEY: base64.b64encode(creds.to_bytes()).decode()} if creds is not None else {}}


def _denied(call: Any) -> str:
    with pytest.raises(ApiException) as refused:
        call()
    assert refused.value.status in (403, 422), refused.value
    return str(refused.value.body)


def _works(cluster: SecureHdfs, creds: Credentials, path: str, tmp_path: Path) -> bool:
    """Whether a JVM holding only ``creds`` lists ``path`` (the NameNode's own judgement of the tokens)."""
    token_file = tmp_path / f"check-{time.monotonic_ns()}.tokens"
    token_file.write_bytes(creds.to_bytes())
    return cluster.fs("-ls", f"{cluster.uri}{path}", token_file=token_file).returncode == 0


def _refused(admin: k8s.CoreV1Api, namespace: str, name: str) -> list[str]:
    events = admin.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
    return [e.message for e in events if e.reason == "TokenRefused"]


def test_forged_planted_and_copied_tokens_are_refused_in_every_layout(
        layouts: Testbed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """alice attacks bob in each layout's namespace; her own job there is renewed and re-issued (the control)."""
    kube, hdfs = layouts.kube, layouts.hdfs
    assert kube is not None and hdfs is not None
    admin = _api(kube.kubeconfig("admin"))
    alice_api = _api(kube.kubeconfig("alice"))
    bob = _tokens(layouts, hdfs, "bob", monkeypatch)
    alice = _tokens(layouts, hdfs, "alice", monkeypatch)
    # bob's own job, sealed by the service: what a leak shows of it (its annotations) is alice's to copy.
    renewer = RenewerProcess(layouts, hdfs, tmp_path / "r", kubeconfig=identities(layouts, "namespace-per-user")[
        "renew service"], namespaces=("spark-bob", *NAMESPACES.values()), reissue_before="119m")
    try:
        renewer.wait_ready()
        admin.create_namespaced_secret("spark-bob", _body("bobs-job", "bob", bob, hdfs))
        wait_until("bob's job was not sealed", lambda: ANNOTATION_VERIFIED in (
            admin.read_namespaced_secret("bobs-job", "spark-bob").metadata.annotations or {}), 30, renewer)
        leaked = admin.read_namespaced_secret("bobs-job", "spark-bob").metadata.annotations
        copied = {ANNOTATION_TOKENS: leaked[ANNOTATION_TOKENS], ANNOTATION_VERIFIED: leaked[ANNOTATION_VERIFIED]}

        attacks: dict[tuple[str, str], bytes] = {}
        controls: dict[str, str] = {}
        for layout, ns in NAMESPACES.items():
            # The label is what the API server checks: alice cannot name bob as the owner, in any layout.
            message = _denied(lambda: alice_api.create_namespaced_secret(ns, _body("as-bob", "bob", bob, hdfs)))
            if layout != "precreated":  # there alice may create no Secret at all (RBAC's own 403)
                assert "alice may not label a Secret as owned by bob" in message, message
            controls[layout] = submit(layouts, layout, monkeypatch, app=f"own-{layout}")
            if layout == "precreated":
                continue  # her one Secret holds her own job; bob's pre-created one is below
            prefix = "alice--" if layout == "controller" else ""  # a shared namespace: the owner in the name
            for attack, creds, notes in (("forged", _forged(alice, "bob"), None), ("planted", bob, None),
                                         ("forged-own", _forged(alice, "alice"), None),
                                         ("copied", _forged(alice, "bob"), copied)):
                body = _body(prefix + attack, "alice", creds, hdfs, notes)
                alice_api.create_namespaced_secret(ns, body)
                attacks[ns, prefix + attack] = base64.b64decode(body["data"][DEFAULT_TOKEN_KEY])
        # In the pre-created layout bob fills his own Secret with a forged token in his name and a copied seal.
        pre = NAMESPACES["precreated"]
        bob_secret = rbac.precreated_secret_name("bob")
        body = _body(bob_secret, "bob", _forged(alice, "bob"), hdfs, copied)
        _api(kube.kubeconfig("bob")).patch_namespaced_secret(bob_secret, pre, {"metadata": body["metadata"],
                                                                              "data": body["data"]})
        attacks[pre, bob_secret] = base64.b64decode(body["data"][DEFAULT_TOKEN_KEY])
        # Nor can the owner label of an existing token Secret change (bob may patch only his own: its label).
        message = _denied(lambda: _api(kube.kubeconfig("bob")).patch_namespaced_secret(
            bob_secret, pre, {"metadata": {"labels": {LABEL_OWNER: "alice"}}}))
        assert "cannot change or be removed" in message, message

        def all_refused() -> bool:
            return all(_refused(admin, ns, name) for ns, name in attacks)
        wait_until("not every attack was refused", all_refused, 60, renewer)

        def reissued(layout: str) -> bool:
            notes = admin.read_namespaced_secret(controls[layout], NAMESPACES[layout]).metadata.annotations or {}
            return notes.get(ANNOTATION_LAST_ACTION) == "re-issued"
        wait_until("alice's own jobs were not re-issued", lambda: all(reissued(lay) for lay in NAMESPACES), 60, renewer)

        reasons = {(ns, name.removeprefix("alice--")): _refused(admin, ns, name)[0] for ns, name in attacks}
        for ns in (n for n in NAMESPACES.values() if n != pre):
            assert "holds tokens of bob, but its owner is alice" in reasons[ns, "forged"]
            assert "holds tokens of bob, but its owner is alice" in reasons[ns, "planted"]
            assert "holds tokens of bob, but its owner is alice" in reasons[ns, "copied"]
            assert "would not renew a token this service never verified" in reasons[ns, "forged-own"]
            assert "wrong password" in reasons[ns, "forged-own"]
        assert "would not renew a token this service never verified" in reasons[pre, bob_secret]
        # Nothing the service wrote: each attack's Secret holds the bytes alice (or bob) wrote, no re-issue.
        for (ns, name), written in attacks.items():
            secret = admin.read_namespaced_secret(name, ns)
            assert base64.b64decode(secret.data[DEFAULT_TOKEN_KEY]) == written, f"{ns}/{name} was rewritten"
            assert ANNOTATION_LAST_ACTION not in (secret.metadata.annotations or {}), f"{ns}/{name} was acted on"
        # The cancel attack: deleting the Secrets that carry bob's copied handles and seal cancels nothing.
        cancelled_before = renewer.metrics()["cancellations_total"]
        for ns, name in attacks:
            if name.removeprefix("alice--") in ("copied", bob_secret):
                admin.delete_namespaced_secret(name, ns)
        time.sleep(3)
        assert renewer.metrics()["cancellations_total"] == cancelled_before
        assert renewer.metrics()["refusals_total"] >= len(attacks)
    finally:
        renewer.stop()
    assert _works(hdfs, bob, "/user/bob", tmp_path), "bob's genuine tokens no longer work"
    # The control of the cancel attack: bob's own Secret deleted cancels his tokens.
    renewer = RenewerProcess(layouts, hdfs, tmp_path / "r2", kubeconfig=identities(layouts, "namespace-per-user")[
        "renew service"], namespaces=("spark-bob",), reissue_before="1m")
    try:
        renewer.wait_ready()
        bob_now = Credentials.from_bytes(base64.b64decode(
            admin.read_namespaced_secret("bobs-job", "spark-bob").data[DEFAULT_TOKEN_KEY]))
        admin.delete_namespaced_secret("bobs-job", "spark-bob")
        wait_until("bob's deleted job was not cancelled", lambda: renewer.metrics()["cancellations_total"] >= 1, 30,
                   renewer)
    finally:
        renewer.stop()
    assert not _works(hdfs, bob_now, "/user/bob", tmp_path)
    log = (tmp_path / "r" / "renewer.log").read_text()
    assert "re-issued spark-bob/bobs-job for bob" in log  # bob's own job: the one re-issue for bob
    for ns, name in attacks:
        assert f"{ns}/{name} for" not in log and f"renewed {ns}/{name} " not in log


def test_a_listed_service_account_submits_for_its_user_and_no_one_else(
        layouts: Testbed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """An Airflow-like worker listed for alice in the policy's ConfigMap submits her job (renewed and re-issued
    under the worker's identity as creator); the same worker naming bob is refused by the API server."""
    kube, hdfs = layouts.kube, layouts.hdfs
    assert kube is not None and hdfs is not None
    ns = NAMESPACES["controller"]
    admin = _api(kube.kubeconfig("admin"))
    kube.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "airflow", "namespace": ns}})
    kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "airflow-token-creator", "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": "spark-secrets-token-creator"},
                "subjects": [{"kind": "ServiceAccount", "name": "airflow", "namespace": ns}]})
    worker = f"system:serviceaccount:{ns}:airflow"
    airflow = _api(kube.service_account_kubeconfig(ns, "airflow"))
    alice = _tokens(layouts, hdfs, "alice", monkeypatch)
    denied = _denied(lambda: airflow.create_namespaced_secret(ns, _body("alice--unlisted", "alice", alice, hdfs)))
    assert f"{worker} may not label a Secret as owned by alice" in denied  # the control: not listed yet
    admin.patch_namespaced_config_map(rbac.OWNERS_CONFIGMAP, rbac.RENEWER_NAMESPACE,
                                      {"data": {"users": f"{worker} = alice\n"}})
    try:
        def admitted() -> bool:
            try:
                airflow.create_namespaced_secret(ns, _body("alice--probe", "alice", None, hdfs), dry_run="All")
                return True
            except ApiException:
                return False
        wait_until("the policy did not take the new parameters", admitted, 30)
        renewer = RenewerProcess(layouts, hdfs, tmp_path, kubeconfig=identities(layouts, "controller")["renew service"],
                                 namespaces=(ns,), reissue_before="119m")
        try:
            renewer.wait_ready()
            airflow.create_namespaced_secret(ns, _body("alice--for-alice", "alice", alice, hdfs))
            denied = _denied(lambda: airflow.create_namespaced_secret(ns, _body("bob--for-bob", "bob", alice, hdfs)))
            assert f"{worker} may not label a Secret as owned by bob" in denied

            def reissued() -> bool:
                notes = admin.read_namespaced_secret("alice--for-alice", ns).metadata.annotations or {}
                return notes.get(ANNOTATION_LAST_ACTION) == "re-issued"
            wait_until("the worker's job for alice was not re-issued", reissued, 60, renewer)
            now = Credentials.from_bytes(base64.b64decode(
                admin.read_namespaced_secret("alice--for-alice", ns).data[DEFAULT_TOKEN_KEY]))
            assert {t.decode_identifier().owner for t in now if t.is_delegation_token} == {"alice"}
            assert _works(hdfs, now, "/user/alice", tmp_path)
        finally:
            renewer.stop()
    finally:
        admin.patch_namespaced_config_map(rbac.OWNERS_CONFIGMAP, rbac.RENEWER_NAMESPACE, {"data": {"users": ""}})


def test_what_was_verified_survives_a_kill_and_an_edited_seal_does_not(
        testbed: Testbed, ha_hdfs: SecureHdfs, renewer_rbac: None, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two jobs sealed at first sight, the service SIGKILLed until both tokens are past their max date: on
    restart the untouched job is re-issued (its seal proves the tokens were genuine), the job whose seal
    alice replaced with the other's is refused (the seal binds one Secret)."""
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{testbed.ticket_cache('alice')}")
    monkeypatch.setenv("HADOOP_CONF_DIR", str(ha_hdfs.client_conf_dir()))
    conf = {"spark.secrets.hadoop.filesystems": "hdfs://ns1"}
    kept, edited = SubmittedJob(testbed, "sealed-kept", conf), SubmittedJob(testbed, "sealed-edited", conf)
    assert testbed.kube is not None
    alice = _api(testbed.kube.kubeconfig("alice"))
    renewer = RenewerProcess(testbed, ha_hdfs, tmp_path / "1", reissue_before="5s")

    admin = kept.api

    def notes(job: SubmittedJob) -> dict[str, str]:
        return dict(admin.read_namespaced_secret(job.name, "alice").metadata.annotations or {})
    wait_until("the jobs were not sealed", lambda: all(ANNOTATION_VERIFIED in notes(j) for j in (kept, edited)), 30,
               renewer)
    os.kill(renewer.proc.pid, signal.SIGKILL)
    renewer.proc.wait()
    first = Credentials.from_bytes(kept.current())
    max_date = min(i.max_date for i in (t.decode_identifier() for t in first) if i is not None)
    alice.patch_namespaced_secret(edited.name, "alice", {"metadata": {"annotations": {
        ANNOTATION_VERIFIED: notes(kept)[ANNOTATION_VERIFIED]}}})
    time.sleep(max(0.0, max_date / 1000 - time.time()) + 1)
    assert not _works(ha_hdfs, first, "/user/alice", tmp_path)  # past its max date: no renewal can save it
    renewer = RenewerProcess(testbed, ha_hdfs, tmp_path / "2", reissue_before="5s")
    try:
        wait_until("the sealed job was not re-issued after the restart",
                   lambda: notes(kept).get(ANNOTATION_LAST_ACTION) == "re-issued", 30, renewer)
        wait_until("the edited job was not refused", lambda: bool(_refused(admin, "alice", edited.name)), 30,
                   renewer)
        assert "never verified" in _refused(admin, "alice", edited.name)[0]
        assert notes(edited).get(ANNOTATION_LAST_ACTION) == "renewed"  # as the first replica left it, nothing since
        assert _works(ha_hdfs, Credentials.from_bytes(kept.current()), "/user/alice", tmp_path)
    finally:
        renewer.stop()
        kept.delete()
        edited.delete()
