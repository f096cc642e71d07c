"""The whole test bed: a realm, secure HDFS and a Kubernetes control plane, provisioned for tests.

Identities:

=================  ==========================================  =================================
who                Kerberos                                    Kubernetes
=================  ==========================================  =================================
``alice``, ``bob``  ``<name>@REALM`` (password), ticket caches   static users, namespace ``<name>``
renew service      ``spark-renewer/localhost@REALM``, keytab   user ``spark-renewer``
HDFS               ``hdfs/localhost``, ``HTTP/localhost``       --
cluster admin      --                                          user ``admin`` (system:masters)
=================  ==========================================  =================================
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from spark_secrets.errors import TestbedError
from spark_secrets.testbed.hadoop import SecureHdfs, TokenLifetimes
from spark_secrets.testbed.kdc import Kdc
from spark_secrets.testbed.kube import KubeControlPlane
from spark_secrets.testbed.node import KubeletNode

USERS = ("alice", "bob")
RENEWER = "spark-renewer"
RENEWER_PRINCIPAL = f"{RENEWER}/localhost"
RENEWER_NAMESPACE = "spark-secrets-system"
#: conf/rbac/common.yaml's ClusterRole that lets the renew service see the owner policy is bound.
ADMISSION_ROLE = "spark-secrets-renewer-admission"
ALL_COMPONENTS = frozenset({"kdc", "hdfs", "kube", "node"})


#: The ConfigMap (in each namespace) holding the realm's krb5.conf for pods.
KRB5_CONFIG_MAP = "testbed-krb5"


def _import_images(node: KubeletNode) -> None:
    """The pause, Spark and renew-service images, built (cached) and imported into the node's
    containerd; ``node.images_imported`` maps "spark" and "renewer" to the references pods use."""
    from spark_secrets.testbed import images
    images.import_image(images.pause_archive(), node.socket, images.PAUSE_IMAGE)
    for name, build in (("spark", images.spark_image_archive), ("renewer", images.renewer_image_archive)):
        ref, archive = build(progress=_progress)
        images.import_image(archive, node.socket, ref)
        node.images_imported[name] = ref


def _progress(message: str) -> None:
    if os.environ.get("SPARK_SECRETS_TESTBED_QUIET") != "1":
        print(f"[testbed] {message}", flush=True)


class Testbed:
    """Starts the chosen components in a fresh directory; ``stop()`` ends them all."""

    __test__ = False

    def __init__(self, workdir: Path | None = None, components: Iterable[str] = ALL_COMPONENTS, *,
                 lifetimes: TokenLifetimes | None = None) -> None:
        chosen = set(components)
        unknown = chosen - ALL_COMPONENTS
        if unknown:
            raise TestbedError(f"unknown test-bed component(s) {sorted(unknown)}", f"choose from {sorted(ALL_COMPONENTS)}")
        if "hdfs" in chosen:
            chosen.add("kdc")
        if "node" in chosen:
            chosen.add("kube")
        self.components = frozenset(chosen)
        self.dir = workdir or Path(tempfile.mkdtemp(prefix="spark-secrets-testbed-"))
        self.passwords = {user: f"{user}-password" for user in USERS}
        self.kdc = Kdc(self.dir / "kdc") if "kdc" in chosen else None
        self.hdfs = SecureHdfs(self.dir / "hdfs", self.kdc, lifetimes=lifetimes) if self.kdc and "hdfs" in chosen else None
        self.kube = KubeControlPlane(self.dir / "kube") if "kube" in chosen else None
        self.node = KubeletNode(self.dir / "node", self.kube, images=_import_images) if (
            self.kube is not None and "node" in chosen) else None
        self.renewer_keytab = self.dir / "kdc" / "spark-renewer.keytab"
        self.timings: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"Testbed({self.dir}, components={sorted(self.components)})"

    def __enter__(self) -> Testbed:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        try:
            if self.kdc is not None:
                self._timed("kdc", self._start_kdc)
            if self.hdfs is not None:
                self._timed("hdfs", self._start_hdfs)
            if self.kube is not None:
                self._timed("kube", self._start_kube)
            if self.node is not None:
                self._timed("node", self._start_node)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for component in (self.node, self.kube, self.hdfs, self.kdc):
            if component is not None:
                component.stop()

    def remove(self) -> None:
        """Stop and delete the working directory (keep it to read logs of a failed run)."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _timed(self, name: str, start: object) -> None:
        _progress(f"starting {name} ...")
        began = time.monotonic()
        start()  # type: ignore[operator]
        self.timings[name] = time.monotonic() - began
        _progress(f"{name} ready in {self.timings[name]:.1f} s")

    def _start_kdc(self) -> None:
        assert self.kdc is not None
        self.kdc.start()
        for user, password in self.passwords.items():
            self.kdc.add_principal(user, password=password)
        self.kdc.add_principal(RENEWER_PRINCIPAL)
        if not self.renewer_keytab.exists():
            self.kdc.export_keytab(self.renewer_keytab, RENEWER_PRINCIPAL)

    def _start_hdfs(self) -> None:
        assert self.hdfs is not None
        self.hdfs.start()
        self.hdfs.make_home_dirs(USERS)

    def _start_kube(self) -> None:
        assert self.kube is not None
        self.kube.start()
        for ns in (*USERS, RENEWER_NAMESPACE):
            self.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        for user in USERS:
            self._grant_namespace(user, user)
            self.kube.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                             "metadata": {"name": "spark", "namespace": user}})
            self.kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                             "metadata": {"name": "spark-edit", "namespace": user},
                             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                             "subjects": [{"kind": "ServiceAccount", "name": "spark", "namespace": user}]})
        self.bind_owners()

    def bind_owners(self) -> None:
        """What an admin applies once per cluster with ``spark-secrets rbac common``: the policies that bind
        token Secrets' owner labels to their creators and, in shared layouts' namespaces, pods to their
        creators' Secrets, and the renew service's right to check the first is bound (here for the service's
        test-bed user, where a cluster binds its service account)."""
        assert self.kube is not None
        from spark_secrets.kube import rbac

        for manifest in rbac.common():
            if manifest["metadata"]["name"] in (rbac.OWNER_POLICY, rbac.OWNERS_CONFIGMAP, rbac.POD_POLICY) or (
                    manifest["kind"] == "ClusterRole" and manifest["metadata"]["name"] == ADMISSION_ROLE):
                self.kube.apply(manifest)
        self.kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                         "metadata": {"name": f"{ADMISSION_ROLE}-user"},
                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                     "name": ADMISSION_ROLE},
                         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": RENEWER}]})

    def _start_node(self) -> None:
        assert self.node is not None and self.kube is not None
        self.node.start()
        if self.kdc is not None:  # what pods need to find the realm: /etc/krb5.conf, by ConfigMap
            for ns in (*USERS, RENEWER_NAMESPACE):
                self.kube.apply({"apiVersion": "v1", "kind": "ConfigMap",
                                 "metadata": {"name": KRB5_CONFIG_MAP, "namespace": ns},
                                 "data": {"krb5.conf": self.kdc.krb5_conf.read_text()}})

    def _grant_namespace(self, user: str, namespace: str) -> None:
        assert self.kube is not None
        self.kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                         "metadata": {"name": f"{user}-admin", "namespace": namespace},
                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
                         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]})

    # -- helpers for tests -----------------------------------------------------------------------
    def image(self, name: str) -> str:
        """The reference of a node image by role: "spark" and "renewer" (imported at start) or
        "spark-3.5" and "spark-operator" (built and imported on first use: only their own tests need them)."""
        if self.node is None:
            raise TestbedError("this test bed has no kubelet node", "start it with the 'node' component")
        if name not in self.node.images_imported:
            from spark_secrets.testbed import images
            builders = {"spark-3.5": images.spark35_image_archive, "spark-operator": images.operator_image_archive}
            if name not in builders:
                raise TestbedError(f"no node image named {name!r}", f"choose one of spark, renewer, {', '.join(builders)}")
            ref, archive = builders[name](progress=_progress)
            images.import_image(archive, self.node.socket, ref)
            self.node.images_imported[name] = ref
        return self.node.images_imported[name]

    def kdc_required(self) -> Kdc:
        if self.kdc is None:
            raise TestbedError("this test bed has no KDC", "start it with the 'kdc' component")
        return self.kdc

    def ticket_cache(self, user: str, *, lifetime: str | None = None, renewable: str | None = "7d",
                     path: Path | None = None) -> Path:
        """A fresh file ticket cache holding ``user``'s TGT (users by password, others by keytab)."""
        kdc = self.kdc_required()
        ccache = path or Path(tempfile.mkstemp(prefix=f"krb5cc_{user.replace('/', '_')}_", dir=self.dir)[1])
        if user in self.passwords:
            kdc.kinit(user, ccache, password=self.passwords[user], lifetime=lifetime, renewable=renewable)
        elif user in (RENEWER, RENEWER_PRINCIPAL):
            kdc.kinit(RENEWER_PRINCIPAL, ccache, keytab=self.renewer_keytab, lifetime=lifetime, renewable=renewable)
        else:
            raise TestbedError(f"no credentials for {user!r} in the test bed", f"use one of {USERS} or {RENEWER}")
        return ccache

    def env(self, user: str | None = None, ccache: Path | None = None) -> dict[str, str]:
        """Environment for a process acting as ``user``: realm, ticket cache, kubeconfig, Hadoop conf."""
        env = self.kdc.env(ccache) if self.kdc else dict(os.environ)
        if self.kube is not None and user is not None:
            env["KUBECONFIG"] = str(self.kube.kubeconfig(user, namespace=user))
        if self.hdfs is not None:
            env["HADOOP_CONF_DIR"] = str(self.hdfs.client_conf_dir())
        if self.kdc is not None:
            # spark-submit's JVM: the realm's krb5.conf, as /etc/krb5.conf would give it on a real host.
            env["SPARK_SUBMIT_OPTS"] = " ".join(self.kdc.java_options())
        return env

    def describe(self) -> list[str]:
        lines = [f"directory  {self.dir}"]
        if self.kdc:
            lines.append(f"kerberos   realm {self.kdc.realm}, KDC 127.0.0.1:{self.kdc.port}, KRB5_CONFIG={self.kdc.krb5_conf}")
        if self.hdfs:
            lines.append(f"hdfs       {self.hdfs.uri} (RPC), WebHDFS {self.hdfs.webhdfs_url} and {self.hdfs.https_url} "
                         f"(SPNEGO; CA {self.hdfs.ca_cert})")
        if self.kube:
            lines.append(f"kubernetes {self.kube.server} (RBAC), kubeconfigs in {self.kube.dir}")
        if self.node:
            lines.append(f"node       {self.node!r}: containerd, kubelet, scheduler, CoreDNS; logs in {self.node.dir}")
        return lines
