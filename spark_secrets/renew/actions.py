"""The renew service's actions on one token Secret: renew, re-issue (keeping the outgoing tokens alive
until the pods have the new ones), cancel. Each write carries the resourceVersion it was computed from
(409 on a concurrent change) and says what was done, by whom, and what comes next.

Only tokens the service verified (its seal, :mod:`.seal`) are re-issued or cancelled; a token it never
verified that its server will not renew is refused, never replaced (:class:`TokenRefused`).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import heapq
import logging
from typing import Any

from spark_secrets.errors import (HdfsError, HdfsPermissionError, InvalidTokenError, KerberosError, KubernetesConflict,
                                  SparkSecretsError, TokenRefused, UnusableSecret)
from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.hadoop.token import Token
from spark_secrets.renew.housekeeping import Key
from spark_secrets.renew.kinds import TokenKind
from spark_secrets.renew.metrics import Metrics
from spark_secrets.renew.policy import REISSUE, Policy, estimate_warning
from spark_secrets.renew.rollover import Rollover
from spark_secrets.renew.seal import Seal
from spark_secrets.secrets.tokensecret import (ANNOTATION_ACTED_BY, ANNOTATION_LAST_ACTION, ANNOTATION_NEXT_ACTION,
                                               ANNOTATION_VERIFIED, TokenSecret, rfc3339, schedule_annotations,
                                               token_handles)

log = logging.getLogger("spark_secrets.renew")


class TokenActions:
    """The actions of :class:`~spark_secrets.renew.service.RenewService`, which supplies the state below, its
    clock (:meth:`_now`) and its conditional write (:meth:`_patch`)."""

    kinds: list[TokenKind]
    metrics: Metrics
    seal: Seal
    policy: Policy
    principal: str
    _due: list[tuple[int, Key, str]]

    def _now(self) -> int:
        raise NotImplementedError

    def _patch(self, ts: TokenSecret, patch: dict[str, Any]) -> None:
        raise NotImplementedError

    @functools.cached_property
    def rollover(self) -> Rollover:
        """A re-issue's outgoing tokens, kept alive until the pods can have the new ones (:mod:`.rollover`)."""
        return Rollover(self.seal, self.policy, self._kind, self.metrics)

    def _kind(self, token: Token) -> TokenKind:
        for kind in self.kinds:
            if kind.owns_token(token):
                return kind
        raise UnusableSecret(f"no token kind renews {token.kind} tokens", "upgrade the renew service")

    def _renew(self, ts: TokenSecret) -> None:
        """Renew the main tokens (and in the same write the outgoing ones, if due), or only the outgoing ones
        when they alone are due; a re-issue instead if its window opened meanwhile."""
        now = self._now()
        action, due = self.policy.main_action(ts, now, spread=False)
        outgoing_due = self.policy.outgoing_due(ts, now)
        if outgoing_due is not None and outgoing_due <= now < due:
            self._keep_outgoing(ts, now)
            return
        if action == REISSUE and due <= now:
            self._reissue(ts)
            return
        expiries, hadoop = [], []  # the estimate is Hadoop's interval: weighed against Hadoop tokens' answers
        for token in ts.distinct_tokens():
            kind = self._kind(token)
            try:
                expiries.append(kind.renew(token))
                if token.has_hadoop_identifier:
                    hadoop.append(expiries[-1])
                self.metrics.count(kind.name, "renew")
            except InvalidTokenError as exc:  # expired, cancelled, wrong password, unknown key
                if not ts.verified:
                    raise self._not_genuine(ts, kind.name, exc) from None
                log.info("%s: the %s server no longer renews a token this service verified (%s); re-issuing",
                         ts.ref, kind.name, exc.problem)
                self._reissue(ts)
                return
            except HdfsPermissionError as exc:  # e.g. a renewer that is not this service
                if not ts.verified:
                    raise self._not_genuine(ts, kind.name, exc) from None
                raise
        expiry = min(expiries)
        now = self._now()
        assert ts.credentials is not None
        outgoing = self.rollover.at_write(ts, now)
        notes = {**schedule_annotations(ts.credentials, expiry, renewed_at_ms=now, max_date_ms=ts.max_date_ms),
                 **self._plan(dataclasses.replace(ts, outgoing=outgoing.outgoing), "renewed", expiry, ts.max_date_ms,
                              now),
                 ANNOTATION_VERIFIED: self.seal.of(ts, token_handles(ts.credentials))}
        self._patch(ts, outgoing.patch(notes))
        self.metrics.renewals += 1
        log.info("renewed %s (%d token(s), %s): now expires %s", ts.ref, len(expiries), which_tokens(ts), rfc3339(expiry))
        if not ts.expiry_known:
            self._check_estimate(ts, min(hadoop or expiries), now)

    @staticmethod
    def _check_estimate(ts: TokenSecret, expiry_ms: int, now_ms: int) -> None:
        """One line when the submission's estimated renew interval was off by more than a tenth."""
        warning = estimate_warning(ts, expiry_ms, now_ms)
        if warning:
            log.warning("%s", warning)

    @staticmethod
    def _not_genuine(ts: TokenSecret, kind: str, exc: SparkSecretsError) -> TokenRefused:
        return TokenRefused(f"{ts.ref}: the {kind} server would not renew a token this service never verified "
                            f"({exc.problem})", "submit the job again with spark-secrets")

    def _reissue(self, ts: TokenSecret) -> None:
        if not ts.filesystems:
            raise UnusableSecret(f"{ts.ref} names no filesystems", "recreate it with spark-secrets")
        extended = self._extend_for_rollover(ts)
        creds = Credentials()
        for kind in self.kinds:
            targets = [t for t in ts.filesystems if kind.owns_target(t)]
            if targets:
                obtained = kind.obtain(targets, ts.owner_label)
                creds.tokens.update(obtained.tokens)
                creds.secret_keys.update(obtained.secret_keys)
        fresh = dataclasses.replace(ts, credentials=creds, verified=True, outgoing=None, facts=None)  # the service's
        for token in fresh.distinct_tokens():
            self.metrics.count(self._kind(token).name, "obtain")
        for token in fresh.opaque_tokens():  # what the server answered when it created them
            if (facts := self._kind(token).facts(token)) is not None:
                fresh.learn(token, facts)
        expiry = min(self._kind(t).renew(t) for t in fresh.distinct_tokens())
        data = base64.b64encode(creds.to_bytes(ts.file_format)).decode("ascii")
        now = self._now()
        outgoing = self.rollover.begin(ts, extended, now)  # the tokens the pods use until they have the new ones
        try:
            notes = {**schedule_annotations(creds, expiry, renewed_at_ms=now, max_date_ms=fresh.max_date_ms),
                     **self._plan(dataclasses.replace(fresh, outgoing=outgoing.outgoing), "re-issued", expiry,
                                  fresh.max_date_ms, now),
                     ANNOTATION_VERIFIED: self.seal.of(ts, token_handles(creds))}
            self._patch(ts, outgoing.patch(notes, {ts.key: data}))
        except KubernetesConflict:
            # Someone else (another replica) changed the Secret first: this token goes nowhere, so cancel it
            # (only it: ``fresh`` has no outgoing tokens, and the Secret's own are still in use).
            self._cancel(fresh, why="obtained for, but not written into, changed")
            raise
        self.metrics.reissues += 1
        log.info("re-issued %s for %s (%s): expires %s, max %s", ts.ref, ts.owner_label, which_tokens(fresh),
                 rfc3339(expiry), rfc3339(fresh.max_date_ms))

    def _keep_outgoing(self, ts: TokenSecret, now: int) -> None:
        """Renew only a re-issue's outgoing tokens (the main ones are not due); on an outage, try again soon."""
        outgoing = self.rollover.renew(ts, now)
        if outgoing.failed is not None:
            retry = self.rollover.retry_at(ts, now)
            log.warning("could not renew the outgoing tokens of %s: %s; retrying in %.1f s", ts.ref,
                        outgoing.failed.problem, (retry - now) / 1000)
            heapq.heappush(self._due, (retry, (ts.namespace, ts.name), ts.resource_version))
            return
        action, due = self.policy.next_action(dataclasses.replace(ts, outgoing=outgoing.outgoing), now)
        next_action = f"{'re-issue' if action == REISSUE else 'renew'} {rfc3339(max(due, now))}"
        self._patch(ts, outgoing.patch({ANNOTATION_NEXT_ACTION: next_action}))

    def _plan(self, ts: TokenSecret, done: str, expiry_ms: int, max_date_ms: int, now_ms: int) -> dict[str, str]:
        """What was done, by whom, and what comes next (about when), in the same write: for
        ``spark-secrets status``, which may read metadata but not the tokens."""
        after = dataclasses.replace(ts, expiry_ms=expiry_ms, renewed_at_ms=now_ms, max_date_annotation_ms=max_date_ms,
                                    expiry_estimated=False)
        action, due = self.policy.next_action(after, now_ms)
        return {ANNOTATION_LAST_ACTION: done, ANNOTATION_ACTED_BY: self.principal,
                ANNOTATION_NEXT_ACTION: f"{'re-issue' if action == REISSUE else 'renew'} {rfc3339(max(due, now_ms))}"}

    def _extend_for_rollover(self, ts: TokenSecret) -> tuple[int, int] | None:
        """Renew the outgoing tokens once more (up to their max date) before writing new ones: pods keep
        using them until kubelet projects the new file, and the re-issue keeps them alive from here
        (:mod:`.rollover`). Always tried, whatever the annotations say of the expiry (the writer's
        word): a lapsed token just says so. Returns their expiry and when it was learnt (on an outage,
        the last known: the keep-alive retries soon), or None if a server refused them (nothing to keep).

        The same renewals prove the tokens genuine where the service has not verified them before:
        then any refusal means no re-issue (:class:`TokenRefused`), and any other failure waits for a
        retry; for verified tokens both are only logged (the re-issue matters more)."""
        expiries: list[int] = []
        refused = False
        tokens = ts.distinct_tokens()
        for token in tokens:
            kind = self._kind(token)
            try:
                expiries.append(kind.renew(token))
                self.metrics.count(kind.name, "renew")
            except SparkSecretsError as exc:
                refusal = isinstance(exc, (InvalidTokenError, HdfsPermissionError))
                if not ts.verified:  # a refusal is final; anything else (an outage) is retried
                    if refusal:
                        raise self._not_genuine(ts, kind.name, exc) from None
                    raise
                refused = refused or refusal
                log.info("%s: could not extend the outgoing token before the re-issue: %s", ts.ref, exc.problem)
        if refused:
            return None
        if len(expiries) == len(tokens):
            return min(expiries), self._now()
        return ts.expiry_ms, ts.renewed_at_ms or ts.issue_date_ms

    def _cancel(self, ts: TokenSecret, why: str = "deleted") -> None:
        """Cancel the tokens the service verified in ``ts``: the main ones, and the outgoing ones of a re-issue
        it sealed (pods may have used them to the end); never any a writer merely named."""
        if ts.outgoing is not None and ts.outgoing.verified:
            self._cancel_tokens(ts, ts.outgoing.cancel_tokens(), why)
        if not ts.verified:
            if ts.handles:
                log.info("not cancelling the tokens named by deleted %s: this service never verified them", ts.ref)
            return
        tokens = ts.cancel_tokens()
        if not tokens:
            log.warning("cannot cancel the tokens of deleted %s: it named none (written by an older spark-secrets)",
                        ts.ref)
        self._cancel_tokens(ts, tokens, why)

    def _cancel_tokens(self, ts: TokenSecret, tokens: list[Token], why: str) -> None:
        for token in tokens:
            try:
                kind = self._kind(token)
                kind.cancel(token)
                self.metrics.count(kind.name, "cancel")
                self.metrics.cancellations += 1
                log.info("cancelled a token of %s %s (%s)", why, ts.ref, _which(token))
            except HdfsError as exc:
                # Already expired or cancelled is fine: nothing can use it any more.
                log.info("token of deleted %s not cancelled: %s", ts.ref, exc.problem)
            except (KerberosError, UnusableSecret) as exc:
                self.metrics.failures += 1
                log.warning("cannot cancel tokens of deleted %s: %s", ts.ref, exc.problem)


def which_tokens(ts: TokenSecret) -> str:
    """A Secret's tokens for logs: the first one's (no secret)."""
    tokens = ts.cancel_tokens()
    return _which(tokens[0]) if tokens else "no token"


def _which(token: Token) -> str:
    """A token for logs: its Hadoop sequence number, else its fingerprint (never a secret)."""
    ident = token.decode_identifier()
    return f"sequence {ident.sequence_number}" if ident is not None else f"token {token.fingerprint}"
