"""A real Kubernetes node on this machine: containerd + runc, CNI bridge, kubelet, kube-scheduler and
CoreDNS, registered with the test bed's API server as node ``localhost``.

Pods run for real: kubelet projects Secrets into tmpfs volumes, the scheduler places pods, CoreDNS
answers ``<svc>.<ns>.svc.cluster.local`` from EndpointSlices. Images come from OCI archives built here
(:mod:`spark_secrets.testbed.images`) and imported into containerd; pods use
``imagePullPolicy: Never``.

Networking: the bridge ``ssbed0`` is 10.244.0.1/24 (the node IP and the DNS address). The test bed's
KDC, NameNodes and API server listen on the host's loopback under the names in their principals
(``localhost``), so Spark and renew-service pods run with ``hostNetwork: true`` (a pod template) and
``dnsPolicy: ClusterFirstWithHostNet``: they reach those services as a host process would, and the
driver's Service name still resolves through the cluster DNS to the driver pod's IP.

Needs root (network interfaces, mounts, cgroups). :meth:`KubeletNode.stop` leaves no processes,
mounts or interfaces behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from spark_secrets.errors import TestbedError
from spark_secrets.testbed.daemon import Daemon, port_open
from spark_secrets.testbed.kube import ADMIN, KubeControlPlane
from spark_secrets.testbed.paths import INSTALL_HINT, cache_dir, kube_binary, system_binary

BRIDGE = "ssbed0"
NODE_IP = "10.244.0.1"
POD_SUBNET = "10.244.0.0/24"
NODE_NAME = "localhost"
CLUSTER_DOMAIN = "cluster.local"
#: How often kubelet re-reads pods' Secrets (its default is 60 s; propagation then takes about 73 s).
DEFAULT_SYNC_FREQUENCY = "10s"
KUBELET_PORT = 10250
KUBELET_HEALTH_PORT = 10248


def coredns_binary() -> Path:
    path = cache_dir() / "coredns" / "bin" / "coredns"
    if not os.access(path, os.X_OK):
        raise TestbedError(f"coredns not found at {path}", INSTALL_HINT)
    return path


def _run(argv: list[str], check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise TestbedError(f"{' '.join(argv[:4])} failed (exit {proc.returncode})", proc.stderr.strip()[-400:])
    return proc


class KubeletNode:
    """One worker node for the test bed's control plane; ``start()`` returns once it is Ready."""

    def __init__(self, workdir: Path, control_plane: KubeControlPlane, *,
                 sync_frequency: str = DEFAULT_SYNC_FREQUENCY,
                 images: Callable[[KubeletNode], None] | None = None) -> None:
        self.dir = workdir
        self.kube = control_plane
        self.sync_frequency = sync_frequency
        #: Called once containerd runs, to import the images pods use.
        self.images = images
        self.containerd_dir = workdir / "containerd"
        self.socket = self.containerd_dir / "containerd.sock"
        self.kubelet_dir = workdir / "kubelet"
        self.containerd = Daemon("containerd", [], workdir)
        self.kubelet = Daemon("kubelet", [], workdir)
        self.scheduler = Daemon("kube-scheduler", [], workdir)
        self.coredns = Daemon("coredns", [], workdir)
        self._made_bridge = False
        self._started_kubelet = False
        #: Images the ``images`` callback imported, by role ("spark", "renewer") -> reference.
        self.images_imported: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"KubeletNode({NODE_NAME}, ip={NODE_IP}, running={self.running})"

    @property
    def running(self) -> bool:
        return all(d.running for d in (self.containerd, self.kubelet, self.scheduler, self.coredns))

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if os.geteuid() != 0:
            raise TestbedError("the kubelet node needs root (network interfaces, mounts, cgroups)",
                               "run the tests as root, or leave the 'node' component out")
        for name, package in (("containerd", "containerd"), ("runc", "runc"), ("ctr", "containerd"),
                              ("ip", "iproute2"), ("iptables", "iptables")):
            system_binary(name, package)
        if not Path("/usr/lib/cni/bridge").exists():
            raise TestbedError("CNI plugins not found in /usr/lib/cni", INSTALL_HINT)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._bridge_up()
        self._start_containerd()
        if self.images is not None:
            self.images(self)
        self._start_kubelet()
        self._start_scheduler()
        self._start_coredns()
        self._wait_ready()

    def stop(self) -> None:
        """Kubelet first (so it restarts nothing), then every container, containerd, the mounts, the bridge."""
        for daemon in (self.coredns, self.scheduler, self.kubelet):
            daemon.stop()
        if self.containerd.running:
            self._stop_containers()
        self.containerd.stop()
        self._kill_shims()
        self._unmount_all()
        self._bridge_down()
        for link in self._container_log_links():  # kubelet's /var/log/containers entries for our pods
            link.unlink(missing_ok=True)
        if self._started_kubelet:
            _remove_kubelet_chains()
            _remove_pod_cgroups()

    # -- network ---------------------------------------------------------------------------------
    def _bridge_up(self) -> None:
        if _run(["ip", "link", "show", BRIDGE], check=False).returncode != 0:
            _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
            self._made_bridge = True
        addrs = _run(["ip", "-4", "addr", "show", "dev", BRIDGE]).stdout
        if NODE_IP not in addrs:
            _run(["ip", "addr", "add", f"{NODE_IP}/24", "dev", BRIDGE])
        _run(["ip", "link", "set", BRIDGE, "up"])
        self._made_bridge = True

    def _bridge_down(self) -> None:
        if not self._made_bridge:
            return
        links = _run(["ip", "-o", "link", "show", "master", BRIDGE], check=False).stdout
        for veth in re.findall(r"^\d+: ([^@:]+)", links, re.M):
            _run(["ip", "link", "del", veth], check=False)
        _run(["ip", "link", "del", BRIDGE], check=False)
        self._made_bridge = False

    # -- containerd ------------------------------------------------------------------------------
    def _start_containerd(self) -> None:
        d = self.containerd_dir
        for sub in ("root", "state", "opt"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        cni = self.dir / "cni"
        (cni / "net.d").mkdir(parents=True, exist_ok=True)
        (cni / "net.d" / "10-bed.conflist").write_text(json.dumps({
            "cniVersion": "0.4.0", "name": "bed",
            "plugins": [{"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False, "hairpinMode": True,
                         "ipam": {"type": "host-local", "dataDir": str(cni / "ipam"),
                                  "ranges": [[{"subnet": POD_SUBNET, "gateway": NODE_IP}]],
                                  "routes": [{"dst": "0.0.0.0/0"}]}},
                        {"type": "portmap", "capabilities": {"portMappings": True}}]}, indent=1))
        from spark_secrets.testbed.images import PAUSE_IMAGE  # the sandbox image kubelet asks for
        # restrict_oom_score_adj: root in these VMs lacks CAP_SYS_RESOURCE, and runc fails to raise a
        # container's oom_score_adj without it ("can't get final child's PID from pipe").
        config = f"""version = 2
root = "{d / 'root'}"
state = "{d / 'state'}"
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{self.socket}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d / 'opt'}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{self.dir / 'registries'}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni / 'net.d'}"
    max_conf_num = 1
"""
        (d / "config.toml").write_text(config)
        # Images come only from archives imported here: a pull that slips through goes to a closed
        # local port, never to a public registry.
        for registry in ("docker.io", "_default", "registry.k8s.io", "ghcr.io", "quay.io", "localhost"):
            hosts = self.dir / "registries" / registry
            hosts.mkdir(parents=True, exist_ok=True)
            (hosts / "hosts.toml").write_text('server = "http://127.0.0.1:9"\n')
        self.containerd = Daemon("containerd", [str(system_binary("containerd", "containerd")),
                                                "--config", str(d / "config.toml")], self.dir)
        self.containerd.start()
        self.containerd.wait_until(lambda: self.ctr("version").returncode == 0, 60, "serving")

    def ctr(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """``ctr`` against this node's containerd, in kubelet's ``k8s.io`` namespace."""
        return subprocess.run([str(system_binary("ctr", "containerd")), "--address", str(self.socket),
                               "-n", "k8s.io", *args], capture_output=True, text=True, timeout=timeout)

    def _stop_containers(self) -> None:
        tasks = self.ctr("tasks", "ls", "-q", timeout=30).stdout.split()
        for task in tasks:
            self.ctr("tasks", "kill", "-s", "SIGKILL", task, timeout=30)
        deadline = time.monotonic() + 20
        for task in tasks:
            while time.monotonic() < deadline and self.ctr("tasks", "delete", task, timeout=30).returncode != 0:
                time.sleep(0.2)

    def _kill_shims(self) -> None:
        """containerd-shim processes outlive containerd by design; ours are found by their socket path."""
        for pid, cmdline in _processes_mentioning(str(self.socket)):
            if "containerd-shim" in cmdline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)

    def _unmount_all(self) -> None:
        """Every mount under the node's directory (kubelet volumes, overlay roots, netns), deepest first."""
        prefix = str(self.dir.resolve()) + "/"
        for _ in range(3):
            mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
            ours = sorted({m for m in mounts if m.startswith(prefix)}, key=len, reverse=True)
            if not ours:
                return
            for mount in ours:
                subprocess.run(["umount", "-l", mount], capture_output=True)

    # -- kubelet, scheduler, DNS -----------------------------------------------------------------
    def _start_kubelet(self) -> None:
        kd = self.kubelet_dir
        (kd / "pki").mkdir(parents=True, exist_ok=True)
        (self.dir / "resolv.conf").write_text(f"nameserver {NODE_IP}\nsearch {CLUSTER_DOMAIN}\noptions ndots:5\n")
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "cgroupDriver": "cgroupfs", "failCgroupV1": False, "failSwapOn": False,
            "address": "127.0.0.1", "port": KUBELET_PORT, "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1", "healthzPort": KUBELET_HEALTH_PORT,
            "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
            "authorization": {"mode": "AlwaysAllow"},
            "clusterDomain": CLUSTER_DOMAIN, "clusterDNS": [NODE_IP],
            "resolvConf": str(self.dir / "resolv.conf"), "podLogsDir": str(self.dir / "pod-logs"),
            "syncFrequency": self.sync_frequency,
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                             "nodefs.inodesFree": "1%"},
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
            "rotateCertificates": False, "serverTLSBootstrap": False,
            "maxPods": 60,
        }
        (kd / "config.json").write_text(json.dumps(config, indent=1))
        self.kubelet = Daemon("kubelet", [
            str(kube_binary("kubelet")), f"--config={kd / 'config.json'}",
            f"--kubeconfig={self.kube.kubeconfig(ADMIN)}", f"--root-dir={kd}", f"--cert-dir={kd / 'pki'}",
            f"--hostname-override={NODE_NAME}", f"--node-ip={NODE_IP}", "--v=1",
        ], self.dir)
        self.kubelet.start()
        self._started_kubelet = True
        self.kubelet.wait_until(lambda: port_open(KUBELET_HEALTH_PORT), 60, "listening")

    def _start_scheduler(self) -> None:
        admin = str(self.kube.kubeconfig(ADMIN))
        self.scheduler = Daemon("kube-scheduler", [
            str(kube_binary("kube-scheduler")), f"--kubeconfig={admin}", f"--authentication-kubeconfig={admin}",
            f"--authorization-kubeconfig={admin}", "--leader-elect=false", "--secure-port=0", "--v=1",
        ], self.dir)
        self.scheduler.start()

    def _start_coredns(self) -> None:
        corefile = self.dir / "Corefile"
        corefile.write_text(f"""{CLUSTER_DOMAIN}:53 {{
    bind {NODE_IP}
    errors
    kubernetes {CLUSTER_DOMAIN} {{
        kubeconfig {self.kube.kubeconfig(ADMIN)} {ADMIN}
    }}
}}
.:53 {{
    bind {NODE_IP}
    hosts {{
        127.0.0.1 localhost
        fallthrough
    }}
    template ANY ANY {{
        rcode NXDOMAIN
    }}
}}
""")
        self.coredns = Daemon("coredns", [str(coredns_binary()), "-conf", str(corefile)], self.dir)
        self.coredns.start()
        self.coredns.wait_until(lambda: port_open(53, NODE_IP), 60, "serving DNS")

    def _wait_ready(self) -> None:
        def ready() -> bool:
            node = self.kube.request("GET", f"/api/v1/nodes/{NODE_NAME}")
            conditions = node.get("status", {}).get("conditions", [])
            taints = node.get("spec", {}).get("taints") or []
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions) and not any(
                t.get("key") == "node.kubernetes.io/not-ready" for t in taints)
        self.kubelet.wait_until(ready, 120, "Ready (with the not-ready taint removed)")

    # -- helpers for tests -----------------------------------------------------------------------
    def leftovers(self) -> list[str]:
        """What of this node is still on the machine: processes, mounts, interfaces (empty after stop)."""
        found = []
        prefix = str(self.dir.resolve())
        for line in Path("/proc/self/mounts").read_text().splitlines():
            if line.split()[1].startswith(prefix):
                found.append(f"mount {line.split()[1]}")
        if _run(["ip", "link", "show", BRIDGE], check=False).returncode == 0:
            found.append(f"interface {BRIDGE}")
        found += [f"iptables chain {table}/{chain}" for table, chain in _kubelet_chains("iptables")]
        found += [f"cgroup {path}" for path in _pod_cgroups()]
        found += [f"process {pid}: {cmdline[:120]}" for pid, cmdline in _processes_mentioning(prefix)]
        found += [f"log link {link}" for link in self._container_log_links()]
        return found

    def _container_log_links(self) -> list[Path]:
        """Kubelet's symlinks in /var/log/containers that point into this node's pod logs."""
        links = Path("/var/log/containers")
        target = str((self.dir / "pod-logs").resolve())
        return [link for link in (links.iterdir() if links.is_dir() else ())
                if link.is_symlink() and os.readlink(link).startswith(target)]


