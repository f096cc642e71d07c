"""A submission from start to end: preflight, steps, the Secret, spark-submit, ownership, cleanup.

Order matters: everything that can fail without side effects (settings, RBAC preflight, the TGT,
the NameNodes) happens before the Secret is created; a failure after that deletes it; once the
driver pod exists the Secret is made the pod's, so Kubernetes deletes it with the job.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from spark_secrets.errors import SparkSecretsError
from spark_secrets.errors import KubernetesForbidden, KubernetesNotFound
from spark_secrets.kube.client import KubeClient, ObjectRef
from submit_steps.builder import StepBuilder
from submit_steps.layout import LayoutStep
from submit_steps.podtemplate import ROLES, check_templates, with_pod_templates
from submit_steps.sparkconf import insert_conf_flags
from spark_secrets.secrets.tokensecret import LABEL_TOKEN_SECRET
from submit_steps.spec import SecretPlan, SubmissionSpec, Target

Progress = Callable[[str], None]

#: The container Spark runs the driver in (its ``DEFAULT_DRIVER_CONTAINER_NAME``).
DRIVER_CONTAINER = "spark-kubernetes-driver"
#: The driver pod's label naming the submission that made it (``spark-secrets submit``).
LABEL_SUBMISSION = "spark-secrets.io/submission"
#: How many of a failed driver's last log lines are shown.
DRIVER_LOG_LINES = 40


def stderr_progress(message: str) -> None:
    print(f"spark-secrets: {message}", file=sys.stderr, flush=True)


class Submission:
    def __init__(self, conf: Mapping[str, str], kube: KubeClient, *, builder: StepBuilder | None = None,
                 progress: Progress = stderr_progress, template_roles: Sequence[str] = (),
                 deploy_mode: str | None = None) -> None:
        """``template_roles``: the pods (driver, executor) whose secret volumes go in pod templates this
        submission writes (see :mod:`submit_steps.podtemplate`); the wrapper does it for both.
        ``deploy_mode``: the entry point's own (``render`` of a SparkApplication or a pod template: cluster),
        else the conf's, Spark's default (client) when it does not say. The steps get ``kube`` through the
        job's context (``k8s:`` references are checked before anything is created)."""
        self.builder = builder or StepBuilder(conf, deploy_mode=deploy_mode, kube=kube)
        self.context = self.builder.context
        self.settings = self.builder.settings
        self.kube = kube
        self.progress = progress
        self.created: list[ObjectRef] = []
        #: The label selector that finds the driver pod of each created Secret.
        self.selectors: dict[str, str] = {}
        self.owner: ObjectRef | None = None
        #: The layout lets the submitter only create Secrets: the renew service attaches and cleans up.
        self.handed_over = False
        self.template_roles = tuple(template_roles)
        #: Where the pod templates were written (the caller removes it when the job no longer needs them).
        self.template_dir: Path | None = None
        #: How long (s) to wait, once spark-submit returned, for the driver pod's phase to be written, and
        #: how often to look (spark-submit may return a moment before the kubelet reports the end).
        self.outcome_wait = 30.0
        self.outcome_poll = 1.0
        #: The label value ``submit`` gives this submission's driver pod, to find exactly it afterwards.
        self.submission_id: str | None = None

    # -- phases ----------------------------------------------------------------------------------
    def preflight(self) -> None:
        """Fail early, creating nothing, if the user may not create the Secret in the namespace."""
        if not (self.settings.enabled and (self.settings.wants_tokens or self.settings.job_secrets)):
            return
        layout = self.builder.step(LayoutStep)
        target = layout.target() if isinstance(layout, LayoutStep) else Target(self.context.namespace)
        namespace = target.namespace
        if self.settings.job_secrets and not self.kube.can_i("create", "secrets", namespace):
            raise KubernetesForbidden(f"you may not create Secrets in namespace {namespace} for the job's secrets",
                                      "submit to a namespace where you may, or ask an admin for a RoleBinding there")
        if not self.settings.wants_tokens:
            return
        if target.fill:
            if not self.kube.can_i("patch", "secrets", namespace, name=target.fill):
                raise KubernetesForbidden(f"you may not fill the pre-created Secret {namespace}/{target.fill}",
                                          "ask an admin to apply the precreated layout for you (spark-secrets rbac)")
        elif not self.kube.can_i("create", "secrets", namespace):
            raise KubernetesForbidden(f"you may not create Secrets in namespace {namespace}",
                                      "submit to a namespace where you may (spark.kubernetes.namespace), "
                                      "or ask an admin for a RoleBinding there")

    def prepare(self) -> SubmissionSpec:
        """Preflight, run the steps, create the Secrets. On failure nothing is left behind."""
        if self.template_roles:
            check_templates(self.settings, self.template_roles)
        self.preflight()
        spec = self.builder.run()
        if self.template_roles and spec.volumes:
            self.template_dir = self.template_dir or Path(tempfile.mkdtemp(prefix="spark-secrets-pods-"))
            spec = with_pod_templates(spec, self.template_dir, self.template_roles)
        for note in spec.notes:
            self.progress(note)
        try:
            for plan in spec.secrets:
                if plan.fill:  # an admin's Secret that outlives the job: never owned, never deleted by us
                    self._fill(plan)
                    continue
                ref = self.kube.create_secret(plan.manifest())
                self.created.append(ref)
                if plan.driver_selector:
                    self.selectors[ref.name] = plan.driver_selector
                self.progress(f"created Secret {plan.namespace}/{plan.name}")
        except BaseException:
            self.cleanup()
            raise
        return spec

    def _fill(self, plan: SecretPlan) -> None:
        try:
            self.kube.patch_secret(plan.namespace, plan.name, plan.fill_patch())
        except KubernetesNotFound:
            raise KubernetesNotFound(f"the pre-created Secret {plan.namespace}/{plan.name} does not exist",
                                     "ask an admin to apply the precreated layout for you (spark-secrets rbac)") from None
        self.progress(f"filled the pre-created Secret {plan.namespace}/{plan.name}")

    def cleanup(self) -> None:
        """Delete what this submission created and nobody owns yet."""
        if self.owner is not None:
            return
        for ref in reversed(self.created):
            try:
                self.kube.delete_secret(ref.namespace, ref.name, uid=ref.uid)
                self.progress(f"deleted Secret {ref.namespace}/{ref.name}")
            except KubernetesForbidden:
                self.progress(f"you may not delete Secret {ref.namespace}/{ref.name}; the renew service deletes it "
                              "once its grace period has passed")
            except SparkSecretsError as exc:
                self.progress(f"could not delete Secret {ref.namespace}/{ref.name}: {exc}")
        self.created.clear()

    def adopt(self) -> ObjectRef | None:
        """If the driver pod exists, make it own the Secrets; returns it."""
        if self.owner is not None or not self.created or self.handed_over:
            return self.owner
        secret = self.created[0]
        selector = self.selectors.get(secret.name, f"{LABEL_TOKEN_SECRET}={secret.name}")
        pods = self.kube.find_pods(secret.namespace, f"{selector},spark-role=driver")
        if not pods:
            return None
        try:
            for ref in self.created:
                self.kube.set_owner(ref, pods[0])
        except KubernetesForbidden:
            self.handed_over = True
            self.progress(f"you may not change Secret {secret.name}; the renew service attaches it to driver pod "
                          f"{pods[0].name}")
            return None
        self.owner = pods[0]
        self.progress(f"Secret {secret.name} is now owned by driver pod {pods[0].name}")
        return self.owner

    # -- the wrapper -----------------------------------------------------------------------------
    def run_spark_submit(self, args: Sequence[str], spark_submit: str = "spark-submit",
                         env: Mapping[str, str] | None = None, poll: float = 0.5, log: Path | None = None) -> int:
        """``spark-submit`` with the steps' flags added; returns its exit status. Its output goes to
        this process's, or to the file ``log``."""
        self.template_roles = self.template_roles or ROLES  # spark-submit reads them while this runs
        try:
            return self._run_spark_submit(args, spark_submit, env, poll, log)
        finally:
            if self.template_dir is not None:
                shutil.rmtree(self.template_dir, ignore_errors=True)

    def _run_spark_submit(self, args: Sequence[str], spark_submit: str, env: Mapping[str, str] | None,
                          poll: float, log: Path | None) -> int:
        import subprocess

        spec = self.prepare()
        flags = spec.conf_flags()
        if self._reports_driver_outcome():  # this submission's own driver, whatever else runs under its name
            self.submission_id = secrets.token_hex(16)  # 128 random bits, as uuid4's hex, without uuid's import
            flags += ["--conf", f"spark.kubernetes.driver.label.{LABEL_SUBMISSION}={self.submission_id}"]
        argv = [spark_submit, *insert_conf_flags(args, flags)]
        run_env = dict(os.environ if env is None else env)
        local_file: Path | None = None
        if spec.credentials is not None and not self._is_cluster_mode():
            from submit_steps.local import private_token_file

            local_file = private_token_file(spec.credentials, self.settings.token_file_format)
            run_env["HADOOP_TOKEN_FILE_LOCATION"] = str(local_file)
        if spec.local_secrets is not None and not self._is_cluster_mode():
            run_env.update(spec.local_secrets.materialize())  # this driver runs here: files and env, private
        stop = threading.Event()

        def watch_for_driver() -> None:
            while not stop.wait(poll):
                try:
                    if self.adopt() is not None or self.handed_over:
                        return
                except SparkSecretsError as exc:
                    self.progress(f"cannot attach the Secret to the driver pod yet: {exc}")

        watcher = threading.Thread(target=watch_for_driver, name="spark-secrets-adopt", daemon=True)
        watcher.start()
        try:
            self.progress(f"running {Path(spark_submit).name} with {len(spec.added_conf)} added settings")
            if log is not None:
                with open(log, "ab") as out:
                    proc = subprocess.run(argv, env=run_env, stdout=out, stderr=subprocess.STDOUT)
            else:
                proc = subprocess.run(argv, env=run_env)
            stop.set()
            watcher.join()
            if self.created and self.adopt() is None and proc.returncode == 0 and self._is_cluster_mode():
                deadline = time.monotonic() + 10
                while self.adopt() is None and not self.handed_over and time.monotonic() < deadline:
                    time.sleep(poll)
            if self.created and self.owner is None and not (self.handed_over and proc.returncode == 0):
                why = "spark-submit failed" if proc.returncode else "no driver pod owns them"
                self.progress(f"{why}: removing the job's Secrets")
                self.cleanup()
            if proc.returncode == 0 and self._reports_driver_outcome():
                return self.driver_outcome(spec)
            return proc.returncode
        except BaseException:
            stop.set()
            self.cleanup()
            raise
        finally:
            if local_file is not None:
                local_file.unlink(missing_ok=True)

    def _is_cluster_mode(self) -> bool:
        return self.context.cluster_mode  # decided once, in the context the steps share

    # -- the driver's outcome --------------------------------------------------------------------
    def _reports_driver_outcome(self) -> bool:
        """Cluster mode on Kubernetes with ``spark.kubernetes.submission.waitAppCompletion`` (Spark's
        default true): spark-submit has then waited for the driver, yet exits 0 even if it failed."""
        conf = self.settings.conf
        waits = conf.get("spark.kubernetes.submission.waitAppCompletion", "").strip().lower() != "false"
        return self._is_cluster_mode() and conf.get("spark.master", "").startswith("k8s://") and waits

    def driver_outcome(self, spec: SubmissionSpec) -> int:
        """The exit status a scheduler should see once spark-submit returned 0 in cluster mode: the driver
        pod's (the one owning the job's Secrets, else the one with this submission's label). Prints one line
        unless it succeeded. When the pod cannot be read, says why and keeps spark-submit's 0 (the job may
        well have succeeded)."""
        conf = spec.effective_conf()
        namespace = conf.get("spark.kubernetes.namespace") or "default"
        if self.owner is None and self.submission_id is None:
            self.progress("the driver's outcome is unknown: this submission did not label its driver pod; "
                          "exiting with spark-submit's status 0")
            return 0
        deadline = time.monotonic() + self.outcome_wait
        try:
            while True:
                pod = self._driver_pod(namespace)
                phase = str(((pod or {}).get("status") or {}).get("phase") or "")
                if phase in ("Succeeded", "Failed") or time.monotonic() >= deadline:
                    break
                time.sleep(self.outcome_poll)
        except KubernetesForbidden as exc:
            self.progress(f"the driver's outcome is unknown: {exc.problem}; exiting with spark-submit's status 0")
            return 0
        except (SparkSecretsError, ValueError) as exc:  # ValueError: an answer that is not JSON
            self.progress(f"the driver's outcome is unknown ({exc}); exiting with spark-submit's status 0")
            return 0
        if pod is None:
            self.progress(f"no driver pod of this job found in namespace {namespace}: exiting 1")
            return 1
        namespace = str(pod["metadata"].get("namespace") or namespace)
        where = f"{namespace}/{pod['metadata']['name']}"
        if phase == "Succeeded":
            return 0
        if phase != "Failed":
            self.progress(f"driver pod {where} is {phase or 'without a phase'} {self.outcome_wait:g} s after "
                          "spark-submit ended, not Succeeded: exiting 1")
            return 1
        container = _driver_container(pod, conf.get("spark.kubernetes.driver.podTemplateContainerName"))
        code, why = self._failure(pod, container)
        self.progress(f"driver pod {where} ended Failed ({why})")
        self._show_log(namespace, pod, container)
        return code

    def _driver_pod(self, namespace: str) -> dict[str, Any] | None:
        """This job's driver pod: the one that owns its Secrets, else the one labelled with this submission
        (never another run's of the same app name). A 403 names the permission."""
        owner = self.owner
        if owner is not None:
            try:
                return self.kube.read_pod(owner.namespace, owner.name)
            except KubernetesNotFound:
                return None
            except KubernetesForbidden:
                raise KubernetesForbidden(f"you may not get pods in namespace {owner.namespace}") from None
        try:
            mine = self.kube.list_pods(namespace, f"{LABEL_SUBMISSION}={self.submission_id},spark-role=driver")
        except KubernetesForbidden:
            raise KubernetesForbidden(f"you may not list pods in namespace {namespace}") from None
        return mine[0] if mine else None

    @staticmethod
    def _failure(pod: Mapping[str, Any], container: str | None) -> tuple[int, str]:
        """The exit status for a failed driver pod (its container's exit code, else 1) and why, in words."""
        status = pod.get("status") or {}
        containers = list(status.get("containerStatuses") or [])
        driver: dict[str, Any] = next((c for c in containers if c.get("name") == container), {})
        ended = (driver.get("state") or {}).get("terminated")
        if ended and ended.get("exitCode") is not None:
            code = int(ended["exitCode"])
            reason = ended.get("reason")
            why = f"container exit code {code}" + (f", {reason}" if reason and reason != "Error" else "")
            return (code if 0 < code < 256 else 1), why
        reason = status.get("reason")
        return 1, f"no container exit code{f'; reason {reason}' if reason else ''}"

    def _show_log(self, namespace: str, pod: Mapping[str, Any], container: str | None) -> None:
        """The failed driver's last log lines (the user's own job log), after a line saying what they are."""
        name = pod["metadata"]["name"]
        try:
            lines = self.kube.read_pod_log(namespace, name, container, DRIVER_LOG_LINES).splitlines()
        except KubernetesForbidden:
            self.progress(f"cannot show its log: you may not get pods/log in namespace {namespace}")
            return
        except SparkSecretsError as exc:
            self.progress(f"cannot show its log: {exc}")
            return
        self.progress(f"the last {len(lines)} lines of the driver pod's log:" if lines else "the driver pod's log is empty")
        for line in lines:
            print(line, file=sys.stderr)
        sys.stderr.flush()


def _driver_container(pod: Mapping[str, Any], template_name: str | None) -> str | None:
    """The container Spark runs the driver in: the template's (``podTemplateContainerName``), else Spark's
    default name, else the last one (Spark appends its container after a template's sidecars)."""
    names = [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []]
    for wanted in (template_name, DRIVER_CONTAINER):
        if wanted and wanted in names:
            return wanted
    return names[-1] if names else None
