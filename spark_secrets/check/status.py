"""``spark-secrets status``: running jobs' tokens as the renew service keeps them, read from the token
Secrets' **metadata** only (the token file never crosses the wire): each token's kind, service,
owner and dates, the expiry, the next action and the last (by whom), the pods that mount the Secret
and the Events about it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from spark_secrets.connect.names import ANNOTATION_IDLE_TIMEOUT, ANNOTATION_LAST_ACTIVITY, LABEL_CONNECT_USER
from spark_secrets.errors import KubernetesForbidden, SparkSecretsError
from spark_secrets.kube.client import KubeClient
from spark_secrets.secrets.tokensecret import (ANNOTATION_ACTED_BY, ANNOTATION_EXPIRY, ANNOTATION_EXPIRY_ESTIMATED,
                                       ANNOTATION_LAST_ACTION, ANNOTATION_MAX_DATE, ANNOTATION_NEXT_ACTION,
                                       ANNOTATION_PRINCIPAL, ANNOTATION_RENEWED_AT, ANNOTATION_TOKENS, LABEL_APP,
                                       LABEL_OWNER, TOKEN_SECRET_SELECTOR, handle_tokens, parse_rfc3339, rfc3339)

#: Events shown per Secret, newest last.
EVENTS = 5


@dataclass(frozen=True)
class TokenView:
    """One token as its handle shows it; a token whose identifier says nothing (Kafka's: only its id) has no
    owner, renewer, sequence or dates here: its brokers know them, and the Secret's max date is theirs."""

    kind: str
    service: str
    owner: str | None
    renewer: str | None
    sequence: int | None
    issued: str | None
    max_date: str | None
    id: str = ""

    def line(self) -> str:
        if self.sequence is None:
            return f"  token {self.kind} {self.service}: id {self.id} (owner and dates as its servers say)"
        return (f"  token {self.kind} {self.service}: #{self.sequence}, owner {self.owner}, renewer {self.renewer}, "
                f"issued {self.issued}, max {self.max_date}")


@dataclass(frozen=True)
class PodView:
    name: str
    role: str
    phase: str


@dataclass(frozen=True)
class EventView:
    time: str
    type: str
    reason: str
    message: str
    count: int


@dataclass(frozen=True)
class ConnectView:
    """The user's Connect server whose driver mounts the Secret: since when it runs, when it was last active (its
    program says), and after how long idle it stops."""

    user: str
    pod: str
    started: str | None
    last_activity: str | None
    idle_timeout_s: float | None

    def line(self, now: dt.datetime) -> str:
        active = f"last active {self.last_activity} ({_age(self.last_activity, now)} idle)" if self.last_activity \
            else "no activity recorded yet"
        stops = f", stops after {self.idle_timeout_s:g} s idle" if self.idle_timeout_s is not None else ""
        return f"  Connect server of {self.user}: pod {self.pod}, up {_age(self.started, now)}, {active}{stops}"


@dataclass(frozen=True)
class JobStatus:
    namespace: str
    secret: str
    app: str
    owner: str
    expiry: str | None
    expiry_estimated: bool
    max_date: str | None
    next_action: str | None
    last_action: str | None
    last_at: str | None
    acted_by: str | None
    tokens: tuple[TokenView, ...]
    pods: tuple[PodView, ...]
    events: tuple[EventView, ...]
    connect: ConnectView | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self, now: dt.datetime | None = None) -> list[str]:
        now = now or dt.datetime.now(dt.timezone.utc)
        out = [f"{self.namespace}/{self.secret}  app {self.app or '?'}  owner {self.owner or '?'}"]
        expiry = "unknown" if not self.expiry else f"{self.expiry} ({_until(self.expiry, now)})" + (
            ", estimated at submission" if self.expiry_estimated else "")
        out.append(f"  expires {expiry}; max date {self.max_date or 'unknown'}; next "
                   + (self.next_action.replace(" ", " at ", 1) if self.next_action else "renewal not yet planned"))
        out.append(f"  last {self.last_action} {self.last_at} by {self.acted_by}" if self.last_action
                   else "  not renewed yet" + (f" (obtained by {self.acted_by})" if self.acted_by else ""))
        if self.connect is not None:
            out.append(self.connect.line(now))
        out += [t.line() for t in self.tokens]
        out.append("  pods: " + (", ".join(f"{p.name} ({p.role}, {p.phase})" for p in self.pods) or "none mount it"))
        out += [f"  event {e.time} {e.type} {e.reason}: {e.message}" + (f" (x{e.count})" if e.count > 1 else "")
                for e in self.events]
        return out