def _processes_mentioning(text: str) -> list[tuple[int, str]]:
    """(pid, command line) of every process whose command line contains ``text``."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if text in cmdline:
                    found.append((int(proc.name), cmdline))
    return found


def _kubelet_chains(tool: str) -> list[tuple[str, str]]:
    """The ``KUBE-*`` chains kubelet made (its firewall for 127/8 and its canaries), per table."""
    found = []
    for table in ("filter", "nat", "mangle"):
        proc = subprocess.run([tool, "-t", table, "-S"], capture_output=True, text=True)
        found += [(table, line.split()[1]) for line in proc.stdout.splitlines()
                  if line.startswith("-N KUBE-")]
    return found


def _remove_kubelet_chains() -> None:
    for tool in ("iptables", "ip6tables"):
        if shutil.which(tool) is None:
            continue
        for table in ("filter", "nat", "mangle"):
            rules = subprocess.run([tool, "-t", table, "-S"], capture_output=True, text=True).stdout.splitlines()
            for rule in rules:  # jumps from the built-in chains first, then the chains themselves
                if rule.startswith("-A ") and " -j KUBE-" in rule and not rule.split()[1].startswith("KUBE-"):
                    subprocess.run([tool, "-t", table, "-D", *rule.split()[1:]], capture_output=True)
        for table, chain in _kubelet_chains(tool):
            subprocess.run([tool, "-t", table, "-F", chain], capture_output=True)
        for table, chain in _kubelet_chains(tool):
            subprocess.run([tool, "-t", table, "-X", chain], capture_output=True)


def _pod_cgroups() -> list[Path]:
    return sorted(Path("/sys/fs/cgroup").glob("*/kubepods")) + sorted(Path("/sys/fs/cgroup").glob("kubepods*"))


def _remove_pod_cgroups() -> None:
    """kubelet's ``kubepods`` hierarchies (empty once every container is gone), deepest first."""
    for top in _pod_cgroups():
        for here, _dirs, _files in sorted(os.walk(top), key=lambda w: -len(w[0])):
            with contextlib.suppress(OSError):
                os.rmdir(here)


__all__ = ["KubeletNode", "NODE_IP", "NODE_NAME", "BRIDGE"]