def _age(stamp: str | None, now: dt.datetime) -> str:
    """How long ago ``stamp`` was, in people's units (``?`` without one)."""
    if not stamp:
        return "?"
    seconds = max(0, int((now - dt.datetime.fromisoformat(stamp)).total_seconds()))
    return f"{seconds // 3600} h {seconds % 3600 // 60} min" if seconds >= 3600 else (
        f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s")


def _until(stamp: str, now: dt.datetime) -> str:
    seconds = int((dt.datetime.fromisoformat(stamp) - now).total_seconds())
    if seconds < 0:
        return f"{-seconds} s ago"
    return f"in {seconds // 3600} h {seconds % 3600 // 60} min" if seconds >= 3600 else f"in {seconds // 60} min {seconds % 60} s"


def _shown(stamp: str | None) -> str | None:
    """A time annotation in whole seconds, as people read it (the renew service writes milliseconds)."""
    try:
        return rfc3339(parse_rfc3339(stamp)) if stamp else stamp
    except ValueError:
        return stamp


def _tokens(handles: str) -> tuple[TokenView, ...]:
    out = []
    for token in handle_tokens(handles):
        ident = token.decode_identifier()
        if ident is not None:
            out.append(TokenView(token.kind, token.service, ident.owner, ident.renewer, ident.sequence_number,
                                 rfc3339(ident.issue_date), rfc3339(ident.max_date), token.fingerprint))
        else:
            out.append(TokenView(token.kind, token.service, None, None, None, None, None, token.fingerprint))
    return tuple(out)


def _mounts(pod: Mapping[str, Any]) -> set[str]:
    volumes = (pod.get("spec") or {}).get("volumes") or []
    names = {str((v.get("secret") or {}).get("secretName")) for v in volumes if v.get("secret")}
    for volume in volumes:  # projected volumes (pod templates may project several sources)
        for source in ((volume.get("projected") or {}).get("sources") or []):
            if source.get("secret"):
                names.add(str(source["secret"].get("name")))
    return names


def job_status(meta_obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]],
               events: Iterable[Mapping[str, Any]]) -> JobStatus:
    """One job's status from its Secret's metadata, the pods of its namespace and its Events."""
    meta = meta_obj.get("metadata") or {}
    notes, labels, name = meta.get("annotations") or {}, meta.get("labels") or {}, str(meta.get("name"))
    mounting = [p for p in pods if name in _mounts(p)]
    shown = sorted(events, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))[-EVENTS:]
    return JobStatus(
        namespace=str(meta.get("namespace")), secret=name, app=str(labels.get(LABEL_APP, "")),
        owner=str(labels.get(LABEL_OWNER, "")), expiry=_shown(notes.get(ANNOTATION_EXPIRY)),
        expiry_estimated=notes.get(ANNOTATION_EXPIRY_ESTIMATED) == "true",
        max_date=_shown(notes.get(ANNOTATION_MAX_DATE)),
        next_action=notes.get(ANNOTATION_NEXT_ACTION), last_action=notes.get(ANNOTATION_LAST_ACTION),
        last_at=_shown(notes.get(ANNOTATION_RENEWED_AT)),
        acted_by=notes.get(ANNOTATION_ACTED_BY) or notes.get(ANNOTATION_PRINCIPAL),
        tokens=_tokens(notes.get(ANNOTATION_TOKENS, "")),
        pods=tuple(PodView(str(p["metadata"]["name"]), str((p["metadata"].get("labels") or {}).get("spark-role", "pod")),
                           str((p.get("status") or {}).get("phase", "Unknown"))) for p in mounting),
        events=tuple(EventView(str(e.get("lastTimestamp") or e.get("eventTime") or ""), str(e.get("type", "")),
                               str(e.get("reason", "")), str(e.get("message", ""))[:300], int(e.get("count") or 1))
                     for e in shown),
        connect=next((_connect(p) for p in mounting if LABEL_CONNECT_USER in (p["metadata"].get("labels") or {})
                      and (p["metadata"].get("labels") or {}).get("spark-role") == "driver"), None))


def _connect(pod: Mapping[str, Any]) -> ConnectView:
    meta = pod["metadata"]
    notes = meta.get("annotations") or {}
    timeout = notes.get(ANNOTATION_IDLE_TIMEOUT)
    try:
        idle_timeout = float(timeout) if timeout else None
    except ValueError:
        idle_timeout = None
    return ConnectView(str(meta["labels"][LABEL_CONNECT_USER]), str(meta.get("name")),
                       _shown(meta.get("creationTimestamp")), _shown(notes.get(ANNOTATION_LAST_ACTIVITY)), idle_timeout)


def job_statuses(kube: KubeClient, namespace: str | None, which: str | None = None) -> list[JobStatus]:
    """Every token Secret in ``namespace`` (None: all), or those named ``which`` or of app ``which``."""
    where = namespace or "all namespaces"
    found: list[dict[str, Any]] = []
    try:
        kube.list_secret_metadata(namespace, TOKEN_SECRET_SELECTOR, found.extend)
    except KubernetesForbidden:
        raise KubernetesForbidden(f"you may not list Secrets in {where}, not even their metadata",
                                  "ask for get/list on Secrets there (the group layout grants it), or ask the "
                                  "renew service's operators") from None
    if which:
        found = [o for o in found if which in (o["metadata"].get("name"),
                                               (o["metadata"].get("labels") or {}).get(LABEL_APP))]
        if not found:
            raise SparkSecretsError(f"no token Secret named {which!r} or of app {which!r} in {where}",
                                    "run spark-secrets status without a name to list them")
    pods_by_ns: dict[str, list[dict[str, Any]]] = {}
    out = []
    for obj in sorted(found, key=lambda o: (o["metadata"].get("namespace"), o["metadata"].get("name"))):
        ns, name = str(obj["metadata"]["namespace"]), str(obj["metadata"]["name"])
        if ns not in pods_by_ns:
            pods_by_ns[ns] = kube.list_pods(ns)
        out.append(job_status(obj, pods_by_ns[ns], kube.list_events(ns, "Secret", name)))
    return out
